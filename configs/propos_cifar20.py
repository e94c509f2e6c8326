"""ProPos on CIFAR-20 with ResNet-18: the official recipe, `config/cifar20_r18_propos.yml` of Hzzone/ProPos.

CIFAR-20 is CIFAR-100 with its 20 coarse super-classes (the official `super_classes` table equals
CIFAR-100's own coarse labels), train + test, 60,000 images. Targets ProPos Table 6 (ResNet-18):
NMI 58.2, ACC 57.8, ARI 42.3. Table 2 (ResNet-34: 60.6 / 61.4 / 45.1) came from the official
`cifar20_r34_propos.yml`: model.backbone=resnet34, optim.schedule=stepwise_cosine (its
`propos_cifar20_r34` learning-rate formula), the rest as here.

Official code over the paper, because the author points to this file as the one that reproduces the
paper (official issue #4): batch 64 x 4 GPUs = 256, `v2: true` (both views in one forward), EMA
momentum increasing from 0.996 to 1, and `data_resample: true`, cluster-balanced resampling by the
k-means pseudo-labels, which the paper does not mention (`train.resample`). The rest is the default,
as in the official file: bigresnet18 (CIFAR stem) at 32 px, cluster_loss_weight 0.1, latent_std 0.001,
lr 0.05 x 256/256, 50 warm-up epochs of 1000, k-means every epoch (reassign 1).

The official 4-GPU run's per-GPU behaviour is off by default (global-batch BatchNorm and PSL); to
reproduce it: --config.model.bn_groups=4 --config.method.psl_processes=4
--config.method.v2_layout=processes (each GPU's BatchNorm over its own two views, and forward_v2's
chunk(2) halves with their label misalignment, compared step by step with the official code by
`launch/compare_official.py`, setting per_gpu_v2).
"""
from jaxclust.data.sources import normalization
from jaxclust.methods import default_config


def get_config():
    c = default_config("propos")
    c.data.source = "tfds"
    c.data.name = "cifar20"
    c.data.split = "train+test"  # official whole_dataset: true

    c.augment.mean, c.augment.std = normalization("cifar20")  # official CIFAR-100 statistics

    c.method.forward = "v2"  # official v2: true
    c.method.ema_increase = True  # official momentum_increase: true

    c.train.batch_size = 256  # official 64 x 4 GPUs
    c.train.resample = True  # official data_resample: true

    c.cluster.num_clusters = 20
    return c
