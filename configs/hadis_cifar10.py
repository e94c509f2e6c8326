"""HaDis on CIFAR-10 with ResNet-18: the official recipe (Regan-Zhang/HaDis `config/cifar10_r18_propos.yml`).

Targets HaDis Table II: NMI 86.9, ACC 93.0, ARI 86.2. ProPos' official CIFAR-10 recipe run on one GPU
(batch 256, so lr 0.05 x 256/256) plus HSD (eta 1, tau_h 0.5); 60,000 train + test images; k-means
on the teacher's features every epoch, whose labels are the reported ones.
"""
from jaxclust.config import base_config
from jaxclust.data.sources import normalization
from jaxclust.methods import hadis


def get_config():
    c = base_config()
    c.data.source = "tfds"
    c.data.name = "cifar10"
    c.data.split = "train+test"  # official whole_dataset: true
    c.data.image_size = 32

    # official train_transform: crop (0.08, 1), flip, jitter (0.4, 0.4, 0.4, 0.1) p 0.8, grey 0.2, no blur
    c.augment.crop_scale = (0.08, 1.0)
    c.augment.blur_prob = 0.0
    c.augment.mean, c.augment.std = normalization("cifar10")

    c.model.backbone = "resnet18"  # official bigresnet18: 3x3 stem, no max-pool
    c.model.stem = "cifar"
    c.model.projector_hidden = 4096  # official hidden_size
    c.model.projector_dim = 256  # official feat_dim
    c.model.predictor_hidden = 4096

    c.method = hadis.method_config()  # lambda 0.1, tau 0.5, epsilon 0.001, EMA 0.996, HSD eta 1 / tau_h 0.5

    c.optim.lr = 0.05  # official learning_rate, x 256/256
    c.optim.weight_decay = 5e-4
    c.optim.warmup_epochs = 50
    c.optim.predictor_lr_mult = 10.0

    c.train.epochs = 1000
    c.train.batch_size = 256  # official: one GPU, batch 256

    c.cluster.num_clusters = 10
    c.cluster.every = 1  # official reassign: 1
    return c
