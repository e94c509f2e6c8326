"""BYOL + PCL on CIFAR-10, ProPos' ablation (Table 6, ResNet-18: NMI 74.4, ACC 85.3, ARI 71.4, mean of runs).

ProPos §5.1.3: "We integrated CC and PCL into BYOL by adding their losses without changing other
settings". So: everything of `byol_cifar10.py` (the official BYOL baseline; loaded from it), plus
ProtoNCE's prototype term with the settings of ProPos' MoCo + PCL (`pcl_cifar10.py`): weight 0.01,
granularities {250, 500, 1000}, 4,096 negative prototypes drawn with replacement, layout
[positive, negatives], mean of phi 1.0, from epoch 50. The term is applied to the online projector
output (as ProPos' PSL); the E-step clusters the target projector features.
"""

from jaxclust.config import follow, sibling
from jaxclust.methods import pcl


def get_config():
    return with_pcl(sibling(__file__, "byol_cifar10").get_config())


def with_pcl(c):
    """A BYOL config plus ProPos' PCL term (also used by pcl_byol_cifar20.py)."""
    byol_section = c.method
    c.method = pcl.method_config("propos_byol")
    for key in ("ema_momentum", "ema_increase", "forward"):
        if key in byol_section:
            c.method[key] = byol_section[key]  # the BYOL run's own values
    c.method.proto_warmup_epochs = follow(c.optim, "warmup_epochs")  # ProPos gates cls_loss by its lr warm-up (50)
    c.cluster.every = 1  # PCL: an E-step every epoch (ProPos json reassign 1)
    return c
