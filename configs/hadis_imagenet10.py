"""HaDis on ImageNet-10 (official `config/imagenet10_r18_propos.yml`); HaDis Table II: NMI 88.4, ACC 94.9, ARI 89.2.

An ImageFolder directory (--config.data.path=DIR, 13,000 images, 10 classes), resized to 96x96
(official test transform: a direct resize), BigResNet-18 (3x3 stem, no max-pool), batch 128,
lambda 0.05, ImageNet statistics, no blur; K = 10 as CIFAR-10.
"""

from jaxclust.config import sibling
from jaxclust.data.sources import normalization


def get_config():
    c = sibling(__file__, "hadis_cifar10").get_config()
    c.data.source = "folder"
    c.data.name = "imagenet10"
    c.data.split = ""
    c.data.image_size = 96
    c.augment.mean, c.augment.std = normalization("imagenet10")
    c.train.batch_size = 128
    c.method.psl_weight = 0.05  # official cluster_loss_weight
    return c
