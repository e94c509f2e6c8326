"""HaDis on CIFAR-100-20 (official `config/cifar20_r18_propos.yml`); HaDis Table II: NMI 56.8, ACC 56.3, ARI 41.1.

`hadis_cifar10.py` with lambda 0.05, the cosine-increasing EMA and CIFAR-100 statistics. Official
`data_resample: true`: cluster-balanced resampling (`train.resample`).
"""

from jaxclust.config import sibling
from jaxclust.data.sources import normalization


def get_config():
    c = sibling(__file__, "hadis_cifar10").get_config()
    c.data.name = "cifar20"
    c.augment.mean, c.augment.std = normalization("cifar20")
    c.method.psl_weight = 0.05  # official cluster_loss_weight
    c.method.ema_increase = True  # official momentum_increase: true
    c.cluster.num_clusters = 20
    c.train.resample = True  # official data_resample: true
    return c
