"""BYOL on Fashion-MNIST: `propos_fashion_mnist.py` with ProPos' method section swapped for BYOL's.

Data, views, network, optimiser, epochs, batch and E-step cadence are those of `propos_fashion_mnist.py` (loaded
from it, so the comparison stays at the same budget); only the method differs: no PSL, no PSA noise,
cosine-increasing EMA (official ProPos BYOL baselines).
"""

from jaxclust.config import sibling
from jaxclust.methods import byol


def get_config():
    c = sibling(__file__, "propos_fashion_mnist").get_config()
    c.method = byol.method_config()  # ema 0.996 -> 1 (cosine), v1 forward
    return c
