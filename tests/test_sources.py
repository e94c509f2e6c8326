"""Data sources: npz, folder (generated files), tfds (tfds.testing.mock_data), long-tail subsets,
channel handling, the SCAN class lists, and the one-sentence errors for missing data sets."""
import importlib.resources
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxclust.config import base_config
from jaxclust.data import sources
from jaxclust.data.sources import DataError, ImageBank

ROOT = Path(__file__).resolve().parents[1]
tfds = pytest.importorskip("tensorflow_datasets")
NO_TFDS_DIR = "/nonexistent/tensorflow_datasets"


def data_cfg(**overrides):
    c = base_config().data
    for key, value in overrides.items():
        c[key] = value
    return c


# ----------------------------------------------------------------------------------------------
# npz and channels
# ----------------------------------------------------------------------------------------------

def test_npz_grey_and_colour(tmp_path):
    rng = np.random.RandomState(0)
    grey = rng.randint(0, 256, (5, 6, 7)).astype(np.uint8)
    np.savez(tmp_path / "g.npz", images=grey, labels=np.array([0, 1, 2, 1, 0]))
    bank = sources.load_source(data_cfg(source="npz", path=str(tmp_path / "g.npz")))
    assert bank.images.shape == (5, 6, 7, 1) and bank.labels.dtype == np.int32
    assert bank.class_names == ("0", "1", "2") and bank.name == "g"
    np.testing.assert_array_equal(bank.images[..., 0], grey)
    # grey repeated to three channels by config
    rgb = sources.load_source(data_cfg(source="npz", path=str(tmp_path / "g.npz"), channels=3))
    assert rgb.images.shape == (5, 6, 7, 3) and (rgb.images == bank.images).all()
    colour = rng.randint(0, 256, (4, 3, 3, 3)).astype(np.uint8)
    np.savez(tmp_path / "c.npz", images=colour)
    bank = sources.load_source(data_cfg(source="npz", path=str(tmp_path / "c.npz")))
    assert bank.labels is None and bank.num_channels == 3


def test_npz_errors(tmp_path):
    with pytest.raises(DataError, match="npz data set not found at .*missing.npz.*--config.data.path"):
        sources.load_source(data_cfg(source="npz", path=str(tmp_path / "missing.npz")))
    np.savez(tmp_path / "f.npz", images=np.zeros((2, 3, 3), np.float32))
    with pytest.raises(DataError, match="uint8"):
        sources.load_source(data_cfg(source="npz", path=str(tmp_path / "f.npz")))


def test_grayscale_matches_pil():
    rgb = np.random.RandomState(1).randint(0, 256, (9, 11, 3)).astype(np.uint8)
    rgb[0, :3] = [[255, 255, 255], [0, 0, 0], [128, 64, 32]]
    ours = sources.to_grayscale_uint8(rgb)[..., 0]
    np.testing.assert_array_equal(ours, np.asarray(Image.fromarray(rgb).convert("L")))
    with pytest.raises(DataError, match="data.channels"):
        sources.set_channels(np.zeros((1, 2, 2, 1), np.uint8), 2, "x")


# ----------------------------------------------------------------------------------------------
# folder
# ----------------------------------------------------------------------------------------------

