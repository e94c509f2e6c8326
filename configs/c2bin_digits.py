"""C2BIN on scikit-learn's digits (1,797 8x8 images, 10 classes): a CPU-sized run beside propos_digits.py.

The same data, augmentation, ConvNet, projector/predictor sizes and budget as `propos_digits.py`
(220 epochs, batch 128). C2BIN's clustering setting (Table 10: heads (10, 40, 160), tau 1,
lambda_clust = lambda_ent = 1, constant EMA 0.995, Adam with a cosine learning rate to 0, no weight
decay; cosine from lr to 0 is the default warmup_cosine with no warm-up, Adam beta1 the default
momentum 0.9, torch's); labels are argmax of the K = 10 head.
"""

from jaxclust.config import base_config, sibling
from jaxclust.methods import c2bin


def get_config():
    c = base_config()
    # propos_digits.py's data and augmentation (small affine instead of crops, brightness/contrast, no flip)
    digits = sibling(__file__, "propos_digits").get_config()
    c.data, c.augment = digits.data, digits.augment

    c.model.backbone = "convnet"
    c.model.projector_hidden = 512  # Table 10: MLP(512, 512)
    c.model.projector_dim = 128  # d_a = 128 (A10)
    c.model.predictor_hidden = 512

    c.method = c2bin.method_config()  # Table 10, heads (10, 40, 160)

    c.optim.name = "adam"  # Table 10
    c.optim.lr = 6e-4  # x 128/256 -> 3e-4, Table 10's Adam learning rate
    c.optim.weight_decay = 0.0  # Table 10: no weight decay
    c.optim.warmup_epochs = 0  # Table 10: cosine annealing (3e-4, 0), no warm-up
    c.optim.predictor_lr_mult = 1.0  # C2BIN names no predictor multiplier

    c.train.epochs = 220  # as propos_digits.py
    c.train.batch_size = 128
    c.train.log_every_epochs = 20
    c.train.checkpoint_every_epochs = 20

    c.cluster.num_clusters = 10  # labels: argmax of the K = 10 head
    c.cluster.every = 5
    return c
