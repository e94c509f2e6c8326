"""BYOL baseline on CIFAR-10 with ResNet-18: the official `config/cifar10_r18_byol.yml`
(ProPos Table 6, BYOL row: NMI 79.4, ACC 87.8, ARI 76.6; Table 2 with ResNet-34: 81.7 / 89.4 / 79.0).

As in the official file, BYOL is the ProPos model with lambda_psl = 0 (`cluster_loss_weight: 0.`)
and sigma = 0 (`latent_std: 0.`): the loss is the symmetric BYOL alignment alone, and k-means only
measures (every 10 epochs, official `reassign: 10`). EMA momentum increases from 0.996 to 1.
Everything else is the ProPos default (`default_config("propos")`), as in the official file:
bigresnet18 (CIFAR stem), 32 px, CIFAR-10 statistics, v1 forward, EMA base 0.996, lr 0.05, 50 warm-up
epochs of 1000, batch 512 (128 x 4 GPUs).
"""
from jaxclust.methods import default_config


def get_config():
    c = default_config("propos")
    c.data.source = "tfds"
    c.data.name = "cifar10"
    c.data.split = "train+test"

    c.method.psl_weight = 0.0  # official cluster_loss_weight: 0.
    c.method.sigma = 0.0  # official latent_std: 0.
    c.method.ema_increase = True  # official momentum_increase: true

    c.cluster.num_clusters = 10
    c.cluster.every = 10  # official reassign: 10
    return c
