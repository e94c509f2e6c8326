"""MoCo v2 on CIFAR-20 (CIFAR-100 with the 20 superclasses) as ProPos compares with it.

`moco_cifar10.py` with the data set changed. ProPos Table 2 quotes MoCo on CIFAR-20 (ResNet-34)
from [10]: NMI 39.0, ACC 39.7, ARI 24.2.
"""

from jaxclust.data.sources import normalization
from jaxclust.config import sibling


def get_config():
    c = sibling(__file__, "moco_cifar10").get_config()
    c.data.name = "cifar20"  # official: CIFAR-100 targets mapped to 20 superclasses; train + test
    c.augment.mean, c.augment.std = normalization("cifar20")  # official TrainTask.normalize('cifar20')
    c.cluster.num_clusters = 20  # official num_cluster: None -> number of classes
    return c
