"""ProPos on ImageNet-100, the SCAN subset, with ResNet-50 for 300 epochs (ProPos Table 8: NMI 83.5, ARI 63.5).

`propos_imagenet50.py` with the 100 SCAN classes (WordNet ids in jaxclust/data/subsets/imagenet100.txt)
and K = 100. Data: the subset's classes of tfds imagenet2012 train (about 128,000 images, 19 GB at 224x224), streamed by
the host instead of held in memory.
"""
import importlib.util
from pathlib import Path


def get_config():
    spec = importlib.util.spec_from_file_location("propos_imagenet50", Path(__file__).with_name("propos_imagenet50.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    c = module.get_config()
    c.data.name = "imagenet100"
    c.data.streaming = True
    c.kmeans.num_clusters = 100
    return c
