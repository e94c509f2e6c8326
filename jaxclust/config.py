"""Every config key but the method's, with its default, and the checks of those sections.

A config is `base_config()` plus the `method` section of its method, which the method's module
defines (`jaxclust.methods.default_config(name)` puts the two together). Files in `configs/` start
from that, or from a sibling config file (`sibling`), and change what their recipe needs; every key
can be overridden on the command line (`--config.optim.lr=0.1`). Defaults are the official ProPos
CIFAR-10 ResNet-18 run (`config/cifar10_r18_propos.yml` of Hzzone/ProPos) unless a comment says
otherwise. The one gate that runs every check, the method's and the augmentation's included, is
`jaxclust.trainer.check_config`.
"""
from __future__ import annotations

import copy
import importlib.util
import math
import traceback
from pathlib import Path
from types import ModuleType

import ml_collections


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and what to do."""


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.source = "digits"  # digits | npz | folder | idx | tfds (jaxclust/data/sources.py)
    # tfds: cifar10 | cifar20 | cifar100 | stl10 | imagenet2012 | imagenet50/100/200 | mnist | fashion_mnist | kmnist | emnist_letters
    c.data.name = "digits"
    # npz file, folder, folder of MNIST-format files (idx), or tfds data dir ('' = $TFDS_DATA_DIR or
    # ~/tensorflow_datasets)
    c.data.path = ""
    c.data.image_size = 32  # side of the images fed to the network
    # '' = the paper's split (CIFAR, STL-10, MNIST-like, idx: train+test; ImageNet: train; folder: the folder
    # itself); else '+'-joined tfds splits ('train'), idx splits ('train', 'test') or folder sub-folders ('train+val')
    c.data.split = ""
    c.data.load_size = 0  # side images are stored at; 0 = image_size (folder, ImageNet) or native (tfds)
    c.data.channels = 0  # 0 keep as stored | 1 grey (PIL luma) | 3 grey repeated to RGB
    c.data.unlabelled = False  # stl10: add the 100k unlabelled images (label -1, not scored)
    c.data.imbalance_ratio = 1.0  # < 1: long-tailed subset, smallest / largest class (ProPos Table 9: 0.1)
    c.data.download = True  # tfds: download and prepare a missing data set (ImageNet: from manual_dir)
    c.data.manual_dir = ""  # tfds imagenet2012 tars; '' = <data dir>/downloads/manual
    c.data.streaming = False  # host pipeline instead of an in-memory bank (jaxclust/data/streaming.py)
    c.data.skip_unreadable = False  # folder: leave out (and count) image files that cannot be read

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
    # official byol_transform: view 2 has its own blur / solarize probabilities (view 1's are above)
    c.augment.asymmetric = False
    c.augment.view2 = ml_collections.ConfigDict()
    c.augment.view2.blur_prob = 0.1
    c.augment.view2.solarize_prob = 0.2
    # SCAN's strong view (its self-labeling stage; jaxclust/data/randaugment.py), view 2 only, with
    # asymmetric: RandAugment ops per image and Cutout's maximum side in pixels (SCAN: 4 and 16). 0 = off.
    c.augment.view2.randaugment_ops = 0
    c.augment.view2.cutout_length = 0
    c.augment.view2.flip_prob = -1.0  # -1: as augment.flip_prob (SCAN's weak view 0, strong 0.5)
    # official test_resized_crop: test images Resize(test_resize) + CenterCrop(test_crop), then image_size
    c.augment.test_resized_crop = False
    c.augment.test_resize = 256
    c.augment.test_crop = 224
    c.augment.mean = (0.4914, 0.4822, 0.4465)  # official CIFAR-10 normalisation
    c.augment.std = (0.2023, 0.1994, 0.2010)

    c.model = ml_collections.ConfigDict()
    c.model.backbone = "resnet18"  # resnet10 (1 block per stage) | resnet18 | resnet34 | resnet50 | convnet
    c.model.width = 64
    c.model.stem = "cifar"  # cifar: 3x3 stride 1, no max-pool | imagenet: 7x7 stride 2 + max-pool | pica: cifar + 2x2 max-pool
    c.model.convnet_widths = (32, 64, 128)
    c.model.convnet_pool = "avg"  # avg | max (global) | flatten (the last map, layout kept: h * w * width features)
    c.model.projector_hidden = 4096
    c.model.projector_dim = 256
    c.model.predictor_hidden = 4096
    # BatchNorm statistics over the global batch (1), or over bn_groups equal slices of it: the
    # official runs' per-GPU BatchNorm (CIFAR: 4 GPUs x 128), whatever the device count here.
    c.model.bn_groups = 1

    # c.method: the method's own section, from its module (`jaxclust.methods.default_config(name)`)

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "sgd"  # sgd | adam (momentum = beta1) | lars (jaxclust/optim.py)
    c.optim.lr = 0.05  # multiplied by batch_size / 256, as the official TrainTask does (optim.lr_batch_scaling)
    c.optim.lr_batch_scaling = "linear"  # linear: lr x batch_size / 256 | none: lr as given (official SeCu)
    c.optim.momentum = 0.9
    c.optim.weight_decay = 5e-4  # official: on every parameter, BN and biases included
    c.optim.nesterov = False
    c.optim.warmup_epochs = 50  # also the epochs without PSL and PSA noise
    # Epochs at lr 0 before the schedule starts (SeCu's initialisation epoch: 1); the schedule, warm-up
    # included, runs over the remaining train.epochs - frozen_epochs. Groups with a constant lr still train.
    c.optim.frozen_epochs = 0
    c.optim.eta_min = 0.0
    # warmup_cosine (official ProPos: cosine over train.epochs after the warm-up) | stepwise_cosine (official
    # propos_cifar20_r34) | constant (warm-up, then flat) | warmup_cosine_to_end (official SeCu: warm-up,
    # then a cosine over the remaining steps that reaches eta_min at the end); jaxclust/optim.py
    c.optim.schedule = "warmup_cosine"
    c.optim.predictor_lr_mult = 10.0  # official lambda_predictor_lr

    c.train = ml_collections.ConfigDict()
    c.train.epochs = 1000
    c.train.batch_size = 512  # global batch; official 128 per GPU x 4 GPUs
    c.train.embed_batch_size = 512
    c.train.log_every_epochs = 1
    c.train.progress_seconds = 30.0  # a progress line within an epoch at most this often (0: none)
    c.train.checkpoint_every_epochs = 1
    c.train.checkpoints_to_keep = 2
    # Also a checkpoint every N global steps (0 = off), for long epochs on pre-emptible machines; a
    # run resumed from one continues mid-epoch with the same batches and keys (step_checkpoints/).
    c.train.checkpoint_every_steps = 0
    # Cluster-balanced resampling of each epoch by the current pseudo-labels, with replacement
    # (official data_resample, on in its CIFAR-20 and ImageNet-Dogs configs; not in the paper).
    c.train.resample = False

    c.cluster = ml_collections.ConfigDict()  # the E-step of the loop, whatever the method clusters with
    c.cluster.num_clusters = 10  # clusters scored (and, for k-means methods, the k of the E-step)
    c.cluster.every = 1  # epochs between E-steps (official reassign: 1)

    c.kmeans = ml_collections.ConfigDict()  # the solver: official torch_clustering.PyTorchKMeans(metric='cosine')
    c.kmeans.n_init = 10
    c.kmeans.max_iter = 300
    c.kmeans.tol = 1e-4
    c.kmeans.chunk_size = 32768  # the most rows per block of the assignment, bounds memory at chunk x K (large K: fewer)
    c.kmeans.n_local_trials = 0  # k-means++ candidates per centre; 0: official 2 + int(log K), 1: plain
    # auto: each device runs its share of the restarts on a whole copy of the features when the
    # device count divides n_init and the copy is at most 1 GiB (no communication per iteration, and
    # the single-device result); otherwise (never) every restart runs on the row-sharded features.
    c.kmeans.restarts_over_devices = "auto"  # auto | always | never

    c.eval = ml_collections.ConfigDict()
    c.eval.acc_rule = "hungarian"  # hungarian | official (ACC = 0 when #clusters != #classes)
    # A held-out split scored at every E-step: its images go to the nearest k-means centroid and the
    # record gets val_nmi, val_acc, val_ari ('' = none; tfds 'validation', or folder sub-folder(s)).
    # ProPos Table 8 (SCAN's ImageNet subsets): clustered on train, scored on validation.
    c.eval.split = ""
    return c


def _failure(path: Path, error: Exception) -> ConfigError:
    """One sentence for an exception raised while running the config file `path`, with its line there."""
    if isinstance(error, SyntaxError):
        return ConfigError(f"config file {str(path)!r} has a syntax error at line {error.lineno}: {error.msg}.")
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve() == path.resolve()]
    where = f" at line {frames[-1].lineno}" if frames else ""
    message = " ".join(str(error).split()).rstrip(".") or "(no message)"
    return ConfigError(f"config file {str(path)!r} raised {type(error).__name__}{where}: {message}.")


def _load_file(path) -> ModuleType:
    """The Python file at `path` run as a module of its own (not imported: nothing in sys.modules)."""
    path = Path(path)
    if not path.is_file():
        cwd = "" if path.is_absolute() else f" (relative to the current directory: {Path.cwd() / path})"
        raise ConfigError(f"config file {str(path)!r} not found{cwd}.")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{str(path)!r} is not a Python (.py) file.")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ConfigError:  # a sibling config file's, naming that file
        raise
    except Exception as error:
        raise _failure(path, error) from error
    return module


def load_config_file(path, function: str = "get_config"):
    """Loads the config file at `path` by path, as config_flags does, and returns its `get_config()`
    (a ConfigDict). `function` names another entry point of such a file, e.g. a sweep file's
    "get_sweep". ConfigError, in one sentence, if the file does not exist, does not define `function`,
    or raises while it runs (a syntax error included)."""
    module = _load_file(path)
    entry = getattr(module, function, None)
    if not callable(entry):
        raise ConfigError(f"{str(path)!r} defines no {function}().")
    try:
        return entry()
    except ConfigError:
        raise
    except Exception as error:
        raise _failure(Path(path), error) from error


def sibling(config_file: str, name: str) -> ModuleType:
    """The config file `name`.py in the folder of `config_file` (a config's `__file__`), loaded as a
    module: a config derives from another with `sibling(__file__, "propos_cifar10").get_config()`.
    Config files are loaded by path (config_flags), not imported, so they cannot import each other."""
    return _load_file(Path(config_file).with_name(f"{name}.py"))


def follow(section, key: str):
    """A value that follows `section[key]` until it is set itself: a config file derives one key from
    another with `c.method.proto_warmup_epochs = follow(c.optim, "warmup_epochs")`, so that
    --config.optim.warmup_epochs=N moves both while --config.method.proto_warmup_epochs=M moves that
    key alone (a bare `get_ref` would tie the two both ways)."""
    return ml_collections.FieldReference(section.get_ref(key))


def _get(cfg, key: str):
    """The value at the dotted path `key` ('train.epochs', 'augment.view2.blur_prob')."""
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def positive(cfg, *keys) -> None:
    """ConfigError unless every key is a positive integer: sizes, counts, epochs."""
    for key in keys:
        value = _get(cfg, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}.")


def count(cfg, key: str, zero: str) -> None:
    """ConfigError unless cfg[key] is 0 (which means `zero`, e.g. 'off') or a positive integer."""
    value = _get(cfg, key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{key} must be 0 ({zero}) or a positive integer, got {value!r}.")


def in_range(cfg, key: str, low: float, high: float = math.inf, *, open_low=False, open_high=False) -> None:
    """ConfigError unless cfg[key] is a number from `low` to `high`, each end included unless open:
    probabilities and fractions [0, 1], momenta [0, 1), temperatures (0, inf)."""
    value = _get(cfg, key)
    fits = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        (low < value if open_low else low <= value) and (value < high if open_high else value <= high))
    if not fits:
        allowed = (f"{'>' if open_low else '>='} {low}" if high == math.inf else
                   f"in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}")
        raise ConfigError(f"{key} must be a number {allowed}, got {value!r}.")


def nonnegative(cfg, *keys) -> None:
    """ConfigError unless every key is a number >= 0: loss weights, noise levels, tolerances."""
    for key in keys:
        in_range(cfg, key, 0)


def choose(cfg, key, allowed):
    """ConfigError unless cfg[key] (a 'section.name' path) is one of `allowed`."""
    value = _get(cfg, key)
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(map(repr, allowed))}; got {value!r}.")


def downsampling(model) -> int:
    """How many times smaller than the input the backbone's last feature map is."""
    if model.backbone == "convnet":  # every stage after the first halves the map
        return 2 ** (len(model.convnet_widths) - 1)
    stem = {"imagenet": 4, "pica": 2}.get(model.stem, 1)  # 7x7/2 + max-pool/2, or max-pool/2 only
    return stem * 8  # then three stride-2 stages


def _check_epoch_counts(cfg) -> None:
    """ConfigError, with the flags that fix it, when train.epochs is too short for the config's epoch
    counts: the `*_epochs` keys of the optim and method sections (warm-ups, SeCu's frozen epochs). A
    method's must fit in train.epochs, optim.warmup_epochs in what optim.frozen_epochs leaves (with an
    epoch to spare for the cosine of optim.schedule='warmup_cosine_to_end'). The flags set each key
    that does not fit to a quarter of its room (frozen epochs to 0), on a copy of the config, so that a
    key that follows a fixed one (`follow`) needs no flag of its own."""
    epochs, trial = cfg.train.epochs, copy.deepcopy(cfg)
    too_long, flags = [], []

    def fit(section, key, room, spare=0):
        value = trial[section][key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= room - spare:
            return  # fits, or is no number (which the section's own check tells)
        too_long.append(f"{section}.{key} ({value})")
        trial[section][key] = 0 if key == "frozen_epochs" else room // 4
        flags.append(f"--config.{section}.{key}={trial[section][key]}")

    optim = trial.optim
    if "frozen_epochs" in optim:
        fit("optim", "frozen_epochs", epochs, spare=1)
    frozen = optim.get("frozen_epochs", 0)
    room = epochs - frozen if isinstance(frozen, int) else epochs
    cosine = int(optim.get("schedule") == "warmup_cosine_to_end")  # an epoch of cosine after the warm-up
    for section, limit, spare in (("optim", room, cosine), ("method", epochs, 0)):
        for key in trial.get(section, {}):
            if key.endswith("_epochs") and key != "frozen_epochs":
                fit(section, key, limit, spare)
    if flags:
        raise ConfigError(f"train.epochs ({epochs}) is too short for {', '.join(too_long)}; for a run this short "
                          f"add {' '.join(flags)}.")


def validate_config(cfg, device_count: int = 1) -> None:
    """Raises ConfigError for a value of the general sections that cannot work (the method's section,
    the backbone's name, the augmentation and the optimiser are checked by their own modules; all
    together by `jaxclust.trainer.check_config`)."""
    positive(cfg, "train.epochs", "train.batch_size", "train.embed_batch_size", "data.image_size",
              "cluster.every", "kmeans.n_init", "kmeans.max_iter", "kmeans.chunk_size",
              "train.log_every_epochs", "train.checkpoint_every_epochs", "train.checkpoints_to_keep")
    _check_epoch_counts(cfg)
    count(cfg, "train.checkpoint_every_steps", "off")
    count(cfg, "kmeans.n_local_trials", "official 2 + int(log K)")
    nonnegative(cfg, "kmeans.tol", "train.progress_seconds")
    positive(cfg, "model.width", "model.projector_hidden", "model.projector_dim", "model.predictor_hidden")
    widths = cfg.model.convnet_widths
    if not widths or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths):
        raise ConfigError(f"model.convnet_widths must be positive integers, one per stage, got {widths!r}.")
    choose(cfg, "kmeans.restarts_over_devices", ("auto", "always", "never"))
    k, batch = cfg.cluster.num_clusters, cfg.train.batch_size
    groups = cfg.model.bn_groups
    if not isinstance(groups, int) or groups < 1 or batch % groups:
        raise ConfigError(f"model.bn_groups must be a positive integer dividing train.batch_size ({batch}), got {groups!r}.")
    if not isinstance(k, int) or k < 2:
        raise ConfigError(f"cluster.num_clusters must be an integer >= 2, got {k!r}.")
    if batch % device_count:
        raise ConfigError(
            f"train.batch_size ({batch}) must be divisible by the number of devices ({device_count})."
        )
    choose(cfg, "model.stem", ("cifar", "imagenet", "pica"))
    factor, size = downsampling(cfg.model), cfg.data.image_size
    if size < factor:
        stem = f" with model.stem={cfg.model.stem!r}" if cfg.model.backbone != "convnet" else ""
        hint = " (or model.stem='cifar', 8x)" if cfg.model.stem != "cifar" and cfg.model.backbone != "convnet" else ""
        raise ConfigError(
            f"data.image_size ({size}) is smaller than the {factor}x downsampling of model.backbone="
            f"{cfg.model.backbone!r}{stem}: its last stage would see padding only; use data.image_size "
            f">= {factor}{hint}."
        )
    choose(cfg, "eval.acc_rule", ("hungarian", "official"))
    choose(cfg, "data.source", ("digits", "npz", "folder", "idx", "tfds"))
    if cfg.data.source == "idx":
        if not cfg.data.path:
            raise ConfigError("data.source='idx' reads the MNIST-format files (train-images-idx3-ubyte, ...) in the "
                              "folder data.path; set --config.data.path=DIR.")
        for key, split in (("data.split", cfg.data.split), ("eval.split", cfg.eval.split)):
            parts = split.split("+") if split else []
            if any(p not in ("train", "test") for p in parts) or len(set(parts)) != len(parts):
                raise ConfigError(f"{key} of data.source='idx' must be 'train', 'test' or 'train+test', got {split!r}.")
    if cfg.data.streaming and cfg.train.resample:
        raise ConfigError("train.resample draws from the whole data set, which data.streaming=True "
                          "does not hold; set --config.train.resample=False.")
    choose(cfg, "data.channels", (0, 1, 3))
    if cfg.eval.split and cfg.data.source not in ("tfds", "folder", "idx"):
        raise ConfigError(f"eval.split reads another split of a tfds, folder or idx data set, not of data.source="
                          f"{cfg.data.source!r}; set --config.eval.split=''.")
    if not 0.0 < cfg.data.imbalance_ratio <= 1.0:
        raise ConfigError(f"data.imbalance_ratio must lie in (0, 1] (1 = balanced), got {cfg.data.imbalance_ratio!r}.")
    if not isinstance(cfg.data.load_size, int) or cfg.data.load_size < 0:
        raise ConfigError(f"data.load_size must be 0 (automatic) or a positive integer, got {cfg.data.load_size!r}.")


def validate_data(cfg, bank) -> None:
    """Raises ConfigError for a config that does not fit the loaded data set."""
    n, k, batch = bank.num_examples, cfg.cluster.num_clusters, cfg.train.batch_size
    if k > n:
        raise ConfigError(f"cluster.num_clusters ({k}) is larger than the data set ({n} images); lower it.")
    if batch > n:
        raise ConfigError(f"train.batch_size ({batch}) is larger than the data set ({n} images); lower it.")
    channels = bank.num_channels
    for key in ("mean", "std"):
        if len(cfg.augment[key]) != channels:
            raise ConfigError(
                f"augment.{key} has {len(cfg.augment[key])} values but the images have {channels} "
                f"channel(s); give one value per channel."
            )
