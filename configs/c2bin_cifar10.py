"""C2BIN on CIFAR-10, clustering setting (C2BIN §4.3, Table 10): labels = argmax of the K = 10 head.

Targets C2BIN Table 3: [Mean] NMI 0.62, ACC 0.72, ARI 0.53. PICA's protocol (§4.3): train and score
the 60,000 train + test images. No official code exists; the readings of seed_c2bin.md §5 are the
`method_config()` defaults. Backbone: the ResNet-34 "similar to ResNet-34" is PICA's (A12), a 3x3
stride-1 stem followed by a 2x2 stride-2 max-pool (model.stem='pica'). Augmentation: the SimCLR CIFAR
recipe (A15; PICA's own is crop scale 0.2 and hue 0.4), which is the default: crop (0.08, 1), flip,
jitter (0.4, 0.4, 0.4, 0.1) p 0.8, grey 0.2, no blur, CIFAR-10 statistics. Adam (beta1 = momentum 0.9,
torch's default) with no warm-up, so the default warmup_cosine schedule is a cosine from lr to 0 over the run.
"""
from jaxclust.config import base_config
from jaxclust.methods import c2bin


def get_config():
    c = base_config()
    c.data.source = "tfds"
    c.data.name = "cifar10"
    c.data.split = "train+test"  # PICA protocol

    c.model.backbone = "resnet34"  # Table 10 ("similar to ResNet-34", PICA's)
    c.model.stem = "pica"  # A12: 3x3/1 conv, BN, ReLU, MaxPool2d(2, 2, padding=1)
    c.model.projector_hidden = 512  # Table 10: MLP(512, 512)
    c.model.projector_dim = 128  # d_a = 128, as SimCLR / MoCo v2 (A10)
    c.model.predictor_hidden = 512

    c.method = c2bin.method_config()  # Table 10: heads (10, 40, 160), tau 1, lambdas 1 / 1, gamma 0.995

    c.optim.name = "adam"  # Table 10
    c.optim.lr = 3e-4  # x 256/256; cosine annealing (3e-4, 0)
    c.optim.weight_decay = 0.0  # Table 10: no weight decay
    c.optim.warmup_epochs = 0
    c.optim.predictor_lr_mult = 1.0

    c.train.epochs = 300  # Table 10
    c.train.batch_size = 256  # Table 10

    c.cluster.num_clusters = 10  # the evaluated head (no k-means runs)
    return c
