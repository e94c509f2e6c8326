"""PCL ("MoCo + PCL") on CIFAR-20 as ProPos reproduced it: `config/pcl_cifar20_r18_config.json`.

`pcl_cifar10.py` with the data set changed; the json's values (batch 128 x 4, lr 0.05 x 2, wd 1e-4,
eta_min 0.01 relative, 1,000 epochs, warm-up 50, queue 4,096, moco_temp 1, momentum 0.99, symmetric,
mlp, feat_dim 128, clusters 250/500/1000, cls_loss_weight 0.01, reassign 1, no blur) are already
those. Targets: Table 6 (ResNet-18) NMI 50.0, ACC 48.6, ARI 32.7; Table 2 (ResNet-34) NMI 52.8,
ACC 52.6, ARI 36.3.
"""

from jaxclust.config import sibling
from jaxclust.data.sources import normalization


def get_config():
    c = sibling(__file__, "pcl_cifar10").get_config()
    c.data.name = "cifar20"  # json dataset cifar20, whole_dataset true
    c.augment.mean, c.augment.std = normalization("cifar20")  # official TrainTask.normalize('cifar20')
    c.cluster.num_clusters = 20
    return c
