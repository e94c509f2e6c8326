"""ProPos on ImageNet-200, the SCAN subset, with ResNet-50 for 300 epochs (ProPos Table 8: NMI 80.6, ARI 53.8).

Paper Sec. 5.7: the same 200 classes as SCAN (their WordNet ids are in
jaxclust/data/subsets/imagenet200.txt), "the same experimental settings as the other benchmarked data
sets", ResNet-50, 300 epochs; clustered on the training set. No official config exists, so the
rest is the paper's common recipe (Sec. 5.1.3-5.1.4): batch 256, lr 0.05 x B/256, 50 warm-up epochs,
lambda 0.1, sigma 0.001, EMA 0.996, no blur; 224x224 as SCAN.

Data: tfds imagenet2012 (manual download), train split, the subset's classes only (about 256,000 images, 39 GB at 224x224: streamed by the host).
Table 8 scores the validation set; the training loop scores its k-means labels on the training set
(a held-out evaluation is not wired in yet).
"""
from jaxclust.config import base_config
from jaxclust.data.sources import normalization


def get_config():
    c = base_config()
    c.data.source = "tfds"
    c.data.name = "imagenet200"
    c.data.split = "train"
    c.data.image_size = 224
    c.data.streaming = True

    c.augment.mean, c.augment.std = normalization("imagenet")
    c.augment.blur_prob = 0.0

    c.model.backbone = "resnet50"  # paper Sec. 5.7
    c.model.stem = "imagenet"

    c.method.psl_weight = 0.1
    c.method.sigma = 0.001
    c.method.ema_momentum = 0.996  # paper Sec. 5.1.4

    c.optim.lr = 0.05
    c.optim.warmup_epochs = 50
    c.train.epochs = 300  # paper Sec. 5.7
    c.train.batch_size = 256

    c.kmeans.num_clusters = 200
    c.kmeans.every = 1
    return c
