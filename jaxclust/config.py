"""Every config key, with its default, and the checks a config must pass before any work starts.

Files in `configs/` start from `base_config()` and change what their recipe needs; every key can be
overridden on the command line (`--config.optim.lr=0.1`). Defaults are the official ProPos CIFAR-10
ResNet-18 run (`config/cifar10_r18_propos.yml` of Hzzone/ProPos) unless a comment says otherwise.
"""
from __future__ import annotations

import ml_collections


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and what to do."""


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.source = "digits"  # digits | npz
    c.data.name = "digits"
    c.data.path = ""  # file or directory, for sources that read one
    c.data.image_size = 32  # side of the images fed to the network

    c.augment = ml_collections.ConfigDict()  # official TrainTask.train_transform (torchvision)
    c.augment.crop = True  # RandomResizedCrop
    c.augment.crop_scale = (0.08, 1.0)
    c.augment.crop_ratio = (3 / 4, 4 / 3)
    c.augment.affine = False  # small rotation/shift/scale, for tiny images (not in the official code)
    c.augment.affine_rotation = 0.0  # degrees
    c.augment.affine_shift = 0.0  # pixels
    c.augment.affine_scale = (1.0, 1.0)
    c.augment.flip_prob = 0.5
    c.augment.jitter_prob = 0.8
    c.augment.brightness = 0.4
    c.augment.contrast = 0.4
    c.augment.saturation = 0.4
    c.augment.hue = 0.1
    c.augment.grayscale_prob = 0.2
    c.augment.blur_prob = 0.0  # official: use_gaussian_blur false on CIFAR
    c.augment.blur_kernel = 23
    c.augment.blur_sigma = (0.1, 2.0)
    c.augment.solarize_prob = 0.0
    c.augment.solarize_threshold = 0.5
    c.augment.mean = (0.4914, 0.4822, 0.4465)  # official CIFAR-10 normalisation
    c.augment.std = (0.2023, 0.1994, 0.2010)

    c.model = ml_collections.ConfigDict()
    c.model.backbone = "resnet18"  # resnet18 | resnet34 | resnet50 | convnet
    c.model.width = 64
    c.model.stem = "cifar"  # cifar: 3x3 stride 1, no max-pool | imagenet: 7x7 stride 2 + max-pool
    c.model.convnet_widths = (32, 64, 128)
    c.model.projector_hidden = 4096
    c.model.projector_dim = 256
    c.model.predictor_hidden = 4096

    c.method = ml_collections.ConfigDict()
    c.method.name = "propos"
    c.method.psl_weight = 0.1  # lambda_psl, official cluster_loss_weight
    c.method.temperature = 0.5  # tau of PSL
    c.method.sigma = 0.001  # PSA noise std, official latent_std
    c.method.psl_terms = "both"  # both | alignment | uniformity (ablation, ProPos Eq. 5, Table 6)
    c.method.forward = "v1"  # v1: two symmetric passes | v2: views concatenated (official forward_v2)
    c.method.ema_momentum = 0.996  # official momentum_base
    c.method.ema_increase = False  # cosine increase to 1 (official momentum_increase)

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "sgd"
    c.optim.lr = 0.05  # multiplied by batch_size / 256, as the official TrainTask does
    c.optim.momentum = 0.9
    c.optim.weight_decay = 5e-4  # official: on every parameter, BN and biases included
    c.optim.nesterov = False
    c.optim.warmup_epochs = 50  # also the epochs without PSL and PSA noise
    c.optim.eta_min = 0.0
    c.optim.schedule = "warmup_cosine"  # warmup_cosine | stepwise_cosine (official propos_cifar20_r34)
    c.optim.predictor_lr_mult = 10.0  # official lambda_predictor_lr

    c.train = ml_collections.ConfigDict()
    c.train.epochs = 1000
    c.train.batch_size = 512  # global batch; official 128 per GPU x 4 GPUs
    c.train.embed_batch_size = 512
    c.train.log_every_epochs = 1
    c.train.checkpoint_every_epochs = 1
    c.train.checkpoints_to_keep = 2

    c.kmeans = ml_collections.ConfigDict()  # official torch_clustering.PyTorchKMeans(metric='cosine')
    c.kmeans.num_clusters = 10
    c.kmeans.every = 1  # official reassign: 1 (epochs between E-steps)
    c.kmeans.n_init = 10
    c.kmeans.max_iter = 300
    c.kmeans.tol = 1e-4
    c.kmeans.chunk_size = 4096  # rows per block of the assignment, bounds memory at N x chunk

    c.eval = ml_collections.ConfigDict()
    c.eval.acc_rule = "hungarian"  # hungarian | official (ACC = 0 when #clusters != #classes)
    return c


def _positive(cfg, *keys):
    for key in keys:
        section, name = key.split(".")
        value = cfg[section][name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}.")


def choose(cfg, key, allowed):
    """ConfigError unless cfg[key] (a 'section.name' path) is one of `allowed`."""
    section, name = key.split(".")
    value = cfg[section][name]
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(map(repr, allowed))}; got {value!r}.")


def validate_config(cfg, device_count: int = 1) -> None:
    """Raises ConfigError for a value that cannot work, before any data is read or code compiled."""
    _positive(cfg, "train.epochs", "train.batch_size", "train.embed_batch_size", "data.image_size",
              "kmeans.every", "kmeans.n_init", "kmeans.max_iter", "kmeans.chunk_size",
              "train.log_every_epochs", "train.checkpoint_every_epochs", "train.checkpoints_to_keep")
    k, batch = cfg.kmeans.num_clusters, cfg.train.batch_size
    if not isinstance(k, int) or k < 2:
        raise ConfigError(f"kmeans.num_clusters must be an integer >= 2, got {k!r}.")
    if batch % device_count:
        raise ConfigError(
            f"train.batch_size ({batch}) must be divisible by the number of devices ({device_count})."
        )
    if not 0 <= cfg.optim.warmup_epochs <= cfg.train.epochs:
        raise ConfigError(
            f"optim.warmup_epochs ({cfg.optim.warmup_epochs}) must lie between 0 and train.epochs "
            f"({cfg.train.epochs})."
        )
    from jaxclust.methods import METHODS  # late import: method files import this module

    choose(cfg, "method.name", tuple(METHODS))
    METHODS[cfg.method.name].validate(cfg)
    choose(cfg, "optim.name", ("sgd",))
    choose(cfg, "optim.schedule", ("warmup_cosine", "stepwise_cosine"))
    choose(cfg, "model.backbone", ("resnet18", "resnet34", "resnet50", "convnet"))
    choose(cfg, "model.stem", ("cifar", "imagenet"))
    choose(cfg, "eval.acc_rule", ("hungarian", "official"))


def validate_data(cfg, bank) -> None:
    """Raises ConfigError for a config that does not fit the loaded data set."""
    n, k, batch = bank.num_examples, cfg.kmeans.num_clusters, cfg.train.batch_size
    if k > n:
        raise ConfigError(f"kmeans.num_clusters ({k}) is larger than the data set ({n} images); lower it.")
    if batch > n:
        raise ConfigError(f"train.batch_size ({batch}) is larger than the data set ({n} images); lower it.")
    channels = bank.num_channels
    for key in ("mean", "std"):
        if len(cfg.augment[key]) != channels:
            raise ConfigError(
                f"augment.{key} has {len(cfg.augment[key])} values but the images have {channels} "
                f"channel(s); give one value per channel."
            )
