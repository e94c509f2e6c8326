"""MoCo v2 on scikit-learn's digits, at `propos_digits.py`'s budget (loaded from it).

Data, augmentation, backbone, optimiser schedule, epochs, batch and E-step cadence are ProPos
digits'; the method section is MoCo v2 as ProPos ran it (symmetric loss, momentum 0.99, InfoNCE
temperature 1.0, weight decay 1e-4), with two values sized for 1,797 tiny images instead of CIFAR's
60,000:
  * queue 1,024 keys (4 steps of 2 x 128 keys, 512 images = 28 % of the data; CIFAR's 4,096 would hold
    every digit more than twice, its own earlier views as negatives);
  * MoCo's head: Linear(128, 128) -> ReLU -> Linear(128, 128), hidden = the backbone's width as in
    ProPos' MoCo, out = ProPos digits' projector_dim.
MoCo v2's own temperature 0.2 (--config.method.temperature=0.2) does worse here: NMI peaks near 0.82
around epoch 40 and falls to 0.53 by epoch 220 while the features become uniform (class collision,
ProPos §5.2); with 1.0 NMI rises steadily to 0.86.
"""

from jaxclust.config import sibling
from jaxclust.methods import moco


def get_config():
    c = sibling(__file__, "propos_digits").get_config()
    c.method = moco.method_config("propos")  # tau 1.0, m 0.99, symmetric, MoCo v2 MLP head
    c.method.queue_size = 1024  # multiple of 2 x batch (symmetric)
    c.model.projector_hidden = 128  # ProPos MoCo head: Linear(in_dim, in_dim); ConvNet width 128
    c.optim.weight_decay = 1e-4  # ProPos §5.1.4: MoCo v2 weight decay 1e-4
    c.optim.predictor_lr_mult = 1.0  # no predictor
    return c
