"""ProPos on ImageNet-1k with ResNet-50, 200 epochs (ProPos Table 4: AMI 52.5): the official
`config/propos_imagenet_r50_8xbs32xaccum16_200e.yml`, streamed from tfds' imagenet2012.

The paper (Sec. 5.3.2) only says ResNet-50, 200 epochs, as PCL; this follows the official file, with
what jaxclust does not have yet noted below:
- global batch 4096 (official 32 per GPU x 8 GPUs x 16 accumulation steps); lr 0.3 x 4096/256 = 4.8,
  weight decay 1e-6, predictor lr x 1, warm-up 10 epochs; EMA 0.99 -> 1;
- lambda_psl 0.001, sigma 1e-4, k-means every 10 epochs, K = 1000;
- the asymmetric BYOL views (official byol_transform): ColorJitter(0.4, 0.4, 0.2, 0.1) p=0.8,
  grey 0.2, blur p=1.0 / 0.1 (kernel 23, sigma (0.1, 2)), solarize p=0.0 / 0.2;
- v1 forward (the official memory queue works with v1 only);
- NOT yet in jaxclust: LARS (SGD here), SyncBN over the 8 GPUs (one device's BN over its batch
  here), the 10,240-entry memory queue, gradient accumulation.
Data: tfds imagenet2012 (manual download: the ILSVRC2012 tars in <data dir>/downloads/manual),
train split, 1,281,167 images streamed by the host (jaxclust/data/streaming.py) and resized to
224x224 on the host. The training loop does not read streaming sources yet: this config runs with
--dry_run; see README "Data sets".
"""
from jaxclust.data.sources import normalization
from jaxclust.methods import default_config


def get_config():
    c = default_config("propos")
    c.data.source = "tfds"
    c.data.name = "imagenet2012"
    c.data.split = "train"
    c.data.image_size = 224
    c.data.streaming = True

    c.augment.mean, c.augment.std = normalization("imagenet")
    c.augment.saturation = 0.2  # official ColorJitter(0.4, 0.4, 0.2, 0.1)
    c.augment.blur_prob = 1.0  # view 1
    c.augment.solarize_threshold = 128 / 255  # PIL ImageOps.solarize(img, 128)
    c.augment.asymmetric = True  # official byol_transform: true

    c.model.backbone = "resnet50"
    c.model.stem = "imagenet"

    c.method.psl_weight = 0.001  # official cluster_loss_weight
    c.method.sigma = 1e-4  # official latent_std
    c.method.ema_momentum = 0.99  # official momentum_base
    c.method.ema_increase = True

    c.optim.lr = 0.3  # official learning_rate; x 4096/256 = 4.8
    c.optim.weight_decay = 1e-6
    c.optim.predictor_lr_mult = 1.0  # official fix_predictor_lr / lambda_predictor_lr 1
    c.optim.warmup_epochs = 10

    c.train.epochs = 200
    c.train.batch_size = 4096  # official 32 x 8 GPUs x 16 accumulation steps
    c.train.embed_batch_size = 1024

    c.cluster.num_clusters = 1000
    c.cluster.every = 10  # official reassign: 10
    c.kmeans.chunk_size = 8192
    return c
