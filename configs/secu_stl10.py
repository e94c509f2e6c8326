"""SeCu-Size on STL-10, stage 1 (train + 100k unlabelled, 96x96): official `run_stl10.sh`.

Targets SeCu Table 5 after both stages: SeCu-Size (mean) NMI 69.4, ACC 80.2, ARI 63.9. Stage 1 trains
on the 105,000 train + unlabelled images (the loop scores the 5,000 labelled ones). Stage 2 (App. C.1:
100 epochs on the 5,000 labelled images, head K only, encoder lr 0.002, alpha 600) is
`secu_stl10_stage2.py`, warm-started from this run's workdir with --config.method.init_from.
Official STL-10 network: the CIFAR stem followed by MaxPool(2, 2, padding 1), and AvgPool(7) over the
7x7 last map (a global average pool): model.stem='pica'.
"""

from jaxclust.config import sibling
from jaxclust.data.sources import normalization


def get_config():
    base = sibling(__file__, "secu_cifar10")
    c = base.get_config()
    c.data.name = "stl10"
    # secu_cifar10's training split: 5,000 labelled images + 100,000 unlabelled (official --secu-num-ins 105000)
    c.data.unlabelled = True
    c.data.image_size = 96
    c.model.stem = "pica"  # official: 3x3 conv, BN, ReLU, MaxPool2d(2, 2, padding=1)
    base.secu_augment(c, min_crop=0.2)  # official --min-crop 0.2
    c.augment.mean, c.augment.std = normalization("stl10")
    c.method.centers_lr = 0.8  # official --secu-clr 0.8
    c.method.center_temperature = 1.0  # official --secu-tw 1 for STL-10
    c.method.entropy_alpha = 26460.0  # paper App. C.1 (not 6 N / 50)
    c.train.epochs = 801  # 1 + 800
    return c
