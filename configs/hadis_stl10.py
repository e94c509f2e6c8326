"""HaDis on STL-10 (official `config/STL-10_r18_propos.yml`); HaDis Table II: NMI 69.6, ACC 73.9, ARI 62.3.

The 13,000 labelled images (train + test, no unlabelled; seed_hadis.md A10) at 96x96, the same
BigResNet-18 (3x3 stem, no max-pool) as CIFAR, batch 128 (lr 0.05 x 128/256), lambda 0.1, ImageNet statistics.
"""

from jaxclust.config import sibling
from jaxclust.data.sources import normalization


def get_config():
    c = sibling(__file__, "hadis_cifar10").get_config()
    c.data.name = "stl10"
    c.data.image_size = 96
    c.augment.mean, c.augment.std = normalization("stl10")
    c.train.batch_size = 128  # official, one GPU
    return c
