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
"""
from jaxclust.config import base_config
from jaxclust.data.sources import normalization
from jaxclust.methods import secu


def secu_augment(c, min_crop):
    """SeCu's two views (seed_secu.md §6; official main.py aug_1 / aug_2)."""
    c.augment.crop = True
    c.augment.crop_scale = (min_crop, 1.0)
    c.augment.flip_prob = 0.5
    c.augment.jitter_prob = 0.8
    c.augment.brightness, c.augment.contrast, c.augment.saturation, c.augment.hue = 0.4, 0.4, 0.2, 0.1
    c.augment.grayscale_prob = 0.2
    c.augment.blur_prob = 1.0  # view 1: always blurred
    c.augment.blur_kernel = 13
    c.augment.blur_sigma = (0.1, 2.0)
    c.augment.solarize_prob = 0.0
    c.augment.solarize_threshold = 128 / 255  # PIL ImageOps.solarize(threshold=128)
    c.augment.asymmetric = True
    c.augment.view2.blur_prob = 0.1
    c.augment.view2.solarize_prob = 0.2


def get_config():
    c = base_config()
    c.data.source = "tfds"
    c.data.name = "cifar10"
    c.data.split = "train"  # SCAN / SeCu: train on the training split
    c.data.image_size = 32

    secu_augment(c, min_crop=0.3)  # official --min-crop 0.3 (CIFAR-10)
    c.augment.mean, c.augment.std = normalization("cifar10")

    c.model.backbone = "resnet18"  # official nets/resnet_cifar.py: 3x3 stem, no max-pool
    c.model.stem = "cifar"
    c.model.projector_hidden = 512  # 2-layer MLP head 512-512-128 (Table 1)
    c.model.projector_dim = 128  # d = 128 (Table 8)

    c.method = secu.method_config()  # size constraint, gamma 0.9, eta 0.1, lambda 0.05 / 0.05, tau 0.2
    c.method.centers_lr = 1.2  # official --secu-clr 1.2
    c.method.entropy_alpha = 6000.0  # Table 4 (used with constraint=entropy)

    c.optim.name = "sgd"
    c.optim.lr = 0.2  # official --lr 0.2, not scaled with the batch
    c.optim.momentum = 0.9
    c.optim.weight_decay = 1e-4  # official main.py default
    c.optim.warmup_epochs = 10

    c.train.epochs = 401  # official --epochs 401: 1 initialisation + 400
    c.train.batch_size = 128
    c.train.embed_batch_size = 512

    c.cluster.num_clusters = 10  # K; heads of 10 ... 100 centres
    c.cluster.every = 10  # E-step = head-K prediction of every image (logging only, no k-means)
    return c
