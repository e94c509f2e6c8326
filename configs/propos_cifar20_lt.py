"""ProPos on CIFAR-20-LT, ResNet-18 (ProPos Table 9: NMI 44.6, ACC 39.0, ARI 27.3).

Paper Sec. 5.8: the long-tailed set is built from the TRAINING set with imbalance ratio
min/max = 0.1, with the recipe of Tang et al. / LDAM: class k keeps int(n_max * 0.1^(k/(K-1))) images,
drawn with numpy seed 0 (jaxclust.data.sources.long_tail). For CIFAR-20 the ratio is applied to the
20 super-classes (the paper's min/max over the K clusters). tfds stores CIFAR in another order than
the original pickles, so the drawn images differ from the paper's; the counts are the same.
Everything else is propos_cifar20.py (official cifar20_r18_propos.yml); ResNet-18 as the paper's default backbone (Sec. 5.1.2).
"""
from jaxclust.config import base_config
from jaxclust.data.sources import normalization


def get_config():
    c = base_config()
    c.data.source = "tfds"
    c.data.name = "cifar20"
    c.data.split = "train"  # paper Sec. 5.8: built on the training set
    c.data.imbalance_ratio = 0.1
    c.data.image_size = 32

    c.augment.mean, c.augment.std = normalization("cifar20")

    c.model.backbone = "resnet18"
    c.model.stem = "cifar"

    c.method.psl_weight = 0.1
    c.method.sigma = 0.001
    c.method.forward = "v2"
    c.method.ema_momentum = 0.996
    c.method.ema_increase = True

    c.optim.lr = 0.05
    c.optim.warmup_epochs = 50
    c.train.epochs = 1000
    c.train.batch_size = 256

    c.kmeans.num_clusters = 20
    c.kmeans.every = 1
    return c
