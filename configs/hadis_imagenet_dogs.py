"""HaDis on ImageNet-Dogs (official `config/ImageNet-dogs_r18_propos.yml`); HaDis Table II: NMI 49.6,
ACC 55.0, ARI 37.6. As `hadis_imagenet10.py` (96 px, BigResNet-18, batch 128, no blur; unlike ProPos'
ResNet-34 at 224 px) with 19,500 images of 15 classes and lambda 0.1.
"""
from jaxclust.config import sibling


def get_config():
    c = sibling(__file__, "hadis_imagenet10").get_config()
    c.data.name = "imagenet_dogs"
    c.method.psl_weight = 0.1  # official cluster_loss_weight
    c.cluster.num_clusters = 15
    return c
