"""ProPos on ImageNet-100, the SCAN subset, with ResNet-50 for 300 epochs (ProPos Table 8: NMI 83.5, ARI 63.5).

`propos_imagenet50.py` with the 100 SCAN classes (WordNet ids in jaxclust/data/subsets/imagenet100.txt)
and K = 100. Data: the subset's classes of tfds imagenet2012 train (about 128,000 images, 19 GB at 224x224), streamed by
the host instead of held in memory.
"""
from jaxclust.config import sibling


def get_config():
    c = sibling(__file__, "propos_imagenet50").get_config()
    c.data.name = "imagenet100"
    c.data.streaming = True
    c.cluster.num_clusters = 100
    return c
