"""Every data-set config of issue #3 validates and builds its data pipeline and model in the dry mode
(no compilation, no training), on mocked tfds data or a tiny generated ImageFolder; and the paper's
settings each config claims are pinned."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxclust.config import ConfigError, load_config_file
from jaxclust.trainer import Run, dry_run

ROOT = Path(__file__).resolve().parents[1]
tfds = pytest.importorskip("tensorflow_datasets")

CONFIGS = ["propos_cifar10", "propos_cifar20", "propos_stl10", "propos_imagenet10", "propos_imagenet_dogs",
           "propos_tinyimagenet", "propos_imagenet1k", "propos_imagenet50", "propos_imagenet100",
           "propos_imagenet200", "propos_cifar10_lt", "propos_cifar20_lt", "byol_cifar10", "byol_cifar20"]


def load_config(name):
    return load_config_file(ROOT / "configs" / f"{name}.py")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """ImageFolder with 3 classes of odd-sized JPEGs, also under train/<class>/images/ (Tiny-ImageNet)."""
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.RandomState(0)
    for prefix in ("", "train/"):
        for c in ("n01", "n02", "n03"):
            folder = root / f"{prefix}{c}" / ("images" if prefix else "")
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(4):
                Image.fromarray(rng.randint(0, 256, (30 + i, 41, 3)).astype(np.uint8)).save(folder / f"{i}.JPEG")
    return str(root)


@pytest.fixture(scope="module")
def mock_tfds():
    with tfds.testing.mock_data(num_examples=400):
        yield


@pytest.mark.parametrize("name", CONFIGS)
def test_config_dry_run(name, image_folder, mock_tfds):
    cfg = load_config(name)
    full_k = cfg.cluster.num_clusters
    cfg.train.batch_size = 8  # the mock data sets hold a few hundred images at most
    cfg.cluster.num_clusters = min(full_k, 3)
    if cfg.data.source == "folder":
        cfg.data.path = image_folder
    else:
        cfg.data.path = "/nonexistent/tensorflow_datasets"  # mock_data never reads it
    summary = dry_run(cfg)
    size = cfg.data.image_size
    assert summary["view_shape"] == [size, size, 3] and summary["params"] > 1_000_000
    assert summary["num_examples"] >= 8 and summary["labelled"]


def test_streaming_config_builds_a_run_without_an_in_memory_bank(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    cfg = load_config("propos_imagenet1k")
    cfg.data.path, cfg.train.batch_size, cfg.cluster.num_clusters = str(tmp_path / "absent"), 64, 10
    with tfds.testing.mock_data(num_examples=130):
        run = Run(cfg, tmp_path)
    assert run.cfg.data.streaming and run.feeder.images is None
    assert run.dataset.num_examples == 130 and run.steps_per_epoch == 2
    cfg.train.resample = True
    with pytest.raises(ConfigError, match="train.resample draws from the whole data set"):
        Run(cfg, tmp_path)


def test_paper_settings():
    expected = {  # name: (data.name, backbone, stem, image size, K, epochs, batch)
        "propos_cifar10": ("cifar10", "resnet18", "cifar", 32, 10, 1000, 512),
        "propos_cifar20": ("cifar20", "resnet18", "cifar", 32, 20, 1000, 256),
        "propos_stl10": ("stl10", "resnet34", "imagenet", 96, 10, 1000, 256),
        "propos_imagenet10": ("imagenet10", "resnet34", "imagenet", 96, 10, 1000, 256),
        "propos_imagenet_dogs": ("imagenet_dogs", "resnet34", "imagenet", 224, 15, 1000, 256),
        "propos_tinyimagenet": ("tinyimagenet", "resnet18", "imagenet", 224, 200, 1000, 256),
        "propos_imagenet1k": ("imagenet2012", "resnet50", "imagenet", 224, 1000, 200, 4096),
        "propos_imagenet50": ("imagenet50", "resnet50", "imagenet", 224, 50, 300, 256),
        "propos_imagenet100": ("imagenet100", "resnet50", "imagenet", 224, 100, 300, 256),
        "propos_imagenet200": ("imagenet200", "resnet50", "imagenet", 224, 200, 300, 256),
        "propos_cifar10_lt": ("cifar10", "resnet18", "cifar", 32, 10, 1000, 512),
        "propos_cifar20_lt": ("cifar20", "resnet18", "cifar", 32, 20, 1000, 256),
        "byol_cifar10": ("cifar10", "resnet18", "cifar", 32, 10, 1000, 512),
        "byol_cifar20": ("cifar20", "resnet18", "cifar", 32, 20, 1000, 256),
    }
    assert sorted(expected) == sorted(CONFIGS)
    for name, row in expected.items():
        c = load_config(name)
        got = (c.data.name, c.model.backbone, c.model.stem, c.data.image_size, c.cluster.num_clusters,
               c.train.epochs, c.train.batch_size)
        assert got == row, name
    for name in ("propos_cifar10_lt", "propos_cifar20_lt"):
        c = load_config(name)
        assert c.data.imbalance_ratio == 0.1 and c.data.split == "train"  # Table 9, Sec. 5.8
    for name in ("byol_cifar10", "byol_cifar20"):
        c = load_config(name)
        assert c.method.psl_weight == 0 and c.method.sigma == 0 and c.cluster.every == 10
    stl = load_config("propos_stl10")
    assert stl.data.unlabelled and stl.data.split == "train+test"
    dogs = load_config("propos_imagenet_dogs")
    assert dogs.augment.blur_prob == 0.5 and dogs.augment.test_resized_crop
    imnet = load_config("propos_imagenet1k")
    assert imnet.augment.asymmetric and imnet.augment.blur_prob == 1.0 and imnet.augment.view2.blur_prob == 0.1
    assert imnet.augment.view2.solarize_prob == 0.2 and imnet.augment.saturation == 0.2
    assert (imnet.method.psl_weight, imnet.method.sigma, imnet.cluster.every) == (0.001, 1e-4, 10)
    assert load_config("propos_cifar20").augment.mean == (0.5071, 0.4867, 0.4408)
