"""BYOL on scikit-learn's digits: `propos_digits.py` with ProPos' method section swapped for BYOL's.

Data, augmentation, backbone, projector/predictor, optimiser, epochs, batch and E-step cadence are
those of `propos_digits.py` (loaded from it, so the comparison stays at the same budget); only the
method differs: no PSL, no PSA noise, cosine-increasing EMA (official ProPos BYOL baselines).
"""

from jaxclust.config import sibling
from jaxclust.methods import byol


def get_config():
    c = sibling(__file__, "propos_digits").get_config()
    c.method = byol.method_config()  # ema 0.996 -> 1 (cosine), v1 forward
    return c
