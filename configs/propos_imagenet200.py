"""ProPos on ImageNet-200, the SCAN subset, with ResNet-50 for 300 epochs (ProPos Table 8: NMI 80.6, ARI 53.8).

`propos_imagenet50.py` with the 200 SCAN classes (WordNet ids in jaxclust/data/subsets/imagenet200.txt)
and K = 200. Data: the subset's classes of tfds imagenet2012 train (about 256,000 images, 39 GB at 224x224), streamed by
the host instead of held in memory.
"""
from jaxclust.config import sibling


def get_config():
    c = sibling(__file__, "propos_imagenet50").get_config()
    c.data.name = "imagenet200"
    c.data.streaming = True
    c.cluster.num_clusters = 200
    return c
