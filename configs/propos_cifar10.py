"""ProPos on CIFAR-10 with ResNet-18: the official recipe, `config/cifar10_r18_propos.yml` of Hzzone/ProPos.

Targets ProPos Table 6 (ResNet-18, CIFAR-10): NMI 85.1, ACC 91.6, ARI 83.5. Table 2 reports
ResNet-34 (NMI 88.6, ACC 94.3, ARI 88.4); for it set model.backbone=resnet34 and follow the
author's posted R34 config (issue #8 of the official repository: batch 64 x 4, v2 forward,
cosine-increasing EMA).

By default BatchNorm sees the whole global batch of 512 and PSL is the paper's global-batch loss with
lambda 0.1, on any number of devices. The official 4-GPU run differs in two ways, each an option:
per-GPU BatchNorm over 128 images with the target batch shuffled across GPUs
(--config.model.bn_groups=4), and a PSL computed per GPU, with absent clusters judged on the GPU's
128 rows and its gradient scaled by 1/4 through the gather layer (--config.method.psl_processes=4).
Both together reproduce the official dynamics on one device.

Every value not set here is the default of `jaxclust/config.py` and `jaxclust/methods/propos.py`,
which are this official file's: ResNet-18 with the CIFAR stem, projector/predictor 4096 -> 256, PSL
lambda 0.1 and tau 0.5, PSA sigma 0.001, v1 forward, EMA 0.996; SGD lr 0.05 x 512/256, momentum 0.9,
weight decay 5e-4, 50 warm-up epochs of 1000, predictor lr x10; batch 512 (128 x 4 GPUs); its
train_transform (RandomResizedCrop(0.08, 1), flip, ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8, grayscale
0.2, no blur, CIFAR-10 mean/std); k-means every epoch, 10 restarts of at most 300 iterations.
"""
from jaxclust.methods import default_config


def get_config():
    c = default_config("propos")
    c.data.source = "tfds"
    c.data.name = "cifar10"
    c.data.split = "train+test"  # official whole_dataset: true -> 60,000 images (paper Table 1)
    c.cluster.num_clusters = 10  # official num_cluster: None -> number of classes
    return c
