"""HaDis on CIFAR-10 with ResNet-18: the official recipe (Regan-Zhang/HaDis `config/cifar10_r18_propos.yml`).

Targets HaDis Table II: NMI 86.9, ACC 93.0, ARI 86.2. ProPos' official CIFAR-10 recipe run on one GPU
(batch 256, so lr 0.05 x 256/256) plus HSD (eta 1, tau_h 0.5); 60,000 train + test images; k-means
on the teacher's features every epoch, whose labels are the reported ones.

Every other value is the default, the official file's: train_transform crop (0.08, 1), flip, jitter
(0.4, 0.4, 0.4, 0.1) p 0.8, grey 0.2, no blur, CIFAR-10 statistics; bigresnet18 (3x3 stem, no
max-pool), hidden_size 4096, feat_dim 256; learning_rate 0.05, weight decay 5e-4, 50 warm-up epochs
of 1000, predictor lr x10; k-means every epoch (reassign 1).
"""
from jaxclust.config import base_config
from jaxclust.methods import hadis


def get_config():
    c = base_config()
    c.data.source = "tfds"
    c.data.name = "cifar10"
    c.data.split = "train+test"  # official whole_dataset: true

    c.method = hadis.method_config()  # lambda 0.1, tau 0.5, epsilon 0.001, EMA 0.996, HSD eta 1 / tau_h 0.5

    c.train.batch_size = 256  # official: one GPU, batch 256

    c.cluster.num_clusters = 10
    return c
