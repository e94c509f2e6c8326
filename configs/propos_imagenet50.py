"""ProPos on ImageNet-50, the SCAN subset, with ResNet-50 for 300 epochs (ProPos Table 8: NMI 82.8, ARI 69.1).

Paper Sec. 5.7: the same 50 classes as SCAN (their WordNet ids are in
jaxclust/data/subsets/imagenet50.txt), "the same experimental settings as the other benchmarked data
sets", ResNet-50, 300 epochs; clustered on the training set. No official config exists, so the
rest is the paper's common recipe (Sec. 5.1.3-5.1.4): batch 256, lr 0.05 x B/256, 50 warm-up epochs,
lambda 0.1, sigma 0.001, EMA 0.996, no blur; 224x224 as SCAN.

Data: tfds imagenet2012 (manual download), train split, the subset's classes only (about 64,000 images, about 10 GB at 224x224: an in-memory bank for a large accelerator).
As Table 8 (and SCAN), every E-step also scores the validation images of the subset's classes, each
assigned to its nearest k-means centroid (eval.split; metrics.jsonl val_nmi / val_acc / val_ari).
"""
from jaxclust.data.sources import normalization
from jaxclust.methods import default_config


def get_config():
    c = default_config("propos")
    c.data.source = "tfds"
    c.data.name = "imagenet50"
    c.data.split = "train"
    c.data.image_size = 224

    c.augment.mean, c.augment.std = normalization("imagenet")

    c.model.backbone = "resnet50"  # paper Sec. 5.7
    c.model.stem = "imagenet"

    c.train.epochs = 300  # paper Sec. 5.7
    c.train.batch_size = 256

    c.cluster.num_clusters = 50
    c.eval.split = "validation"  # Table 8: clustered on train, scored on validation
    return c
