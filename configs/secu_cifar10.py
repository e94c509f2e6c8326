"""SeCu-Size on CIFAR-10 with ResNet-18: the official recipe (idstcv/SeCu `run_cifar10.sh`, main.py).

Targets SeCu Table 5: SeCu-Size (mean of 8) NMI 79.3, ACC 88.1, ARI 77.5; SeCu-Entropy with
method.constraint=entropy (alpha 6000): 79.2 / 88.0 / 77.2. As SCAN, SeCu trains on the 50,000
training images; the paper scores the test split, this loop scores the training images it clusters
(run launch/evaluate.py on a test-split config for the paper's number).

Official details kept: 401 epochs = 1 initialisation epoch (encoder lr 0) + 400; encoder lr 0.2
(not scaled with the batch), 10 warm-up epochs then cosine to 0; centres at a constant 1.2;
weight decay 1e-4 on everything; batch 128; BYOL's asymmetric views (blur 1.0 / 0.1, solarize
0 / 0.2). Differences: each epoch drops its last partial batch (official drop_last=False); the
blur kernel is 13 pixels (PIL's GaussianBlur(radius) has none; 13 covers +-3 sigma at sigma 2).
The default ResNet-18 with the CIFAR stem is the official nets/resnet_cifar.py (3x3 stem, no max-pool);
SGD with momentum 0.9 and CIFAR-10 statistics are defaults too.
"""
from jaxclust.config import base_config
from jaxclust.methods import secu


def secu_augment(c, min_crop):
    """SeCu's two views (seed_secu.md §6; official main.py aug_1 / aug_2): RandomResizedCrop(min_crop, 1),
    flip 0.5, ColorJitter(0.4, 0.4, 0.2, 0.1) p 0.8, grey 0.2, blur sigma (0.1, 2) p 1.0 / 0.1, solarize
    p 0 / 0.2; the values not set here are the defaults."""
    c.augment.crop_scale = (min_crop, 1.0)
    c.augment.saturation = 0.2
    c.augment.blur_prob = 1.0  # view 1: always blurred
    c.augment.blur_kernel = 13
    c.augment.solarize_threshold = 128 / 255  # PIL ImageOps.solarize(threshold=128)
    c.augment.asymmetric = True


def secu_optim(c):
    """SeCu's optimiser (official main.py; SGD with momentum 0.9 is the default): encoder lr 0.2 not
    scaled with the batch, the initialisation epoch at lr 0, 10 warm-up epochs, then a cosine to 0 at
    the end; weight decay 1e-4 on every parameter; the centres at the constant method.centers_lr."""
    c.optim.lr = 0.2  # official --lr 0.2, ...
    c.optim.lr_batch_scaling = "none"  # ... not scaled with the batch
    c.optim.weight_decay = 1e-4  # official main.py default
    c.optim.frozen_epochs = 1  # the initialisation epoch (paper §4): encoder lr 0, centres trained
    c.optim.warmup_epochs = 10
    c.optim.schedule = "warmup_cosine_to_end"  # official adjust_learning_rate: warm-up, then cosine to 0 at the end
    c.optim.predictor_lr_mult = 1.0  # SeCu has no predictor


def get_config():
    c = base_config()
    c.data.source = "tfds"
    c.data.name = "cifar10"
    c.data.split = "train"  # SCAN / SeCu: train on the training split

    secu_augment(c, min_crop=0.3)  # official --min-crop 0.3 (CIFAR-10)

    c.model.projector_hidden = 512  # 2-layer MLP head 512-512-128 (Table 1)
    c.model.projector_dim = 128  # d = 128 (Table 8)

    # size constraint, gamma 0.9, eta 0.1, lambda 0.05 / 0.05, tau 0.2, centres lr 1.2 (official --secu-clr),
    # alpha 6000 (Table 4, used with constraint=entropy)
    c.method = secu.method_config()

    secu_optim(c)

    c.train.epochs = 401  # official --epochs 401: 1 initialisation + 400
    c.train.batch_size = 128

    c.cluster.num_clusters = 10  # K; heads of 10 ... 100 centres
    c.cluster.every = 10  # E-step = head-K prediction of every image (logging only, no k-means)
    return c
