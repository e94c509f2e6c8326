"""C2BIN on CIFAR-100-20, clustering setting (Table 10, heads (20, 40, 160)); Table 3 [Mean]: NMI 0.36,
ACC 0.35, ARI 0.20. `c2bin_cifar10.py` with the 20 super-classes and CIFAR-100 statistics."""

from jaxclust.config import sibling
from jaxclust.data.sources import normalization


def get_config():
    c = sibling(__file__, "c2bin_cifar10").get_config()
    c.data.name = "cifar20"
    c.augment.mean, c.augment.std = normalization("cifar20")
    c.method.cluster_heads = (20, 40, 160)  # Table 10
    c.cluster.num_clusters = 20
    return c
