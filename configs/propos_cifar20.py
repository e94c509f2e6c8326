"""ProPos on CIFAR-20 with ResNet-18: the official recipe, `config/cifar20_r18_propos.yml` of Hzzone/ProPos.

CIFAR-20 is CIFAR-100 with its 20 coarse super-classes (the official `super_classes` table equals
CIFAR-100's own coarse labels), train + test, 60,000 images. Targets ProPos Table 6 (ResNet-18):
NMI 58.2, ACC 57.8, ARI 42.3. Table 2 (ResNet-34: 60.6 / 61.4 / 45.1) came from the official
`cifar20_r34_propos.yml`: model.backbone=resnet34, optim.schedule=stepwise_cosine (its
`propos_cifar20_r34` learning-rate formula), the rest as here.

Official code over the paper, because the author points to this file as the one that reproduces the
paper (official issue #4): batch 64 x 4 GPUs = 256, `v2: true` (both views in one forward), EMA
momentum increasing from 0.996 to 1, and `data_resample: true`, cluster-balanced resampling by the
k-means pseudo-labels, which the paper does not mention (`train.resample`).

The official 4-GPU run's per-GPU behaviour is off by default (global-batch BatchNorm and PSL); to
reproduce it: --config.model.bn_groups=4 --config.method.psl_processes=4
--config.method.v2_layout=processes (each GPU's BatchNorm over its own two views, and forward_v2's
chunk(2) halves with their label misalignment, compared step by step with the official code by
`launch/compare_official.py`, setting per_gpu_v2).
"""
from jaxclust.config import base_config
from jaxclust.data.sources import normalization


def get_config():
    c = base_config()
    c.data.source = "tfds"
    c.data.name = "cifar20"
    c.data.split = "train+test"  # official whole_dataset: true
    c.data.image_size = 32

    c.augment.mean, c.augment.std = normalization("cifar20")  # official CIFAR-100 statistics

    c.model.backbone = "resnet18"  # official bigresnet18 (CIFAR stem)
    c.model.stem = "cifar"

    c.method.psl_weight = 0.1  # official cluster_loss_weight
    c.method.sigma = 0.001  # official latent_std
    c.method.forward = "v2"  # official v2: true
    c.method.ema_momentum = 0.996
    c.method.ema_increase = True  # official momentum_increase: true

    c.optim.lr = 0.05  # x 256/256
    c.optim.warmup_epochs = 50

    c.train.epochs = 1000
    c.train.batch_size = 256  # official 64 x 4 GPUs
    c.train.resample = True  # official data_resample: true

    c.cluster.num_clusters = 20
    c.cluster.every = 1  # official reassign: 1
    return c
