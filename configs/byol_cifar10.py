"""BYOL baseline on CIFAR-10 with ResNet-18: the official `config/cifar10_r18_byol.yml`
(ProPos Table 6, BYOL row: NMI 79.4, ACC 87.8, ARI 76.6; Table 2 with ResNet-34: 81.7 / 89.4 / 79.0).

As in the official file, BYOL is the ProPos model with lambda_psl = 0 (`cluster_loss_weight: 0.`)
and sigma = 0 (`latent_std: 0.`): the loss is the symmetric BYOL alignment alone, and k-means only
measures (every 10 epochs, official `reassign: 10`). EMA momentum increases from 0.996 to 1.
"""
from jaxclust.config import base_config
from jaxclust.data.sources import normalization


def get_config():
    c = base_config()
    c.data.source = "tfds"
    c.data.name = "cifar10"
    c.data.split = "train+test"
    c.data.image_size = 32

    c.augment.mean, c.augment.std = normalization("cifar10")

    c.model.backbone = "resnet18"  # official bigresnet18
    c.model.stem = "cifar"

    c.method.name = "propos"
    c.method.psl_weight = 0.0  # official cluster_loss_weight: 0.
    c.method.sigma = 0.0  # official latent_std: 0.
    c.method.forward = "v1"
    c.method.ema_momentum = 0.996
    c.method.ema_increase = True  # official momentum_increase: true

    c.optim.lr = 0.05
    c.optim.warmup_epochs = 50
    c.train.epochs = 1000
    c.train.batch_size = 512  # official 128 x 4 GPUs

    c.cluster.num_clusters = 10
    c.cluster.every = 10  # official reassign: 10
    return c