def _write(path: Path, array: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """root/{cat,dog}/ PNG images of different sizes; root/dog keeps one in a nested folder."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.RandomState(2)
    arrays = {}
    for cls, count in (("dog", 3), ("cat", 2)):
        for i in range(count):
            a = rng.randint(0, 256, (10 + i, 14, 3)).astype(np.uint8)
            sub = "nested/" if (cls == "dog" and i == 2) else ""
            _write(root / cls / f"{sub}{i}.png", a)
            arrays[(cls, i)] = a
    (root / "notes.txt").write_text("not an image")
    return root, arrays


def test_folder_classes_sorted_and_resized_like_pil(image_folder):
    root, arrays = image_folder
    bank = sources.load_source(data_cfg(source="folder", name="pets", path=str(root), image_size=8))
    assert bank.class_names == ("cat", "dog")  # sorted, as ImageFolder
    assert bank.images.shape == (5, 8, 8, 3) and bank.images.dtype == np.uint8
    np.testing.assert_array_equal(bank.labels, [0, 0, 1, 1, 1])
    expected = np.asarray(Image.fromarray(arrays[("cat", 1)]).resize((8, 8), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(bank.images[1], expected)
    assert (bank.images[4] == np.asarray(Image.fromarray(arrays[("dog", 2)]).resize((8, 8), Image.BICUBIC))).all()
    # load_size: stored at another size than the network's
    bigger = sources.load_source(data_cfg(source="folder", path=str(root), image_size=8, load_size=12))
    assert bigger.images.shape == (5, 12, 12, 3)
    grey = sources.load_source(data_cfg(source="folder", path=str(root), image_size=8, channels=1))
    assert grey.images.shape == (5, 8, 8, 1)


def test_folder_flat_unlabelled_grey_and_splits(tmp_path):
    rng = np.random.RandomState(3)
    for i in range(3):
        _write(tmp_path / "flat" / f"{i}.jpg", rng.randint(0, 256, (9, 9)).astype(np.uint8))  # grey JPEG
    bank = sources.load_source(data_cfg(source="folder", path=str(tmp_path / "flat"), image_size=9))
    assert bank.labels is None and bank.images.shape == (3, 9, 9, 1)  # grey files -> one channel
    for split, cls in (("train", "a"), ("train", "b"), ("val", "b")):
        _write(tmp_path / "ds" / split / cls / "x.png", rng.randint(0, 256, (5, 5, 3)).astype(np.uint8))
    both = sources.load_source(data_cfg(source="folder", path=str(tmp_path / "ds"), split="train+val", image_size=5))
    assert both.class_names == ("a", "b") and list(both.labels) == [0, 1, 1]
    with pytest.raises(DataError, match="sub-folder.*test"):
        sources.load_source(data_cfg(source="folder", path=str(tmp_path / "ds"), split="test", image_size=5))


def test_folder_missing_and_empty(tmp_path):
    with pytest.raises(DataError, match="folder data set 'imagenet10' not found at .*nowhere.*--config.data.path"):
        sources.load_source(data_cfg(source="folder", name="imagenet10", path=str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no images"):
        sources.load_source(data_cfg(source="folder", path=str(tmp_path / "empty")))


# ----------------------------------------------------------------------------------------------
# tfds (mocked)
# ----------------------------------------------------------------------------------------------

def tfds_cfg(name, **overrides):
    return data_cfg(source="tfds", name=name, path=NO_TFDS_DIR, **overrides)


def test_tfds_cifar_splits_and_coarse_labels():
    with tfds.testing.mock_data(num_examples=12):
        bank = sources.load_source(tfds_cfg("cifar10"))
        assert bank.images.shape == (12, 32, 32, 3) and bank.images.dtype == np.uint8
        assert len(bank.class_names) == 10 and 0 <= bank.labels.min() and bank.labels.max() < 10
        train = sources.load_source(tfds_cfg("cifar10", split="train"))
        assert train.num_examples == 12
        c20 = sources.load_source(tfds_cfg("cifar20"))
        assert len(c20.class_names) == 20 and c20.labels.max() < 20
        c100 = sources.load_source(tfds_cfg("cifar100"))
        assert len(c100.class_names) == 100
        grey = sources.load_source(tfds_cfg("cifar10", channels=1))
        np.testing.assert_array_equal(grey.images, sources.to_grayscale_uint8(bank.images))
        with pytest.raises(DataError, match="no data set 'svhn_cropped'"):
            sources.load_source(tfds_cfg("svhn_cropped"))


def test_tfds_stl10_with_unlabelled():
    with tfds.testing.mock_data(num_examples=6):
        labelled = sources.load_source(tfds_cfg("stl10"))
        assert labelled.images.shape == (6, 96, 96, 3) and (labelled.labels >= 0).all()
        both = sources.load_source(tfds_cfg("stl10", unlabelled=True))
        assert both.num_examples == 12
        np.testing.assert_array_equal(both.labels[6:], -1)  # left out of the metrics
        np.testing.assert_array_equal(both.labels[:6], labelled.labels)


def test_tfds_imagenet_subset():
    with tfds.testing.mock_data(num_examples=300):
        full = sources.load_source(tfds_cfg("imagenet2012", image_size=8))
        assert full.images.shape == (300, 8, 8, 3) and len(full.class_names) == 1000
        sub = sources.load_source(tfds_cfg("imagenet50", image_size=8))
    wnids = sources.subset_classes("imagenet50")
    assert sub.class_names == wnids and 0 < sub.num_examples < 300
    keep = np.isin(np.asarray(full.class_names)[full.labels], wnids)
    assert sub.num_examples == keep.sum()
    np.testing.assert_array_equal(np.asarray(wnids)[sub.labels], np.asarray(full.class_names)[full.labels[keep]])
    np.testing.assert_array_equal(sub.images, full.images[keep])


def test_tfds_missing_data_set_errors(tmp_path):
    with pytest.raises(DataError, match=r"CIFAR-10 \(tfds 'cifar10'\) is not prepared in .*tfds_empty.*download"):
        sources.load_source(data_cfg(source="tfds", name="cifar10", path=str(tmp_path / "tfds_empty"), download=False))
    with pytest.raises(DataError, match="ILSVRC2012_img_train.tar.*downloads/manual.*image-net.org"):
        sources.load_source(data_cfg(source="tfds", name="imagenet50", path=str(tmp_path / "tfds_empty")))


def test_missing_data_exits_2_before_compiling(tmp_path):
    """launch/main.py: one sentence naming the data set, where, and how; exit code 2."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "launch" / "main.py"), f"--config={ROOT / 'configs' / 'propos_imagenet10.py'}",
         f"--workdir={tmp_path / 'run'}", f"--config.data.path={tmp_path / 'nowhere'}"],
        capture_output=True, text=True, timeout=120,
        env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 2, out.stderr[-2000:]
    error = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "imagenet10" in error[0] and "nowhere" in error[0] and "--config.data.path" in error[0]
    assert not (tmp_path / "run").exists()  # nothing written: it stopped before the run started


