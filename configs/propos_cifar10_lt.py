"""ProPos on CIFAR-10-LT, ResNet-18 (ProPos Table 9: NMI 55.3, ACC 43.9, ARI 36.3).

Paper Sec. 5.8: the long-tailed set is built from the TRAINING set with imbalance ratio
min/max = 0.1, with the recipe of Tang et al. / LDAM: class k keeps int(n_max * 0.1^(k/(K-1))) images,
drawn with numpy seed 0 (jaxclust.data.sources.long_tail). For CIFAR-20 the ratio is applied to the
20 super-classes (the paper's min/max over the K clusters). tfds stores CIFAR in another order than
the original pickles, so the drawn images differ from the paper's; the counts are the same.
Everything else is propos_cifar10.py (official cifar10_r18_propos.yml); ResNet-18 as the paper's default backbone (Sec. 5.1.2).
"""
from jaxclust.config import sibling


def long_tailed(c):
    """A CIFAR config's long-tailed variant (paper Sec. 5.8): its training split, min/max = 0.1."""
    c.data.split = "train"  # built on the training set
    c.data.imbalance_ratio = 0.1
    return c


def get_config():
    return long_tailed(sibling(__file__, "propos_cifar10").get_config())
