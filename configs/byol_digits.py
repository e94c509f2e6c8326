"""BYOL on scikit-learn's digits: `propos_digits.py` with ProPos' method section swapped for BYOL's.

Data, augmentation, backbone, projector/predictor, optimiser, epochs, batch and E-step cadence are
those of `propos_digits.py` (loaded from it, so the comparison stays at the same budget); only the
method differs: no PSL, no PSA noise, cosine-increasing EMA (official ProPos BYOL baselines).
"""
import importlib.util
from pathlib import Path

from jaxclust.methods import byol


def _propos_digits():
    spec = importlib.util.spec_from_file_location("propos_digits", Path(__file__).with_name("propos_digits.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def get_config():
    c = _propos_digits()
    c.method = byol.method_config()  # ema 0.996 -> 1 (cosine), v1 forward
    return c
