"""BYOL baseline on CIFAR-20 with ResNet-18: the official `config/cifar20_r18_byol.yml`
(ProPos Table 6, BYOL row: NMI 55.5, ACC 53.9, ARI 37.6; Table 2 with ResNet-34: 55.9 / 56.9 / 39.3).

As in the official file, BYOL is the ProPos model with lambda_psl = 0 (`cluster_loss_weight: 0.`)
and sigma = 0 (`latent_std: 0.`): the loss is the symmetric BYOL alignment alone, and k-means only
measures (every 10 epochs, official `reassign: 10`). EMA momentum increases from 0.996 to 1.
"""
from jaxclust.config import base_config
from jaxclust.data.sources import normalization


def get_config():
    c = base_config()
    c.data.source = "tfds"
    c.data.name = "cifar20"
    c.data.split = "train+test"
    c.data.image_size = 32

    c.augment.mean, c.augment.std = normalization("cifar20")

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
    c.train.batch_size = 256  # official 64 x 4 GPUs

    c.kmeans.num_clusters = 20
    c.kmeans.every = 10  # official reassign: 10
    return c
