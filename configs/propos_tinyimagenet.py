"""ProPos on Tiny-ImageNet with ResNet-18 at 224x224 (ProPos Table 3: NMI 40.5, ACC 25.6, ARI 14.3).

Tiny-ImageNet's training set (100,000 images of 64x64, 200 classes) is read as an ImageFolder
directory: --config.data.path=.../tiny-imagenet-200 with data.split=train (the class folders hold
their images in an images/ sub-folder, which is read as ImageFolder does). The images are kept at
their native 64x64 (data.load_size=64) and resized to 224 by the random crop and the test resize,
exactly as the official transforms do on the 64x64 files, at 1/12 of the memory of a 224 bank.

No official config exists; this is the CIFAR-20 recipe (official issue #6) with the paper's backbone
(ResNet-18, ImageNet stem), image size and K = 200. The paper's memory-queue variant (Fig. 8) has
no jaxclust option yet.
"""
from jaxclust.data.sources import normalization
from jaxclust.methods import default_config


def get_config():
    c = default_config("propos")
    c.data.source = "folder"
    c.data.name = "tinyimagenet"
    c.data.split = "train"  # paper Table 1: the 100,000 training images
    c.data.image_size = 224  # paper Sec. 5.1.1
    c.data.load_size = 64  # native size

    c.augment.mean, c.augment.std = normalization("tinyimagenet")

    c.model.stem = "imagenet"

    c.method.forward = "v2"
    c.method.ema_increase = True

    c.train.batch_size = 256

    c.cluster.num_clusters = 200
    return c
