"""SeCu's self-labeling stage (SeCu §4.2; method `secu_self_label`) on digits: 30 epochs fine-tuning a
finished `secu_digits.py` run, the first 5 on its stored assignments, at SeCu's lr 0.2 with a cosine to 0
and no warm-up or initialisation epoch:

    python launch/main.py --config=configs/secu_digits_self_label.py --workdir=DIR2 \\
        --config.method.init_workdir=DIR_OF_THE_SECU_DIGITS_RUN

The views stay the two digits views: SCAN's strong view (`augment.view2.randaugment_ops`,
`cutout_length`, as configs/secu_cifar10_self_label.py) hurts on 8x8 digits.
"""
from jaxclust.config import sibling
from jaxclust.methods import secu_self_label


def get_config():
    c = sibling(__file__, "secu_digits").get_config()
    c.method = secu_self_label.method_config()  # threshold 0.9 (paper)
    c.method.warmup_epochs = 5  # on the stored SeCu labels (paper: 10 of 100)
    c.optim.frozen_epochs = 0  # no initialisation epoch
    c.optim.warmup_epochs = 0
    c.train.epochs = 30
    return c
