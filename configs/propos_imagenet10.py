"""ProPos on ImageNet-10 with ResNet-34 at 96x96 (ProPos Table 2: NMI 89.6, ACC 95.6, ARI 90.6).

ImageNet-10 (13,000 images, 10 classes; Chang et al., DAC) is read as an ImageFolder directory:
    python launch/main.py --config=configs/propos_imagenet10.py --config.data.path=/data/imagenet10 ...
with one sub-folder per class. Images are resized to 96x96 on load (PIL bicubic, as the official test
transform), so the random crops are taken from the 96x96 image rather than the full-size file; set
data.load_size larger (e.g. 160) to crop from more pixels at more memory.

No official config exists; as for STL-10 this is the CIFAR-20 recipe (official issue #6) with the
paper's backbone (ResNet-34, ImageNet stem), image size and no blur (Sec. 5.1.4; the default).
Table 10 reports 224 px (90.8 / 96.2 / 91.8): data.image_size=224.
"""
from jaxclust.data.sources import normalization
from jaxclust.methods import default_config


def get_config():
    c = default_config("propos")
    c.data.source = "folder"
    c.data.name = "imagenet10"
    c.data.image_size = 96  # paper Sec. 5.1.1

    c.augment.mean, c.augment.std = normalization("imagenet10")

    c.model.backbone = "resnet34"
    c.model.stem = "imagenet"

    c.method.forward = "v2"
    c.method.ema_increase = True

    c.train.batch_size = 256

    c.cluster.num_clusters = 10
    return c
