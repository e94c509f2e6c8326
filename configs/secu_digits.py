"""SeCu on scikit-learn's digits (1,797 8x8 images, 10 classes): a CPU-sized run beside propos_digits.py.

The same data, augmentation, ConvNet and budget as `propos_digits.py` (220 training epochs, batch 128),
plus SeCu's initialisation epoch; everything SeCu-specific is the official CIFAR-10 recipe
(`method_config()` defaults: lambda 0.05/0.05, tau 0.2, 10 heads, encoder lr 0.2 unscaled, centres
lr 1.2, weight decay 1e-4, 10 warm-up epochs; SGD with momentum 0.9, the default) except the constraint.

SeCu-Entropy, not SeCu-Size: measured on digits, the size constraint collapses (NMI ~0 after 12 epochs
with dual lr 0.1, 0.5 and 2.8): with 14 steps per epoch (CIFAR: 391) the initialisation epoch leaves
most clusters empty, the duals then move whole batches into one cluster and the representation
collapses onto those labels. The entropy constraint (alpha = 6 N / 50, the paper's rule) uses exact
global counts and does not depend on the number of steps.
"""

from jaxclust.config import base_config, sibling
from jaxclust.methods import secu


def get_config():
    c = base_config()
    # propos_digits.py's data and augmentation (small affine instead of crops, brightness/contrast, no flip)
    digits = sibling(__file__, "propos_digits").get_config()
    c.data, c.augment = digits.data, digits.augment

    c.model.backbone = "convnet"
    c.model.projector_hidden = 512  # SeCu: Linear(512, 512)-BN-ReLU-Linear(512, 128)
    c.model.projector_dim = 128  # SeCu d = 128 (Table 8)

    c.method = secu.method_config()
    c.method.constraint = "entropy"  # see above; SeCu-Size: --config.method.constraint=size
    c.method.entropy_alpha = 6.0 * 1797 / 50  # the paper's rule alpha = 6 N / 50 (6000 on CIFAR)

    # official: lr 0.2 unscaled, weight decay 1e-4 on every parameter and the centres, the initialisation
    # epoch, 10 warm-up epochs, cosine to 0
    sibling(__file__, "secu_cifar10").secu_optim(c)

    c.train.epochs = 221  # 1 initialisation epoch + 220, as propos_digits.py's 220
    c.train.batch_size = 128  # SeCu's batch
    c.train.log_every_epochs = 20
    c.train.checkpoint_every_epochs = 20

    c.cluster.num_clusters = 10  # K of the evaluated head (heads have 10, 20, ..., 100 centres)
    c.cluster.every = 5  # E-step (here: head prediction, no k-means) cadence
    return c
