"""Locate the official ProPos fixtures (shared/fixtures/propos_official beside the checkout)."""
from pathlib import Path

import numpy as np
import pytest

OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "propos_official"


def load_official(name: str) -> dict:
    path = OFFICIAL / name
    if not path.exists():
        pytest.skip(f"official fixture {path} is not present (it lives in shared/, beside the repo)")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}
