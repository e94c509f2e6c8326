"""The MNIST-family configs (issue #20): each validates and builds its pipeline and model on a generated
idx folder (28x28x1 views, flattened 7x7x64 features), the BYOL twins differ from their ProPos config
in the method section only, and launch/pixel_kmeans.py, the baseline row of their table, scores
l2-normalised pixels as sklearn's k-means does and refuses data without labels in one sentence."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxclust.config import load_config_file
from jaxclust.trainer import dry_run

from test_mnist_sources import write_idx_set

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["propos_mnist", "byol_mnist", "propos_fashion_mnist", "byol_fashion_mnist"]
sys.path.insert(0, str(ROOT / "launch"))
import pixel_kmeans  # noqa: E402  (launch/pixel_kmeans.py)


def load_config(name):
    return load_config_file(ROOT / "configs" / f"{name}.py")


@pytest.fixture(scope="module")
def idx_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mnist")
    write_idx_set(folder, train=40, test=24, gz=True)
    return folder


@pytest.mark.parametrize("name", CONFIGS)
def test_config_dry_run_on_idx_files(name, idx_folder):
    cfg = load_config(name)
    assert cfg.data.source == "tfds" and cfg.data.split == "" and cfg.data.image_size == 28
    cfg.data.source, cfg.data.path, cfg.train.batch_size = "idx", str(idx_folder), 16
    summary = dry_run(cfg)
    assert summary["num_examples"] == 64 and summary["labelled"]
    assert summary["stored_shape"] == [28, 28, 1] and summary["view_shape"] == [28, 28, 1]
    widths = cfg.model.convnet_widths
    assert cfg.model.convnet_pool == "flatten" and summary["params"] > 7 * 7 * widths[-1] * cfg.model.projector_hidden


def test_unknown_convnet_pool_is_a_config_error():
    from jaxclust.config import ConfigError
    from jaxclust.trainer import check_config

    cfg = load_config("propos_mnist")
    cfg.model.convnet_pool = "sum"
    with pytest.raises(ConfigError, match="model.convnet_pool must be one of 'avg', 'max', 'flatten'; got 'sum'"):
        check_config(cfg)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_byol_twin_is_the_propos_config_but_the_method(name):
    propos, byol = load_config(f"propos_{name}").to_dict(), load_config(f"byol_{name}").to_dict()
    assert byol.pop("method") != propos.pop("method")
    assert byol == propos


def test_fashion_mnist_shares_the_mnist_network_and_schedule():
    """Only the data and the views differ (crops and flips instead of MNIST's affine views)."""
    mnist, fashion = load_config("propos_mnist"), load_config("propos_fashion_mnist")
    assert fashion.data.name == "fashion_mnist" and fashion.augment.mean == (0.2860,)
    assert fashion.augment.crop and not fashion.augment.affine and fashion.augment.flip_prob == 0.5
    assert mnist.augment.affine and not mnist.augment.crop and mnist.augment.flip_prob == 0.0
    for section in ("model", "optim", "train", "cluster", "kmeans"):
        assert fashion[section].to_dict() == mnist[section].to_dict(), section


def test_pixel_kmeans_matches_sklearn_on_unit_pixels(tmp_path):
    """Two-cluster images (ink on the left or the right half) with noise: the labels of
    pixel_kmeans equal sklearn KMeans' on the same l2-normalised rows (up to renaming), and the NMI
    it reports is sklearn's NMI of those labels."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    images = rng.integers(0, 60, (60, 28, 28, 1)).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, :, 14 * label:14 * label + 14] += 150
    images[:5] = rng.integers(0, 256, (5, 28, 28, 1))  # a few that belong to neither
    np.savez(tmp_path / "two.npz", images=images, labels=labels)
    cfg = load_config("propos_mnist")
    cfg.data.source, cfg.data.path, cfg.cluster.num_clusters = "npz", str(tmp_path / "two.npz"), 2
    summary = pixel_kmeans.pixel_kmeans(cfg)

    x = np.asarray(pixel_kmeans.pixel_features(images))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
    sk = KMeans(2, n_init=10, random_state=0).fit_predict(x)
    assert summary["images"] == 60 and summary["pixels"] == 784
    assert summary["nmi"] == pytest.approx(normalized_mutual_info_score(labels, sk), abs=1e-12)
    assert summary["ari"] == pytest.approx(adjusted_rand_score(labels, sk), abs=1e-12)


def test_pixel_kmeans_without_labels_is_one_sentence(tmp_path):
    np.savez(tmp_path / "nolabels.npz", images=np.zeros((8, 28, 28, 1), np.uint8))
    out = subprocess.run([sys.executable, str(ROOT / "launch" / "pixel_kmeans.py"), "--config=configs/propos_mnist.py",
                          "--config.data.source=npz", f"--config.data.path={tmp_path / 'nolabels.npz'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == ["error: nolabels has no labels: there is nothing to score pixel k-means against."]
