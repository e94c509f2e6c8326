"""BYOL baseline on CIFAR-20 with ResNet-18: the official `config/cifar20_r18_byol.yml`
(ProPos Table 6, BYOL row: NMI 55.5, ACC 53.9, ARI 37.6; Table 2 with ResNet-34: 55.9 / 56.9 / 39.3).

The CIFAR-10 file (`byol_cifar10.py`, loaded from it) with CIFAR-20's data, batch and K.

As in the official file, BYOL is the ProPos model with lambda_psl = 0 (`cluster_loss_weight: 0.`)
and sigma = 0 (`latent_std: 0.`): the loss is the symmetric BYOL alignment alone, and k-means only
measures (every 10 epochs, official `reassign: 10`). EMA momentum increases from 0.996 to 1.
"""

from jaxclust.config import sibling
from jaxclust.data.sources import normalization


def get_config():
    c = sibling(__file__, "byol_cifar10").get_config()
    c.data.name = "cifar20"
    c.augment.mean, c.augment.std = normalization("cifar20")
    c.train.batch_size = 256  # official 64 x 4 GPUs
    c.cluster.num_clusters = 20
    return c
