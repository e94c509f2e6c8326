"""The SeCu, C2BIN and HaDis data-set configs validate and dry-run (data pipeline, model, one traced
step; nothing compiled) on mocked tfds data or a tiny ImageFolder; the paper values they claim are pinned."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxclust.config import ConfigError, load_config_file
from jaxclust.methods import METHODS
from jaxclust.trainer import dry_run

ROOT = Path(__file__).resolve().parents[1]
tfds = pytest.importorskip("tensorflow_datasets")

# every data-set config of the family's registered methods (the digits ones run in test_family_e2e.py)
CONFIGS = sorted(path.stem for method in ("secu", "c2bin", "hadis") if method in METHODS
                 for path in (ROOT / "configs").glob(f"{method}_*.py")
                 if not path.stem.endswith(("_digits", "_self_label")))


def load_config(name):
    return load_config_file(ROOT / "configs" / f"{name}.py")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.RandomState(0)
    for c in ("n01", "n02", "n03"):
        (root / c).mkdir()
        for i in range(4):
            Image.fromarray(rng.randint(0, 256, (30 + i, 41, 3)).astype(np.uint8)).save(root / c / f"{i}.JPEG")
    return str(root)


@pytest.fixture(scope="module")
def mock_tfds():
    with tfds.testing.mock_data(num_examples=400):
        yield


def shrink(cfg, image_folder):
    cfg.train.batch_size = 8
    cfg.cluster.num_clusters = 3
    if cfg.method.name == "c2bin" and cfg.method.labels == "head":
        cfg.method.cluster_heads = (3,) + tuple(cfg.method.cluster_heads)[1:]
    cfg.data.path = image_folder if cfg.data.source == "folder" else "/nonexistent/tensorflow_datasets"
    return cfg


@pytest.mark.parametrize("name", CONFIGS)
def test_config_dry_run(name, image_folder, mock_tfds):
    cfg = shrink(load_config(name), image_folder)
    summary = dry_run(cfg)
    assert summary["view_shape"] == [cfg.data.image_size] * 2 + [3] and summary["params"] > 1_000_000


def test_self_label_config_needs_a_secu_run(image_folder, mock_tfds):
    cfg = shrink(load_config("secu_cifar10_self_label"), image_folder)
    with pytest.raises(ConfigError, match="init_workdir"):
        dry_run(cfg)


def test_paper_settings():
    c = load_config("secu_cifar10")
    assert (c.train.epochs, c.optim.lr, c.method.centers_lr, c.train.batch_size) == (401, 0.2, 1.2, 128)
    assert c.augment.asymmetric and (c.augment.blur_prob, c.augment.view2.blur_prob, c.augment.view2.solarize_prob) == (1.0, 0.1, 0.2)
    assert load_config("secu_stl10").method.center_temperature == 1.0
    assert load_config("secu_stl10").method.entropy_alpha == 26460.0
    assert [load_config(f"hadis_{d}").method.psl_weight for d in ("cifar10", "cifar20", "stl10", "imagenet10", "imagenet_dogs")] == [0.1, 0.05, 0.1, 0.05, 0.1]
