"""ProPos on ImageNet-200, the SCAN subset, with ResNet-50 for 300 epochs (ProPos Table 8: NMI 80.6, ARI 53.8).

`propos_imagenet50.py` with the 200 SCAN classes (WordNet ids in jaxclust/data/subsets/imagenet200.txt)
and K = 200. Data: the subset's classes of tfds imagenet2012 train (about 256,000 images, 39 GB at 224x224), streamed by
the host instead of held in memory.
"""
import importlib.util
from pathlib import Path


def get_config():
    spec = importlib.util.spec_from_file_location("propos_imagenet50", Path(__file__).with_name("propos_imagenet50.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.data.name = "imagenet200"
    c.data.streaming = True
    c.kmeans.num_clusters = 200
    return c
