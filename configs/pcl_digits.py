"""PCL on scikit-learn's digits: `moco_digits.py` (so `propos_digits.py`'s budget) plus ProtoNCE.

The official PCL loss (layout "official": the batch's positive prototypes are columns for every
row, target i; weight 1) with granularities sized for 1,797 images: 25, 50 and 100 clusters (about
72, 36 and 18 images per cluster; official ImageNet: 51, 26 and 13; ProPos CIFAR: 240, 120, 60). With
so few prototypes, r distinct negatives outside a batch's positives do not exist, so every prototype
that is no batch positive is a negative ("all"; the official loss with r = all candidates).
The E-step runs every epoch, as PCL's, with the official preset's k-means of the prototypes (faiss
nredo 5, niter 20); ProtoNCE starts after ProPos digits' warm-up epochs (60).
The temperature (InfoNCE's, and the mean of phi) is moco_digits' 1.0, ProPos' value for its MoCo and
PCL runs. PCL's own 0.2 (--config.method.temperature=0.2) reaches NMI 0.98 around epoch 60 on digits,
then degrades to about 0.8 as InfoNCE spreads the digits of one class apart; 1.0 ends at 0.94.
"""

from jaxclust.config import follow, sibling
from jaxclust.methods import pcl


def get_config():
    c = sibling(__file__, "moco_digits").get_config()
    moco_section = c.method
    c.method = pcl.method_config("official")
    for key in ("temperature", "queue_size", "ema_momentum", "ema_increase", "symmetric", "head"):
        c.method[key] = moco_section[key]  # the MoCo v2 of moco_digits.py
    c.method.num_clusters = (25, 50, 100)
    c.method.negatives = "all"
    c.method.num_negatives = 100  # unused with "all": every candidate is a negative
    c.method.proto_warmup_epochs = follow(c.optim, "warmup_epochs")  # propos_digits' warm-up (PSL starts there too)
    c.cluster.every = 1  # official: an E-step every epoch
    return c
