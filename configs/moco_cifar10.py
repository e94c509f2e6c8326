"""MoCo v2 on CIFAR-10 as ProPos compares with it (ProPos §5.1.3-5.1.4, Hzzone/ProPos `moco.py`).

Data, augmentation (SimCLR's without blur), backbone (ResNet-18, CIFAR stem) and E-step are those of
`propos_cifar10.py` (loaded from it). ProPos Table 2 quotes MoCo on CIFAR-10 (ResNet-34) from
Tsai et al. [10] rather than re-running it: NMI 66.9, ACC 77.6, ARI 60.8; for that backbone set
--config.model.backbone=resnet34. ProPos' MoCo settings that `propos_cifar10.py` already has:
projection dimension 256 (§5.1.4), lr 0.05 x batch / 256, 50 warm-up epochs of 1,000, batch 512
("512 for MoCo", §5.1.3).

ProPos states an InfoNCE temperature of 1.0 for MoCo (§5.1.4; its PCL run's json also has
moco_temp: 1). That is far from MoCo v2's own 0.2 and makes InfoNCE weak; it is kept here as
stated. If the reproduction disagrees with Table 2, try --config.method.temperature=0.2.
"""

from jaxclust.config import sibling
from jaxclust.methods import moco


def get_config():
    c = sibling(__file__, "propos_cifar10").get_config()
    c.method = moco.method_config("propos")  # tau 1.0, queue 4096, m 0.99, symmetric, MoCo v2 MLP head
    c.model.projector_hidden = 512  # ProPos MoCoWrapper mlp: Linear(in_dim, in_dim), in_dim = 512 (ResNet-18)
    c.optim.weight_decay = 1e-4  # ProPos §5.1.4
    c.optim.eta_min = 0.001  # official learning_eta_min default 0.01, relative: 0.01 x 0.1
    c.optim.predictor_lr_mult = 1.0  # no predictor
    return c
