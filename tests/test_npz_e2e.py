"""An npz file written from scikit-learn's digits trains exactly like the built-in digits source:
same seed, same metrics.jsonl (timing keys aside)."""
import json

import jax
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache as jax_cache
from sklearn import datasets

from jaxclust.trainer import train_and_evaluate
from test_train_e2e import tiny_digits_config

TIMING_KEYS = {"wall_seconds", "session_seconds", "e_step_seconds"}


def records(workdir):
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS} for line in lines]


@pytest.fixture
def compilation_cache(tmp_path):
    """The two runs compile the same programs: a persistent cache lets the second one reuse them."""
    keys = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
            "jax_persistent_cache_min_entry_size_bytes")
    saved = {k: getattr(jax.config, k) for k in keys}
    jax_cache.reset_cache()  # earlier tests may have settled "no cache" for this process
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield
    for k, v in saved.items():
        jax.config.update(k, v)
    jax_cache.reset_cache()


def test_npz_of_digits_gives_the_digits_metrics(tmp_path, compilation_cache):
    digits = datasets.load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # (N, 8, 8): grey, no channel axis
    np.savez(tmp_path / "digits.npz", images=images, labels=digits.target)

    builtin = tiny_digits_config(epochs=2)
    train_and_evaluate(builtin, tmp_path / "builtin")
    from_file = tiny_digits_config(epochs=2)
    from_file.data.source = "npz"  # as --config.data.source=npz --config.data.path=FILE
    from_file.data.path = str(tmp_path / "digits.npz")
    train_and_evaluate(from_file, tmp_path / "npz")

    expected = records(tmp_path / "builtin")
    assert [r["epoch"] for r in expected] == [0, 1, 2] and "nmi" in expected[-1]
    assert records(tmp_path / "npz") == expected
