"""BYOL + PCL on CIFAR-20, ProPos' ablation (Table 6, ResNet-18: NMI 49.7, ACC 46.9, ARI 27.8, mean of runs).

ProPos §5.1.3: "We integrated CC and PCL into BYOL by adding their losses without changing other
settings". So: everything of `byol_cifar20.py` (the official BYOL baseline; loaded from it), plus
ProtoNCE's prototype term with the settings of ProPos' MoCo + PCL (`pcl_cifar20.py`): weight 0.01,
granularities {250, 500, 1000}, 4,096 negative prototypes drawn with replacement, layout
[positive, negatives], mean of phi 1.0, from epoch 50. The term is applied to the online projector
output (as ProPos' PSL); the E-step clusters the target projector features.
"""
from jaxclust.config import sibling


def get_config():
    return sibling(__file__, "pcl_byol_cifar10").with_pcl(sibling(__file__, "byol_cifar20").get_config())
