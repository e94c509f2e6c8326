"""ProPos on CIFAR-10 with ResNet-18: the official recipe, `config/cifar10_r18_propos.yml` of Hzzone/ProPos.

Targets ProPos Table 6 (ResNet-18, CIFAR-10): NMI 85.1, ACC 91.6, ARI 83.5. Table 2 reports
ResNet-34 (NMI 88.6, ACC 94.3, ARI 88.4); for it set model.backbone=resnet34 and follow the
author's posted R34 config (issue #8 of the official repository: batch 64 x 4, v2 forward,
cosine-increasing EMA).

By default BatchNorm sees the whole global batch of 512 and PSL is the paper's global-batch loss with
lambda 0.1, on any number of devices. The official 4-GPU run differs in two ways, each an option:
per-GPU BatchNorm over 128 images with the target batch shuffled across GPUs
(--config.model.bn_groups=4), and a PSL computed per GPU, with absent clusters judged on the GPU's
128 rows and its gradient scaled by 1/4 through the gather layer (--config.method.psl_processes=4).
Both together reproduce the official dynamics on one device.
"""
from jaxclust.config import base_config


def get_config():
    c = base_config()
    c.seed = 0  # official default seed
    c.data.source = "tfds"
    c.data.name = "cifar10"
    c.data.split = "train+test"  # official whole_dataset: true -> 60,000 images (paper Table 1)
    c.data.image_size = 32  # official img_size

    # official train_transform: RandomResizedCrop(32, scale=(0.08, 1)), flip, ColorJitter(0.4, 0.4,
    # 0.4, 0.1) p=0.8, RandomGrayscale(0.2), no blur (use_gaussian_blur: false); CIFAR-10 mean/std.
    c.augment.crop = True
    c.augment.crop_scale = (0.08, 1.0)  # official resized_crop_scale default 0.08
    c.augment.blur_prob = 0.0
    c.augment.mean = (0.4914, 0.4822, 0.4465)
    c.augment.std = (0.2023, 0.1994, 0.2010)

    c.model.backbone = "resnet18"  # official encoder_name: bigresnet18 (CIFAR stem)
    c.model.stem = "cifar"
    c.model.width = 64
    c.model.projector_hidden = 4096  # official hidden_size
    c.model.projector_dim = 256  # official feat_dim
    c.model.predictor_hidden = 4096

    c.method.name = "propos"
    c.method.psl_weight = 0.1  # official cluster_loss_weight
    c.method.temperature = 0.5  # official temperature
    c.method.sigma = 0.001  # official latent_std
    c.method.forward = "v1"  # official v2: false (symmetric: true)
    c.method.ema_momentum = 0.996  # official momentum_base
    c.method.ema_increase = False  # official momentum_increase: false

    c.optim.name = "sgd"
    c.optim.lr = 0.05  # official learning_rate; x 512/256 -> 0.1
    c.optim.momentum = 0.9  # official default
    c.optim.weight_decay = 5e-4  # official weight_decay
    c.optim.warmup_epochs = 50  # official warmup_epochs
    c.optim.eta_min = 0.0  # official learning_eta_min
    c.optim.predictor_lr_mult = 10.0  # official lambda_predictor_lr

    c.train.epochs = 1000  # official epochs
    c.train.batch_size = 512  # official batch_size 128 x num_devices 4
    c.train.checkpoint_every_epochs = 1  # official save_freq: 1

    c.cluster.num_clusters = 10  # official num_cluster: None -> number of classes
    c.cluster.every = 1  # official reassign: 1
    c.kmeans.n_init = 10  # official PyTorchKMeans default n_init (per GPU; 40 inits over 4 GPUs)
    c.kmeans.max_iter = 300  # official
    c.kmeans.tol = 1e-4  # official
    return c
