"""C2BIN on CIFAR-10, representation-learning setting (C2BIN §4.1, Table 5), ResNet-18.

Targets C2BIN Table 1 ([Mean] gap+LP / kNN5 / kNN200: 81.5 / 84.8 / 84.9; launch/evaluate.py --linear
for the linear probe). Pre-trains on the 50,000 training images. Heads (32, 64, 128) have no K = 10
head, so the loop's cluster labels are spherical k-means (K = 10) on the runner's l2-normalised
pooled feature (method.labels=kmeans). LARS (trust coefficient 1e-3, biases and BN excluded from
weight decay and adaptation, A14) at a constant 0.2; ResNet-18 with the CIFAR stem ("following
Wu et al. 2018"; Table 5), SimCLR's CIFAR augmentation (§2.8: crop (0.08, 1), no blur), lambda_ent 1
(Table 5) and momentum 0.9 are the defaults. Other data sets: data.name=cifar100 (100 classes: cluster.num_clusters=100), or
data.name=stl10 data.split=train data.unlabelled=True data.image_size=96 model.stem=imagenet.
"""
from jaxclust.config import base_config
from jaxclust.methods import c2bin


def get_config():
    c = base_config()
    c.data.source = "tfds"
    c.data.name = "cifar10"
    c.data.split = "train"  # pre-training on the training split (§3.1 best reading)

    c.model.projector_hidden = 512  # Table 5: MLP(512, 512)
    c.model.projector_dim = 128
    c.model.predictor_hidden = 512

    c.method = c2bin.method_config()
    c.method.cluster_heads = (32, 64, 128)  # Table 5
    c.method.temperature = 0.5  # Table 5
    c.method.clust_weight = 2.0  # Table 5
    c.method.ema_momentum = 0.99  # Table 5
    c.method.labels = "kmeans"  # no head has K = 10

    c.optim.name = "lars"  # Table 5
    c.optim.lr = 0.2  # Constant(0.2), x 256/256
    c.optim.weight_decay = 1e-6
    c.optim.warmup_epochs = 0
    c.optim.schedule = "constant"
    c.optim.predictor_lr_mult = 1.0

    c.train.epochs = 500  # Table 5
    c.train.batch_size = 256

    c.cluster.num_clusters = 10
    c.cluster.every = 10
    return c
