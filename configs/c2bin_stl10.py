"""C2BIN on STL-10, clustering setting (Table 10); Table 3 [Mean]: NMI 0.62, ACC 0.73, ARI 0.55.

Data (§3.3 best reading): the 13,000 labelled train + test images, 96x96, for training and scoring
(data.unlabelled=True adds the 100k unlabelled images to training). Backbone (A12): PICA's ResNet-34
as on CIFAR (3x3 stem + 2x2 max-pool; PICA pools its 7x7 last map at 96 px, a global average pool);
blur p 0.5 with a kernel of ~10% of the image (MoCo v2 style, §2.8).
"""

from jaxclust.config import sibling
from jaxclust.data.sources import normalization


def get_config():
    c = sibling(__file__, "c2bin_cifar10").get_config()
    c.data.name = "stl10"
    c.data.image_size = 96
    c.augment.mean, c.augment.std = normalization("stl10")
    c.augment.blur_prob = 0.5
    c.augment.blur_kernel = 9  # ~10% of 96 px, odd
    return c