# ----------------------------------------------------------------------------------------------
# long tail and class lists
# ----------------------------------------------------------------------------------------------

def test_long_tail_counts_formula():
    # CIFAR-10-LT, ratio 0.1: 5000 * 0.1 ** (k / 9), truncated (the LDAM / Tang et al. recipe)
    assert sources.long_tail_counts(5000, 10, 0.1) == [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]
    c20 = sources.long_tail_counts(2500, 20, 0.1)
    assert c20[0] == 2500 and c20[-1] == 250 and all(a >= b for a, b in zip(c20, c20[1:]))
    assert c20 == [int(2500 * 0.1 ** (k / 19)) for k in range(20)]


def test_long_tail_subset():
    labels = np.repeat(np.arange(10, dtype=np.int32), 50)
    images = np.zeros((500, 1, 2, 1), np.uint8)
    images[:, 0, 0, 0], images[:, 0, 1, 0] = labels, np.arange(500) % 50  # (class, position in class)
    bank = ImageBank(images=images, labels=labels, class_names=tuple("abcdefghij"), name="toy")
    lt = sources.long_tail(bank, 0.1)
    counts = np.bincount(lt.labels, minlength=10)
    assert counts.tolist() == sources.long_tail_counts(50, 10, 0.1)
    assert counts.min() / counts.max() == pytest.approx(0.1)
    assert sources.long_tail(bank, 0.1).images.tobytes() == lt.images.tobytes()  # fixed seed
    np.testing.assert_array_equal(lt.images[:, 0, 0, 0], lt.labels)  # images keep their labels
    for k in range(10):  # drawn without repetition
        assert len(set(lt.images[lt.labels == k, 0, 1, 0])) == counts[k]
    with tfds.testing.mock_data(num_examples=200):
        from_cfg = sources.load_source(tfds_cfg("cifar10", split="train", imbalance_ratio=0.1))
    full = np.bincount(np.asarray(from_cfg.labels), minlength=10)
    assert full.max() >= full.min() and from_cfg.name == "cifar10-lt0.1"


def test_scan_subsets_are_packaged_and_nested():
    files = importlib.resources.files("jaxclust.data") / "subsets"
    lists = {n: sources.subset_classes(f"imagenet{n}") for n in (50, 100, 200)}
    for n, wnids in lists.items():
        assert (files / f"imagenet{n}.txt").is_file()
        assert len(wnids) == n == len(set(wnids)) and list(wnids) == sorted(wnids)
        assert all(w.startswith("n") and len(w) == 9 and w[1:].isdigit() for w in wnids)
    assert set(lists[50]) < set(lists[100]) < set(lists[200])
    assert "subsets/*.txt" in (ROOT / "pyproject.toml").read_text()


def test_normalization_table():
    assert sources.normalization("cifar10") == ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    assert sources.normalization("cifar20") == sources.normalization("cifar100") == sources.CIFAR100_STATS
    assert sources.normalization("stl10") == sources.normalization("imagenet_dogs") == sources.IMAGENET_STATS
