"""Locate the official ProPos fixtures: shared/fixtures/propos_official beside the checkout, or the folder
that JAXCLUST_OFFICIAL_FIXTURES names (any fixture set with the same layout).

Missing fixtures skip the parity tests on a workstation. Under CI=true they fail instead, so a CI run
cannot pass without them."""
import os
from pathlib import Path

import numpy as np
import pytest

ENV_VAR = "JAXCLUST_OFFICIAL_FIXTURES"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "propos_official"


def official_dir() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _missing(message: str):
    if _on_ci():
        pytest.fail(f"{message}; CI=true, so the parity tests may not be skipped", pytrace=False)
    pytest.skip(message)


def official_path(name: str, folder=None) -> Path:
    """Path of one fixture file; skips (fails under CI=true) when the folder or the file is missing."""
    folder = official_dir() if folder is None else Path(folder)
    if not folder.is_dir():
        _missing(f"official fixture folder not found: looked for {folder} "
                 f"(shared/fixtures/propos_official beside the checkout, or set {ENV_VAR})")
    path = folder / name
    if not path.is_file():
        _missing(f"official fixture {name} not found in {folder}")
    return path


def load_official(name: str, folder=None) -> dict:
    with np.load(official_path(name, folder)) as data:
        return {key: data[key] for key in data.files}
