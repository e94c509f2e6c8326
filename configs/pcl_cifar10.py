"""PCL ("MoCo + PCL") on CIFAR-10 as ProPos reproduced it (ProPos §5.1.3, Tables 2 and 6).

MoCo v2 of `moco_cifar10.py` plus ProtoNCE with ProPos' settings: weight 0.01, granularities
{250, 500, 1000}, 4,096 negative prototypes drawn with replacement, row layout [positive, negatives],
ProtoNCE from epoch 50 (the lr warm-up), an E-step every epoch (json reassign 1, as moco_cifar10.py);
values from `config/pcl_cifar20_r18_config.json` and `models/pcl/` of Hzzone/ProPos (see
jaxclust/methods/pcl.py).
Targets: Table 6 (ResNet-18) NMI 77.6, ACC 85.5, ARI 73.4; Table 2 (ResNet-34,
--config.model.backbone=resnet34) NMI 80.2, ACC 87.4, ARI 76.6.
"""

from jaxclust.config import sibling
from jaxclust.methods import pcl


def get_config():
    c = sibling(__file__, "moco_cifar10").get_config()
    c.method = pcl.method_config("propos")  # MoCo v2 (tau 1, queue 4096, m 0.99, symmetric) + ProtoNCE
    c.model.projector_dim = 128  # json feat_dim 128 (ProPos' text says 256 for MoCo)
    return c
