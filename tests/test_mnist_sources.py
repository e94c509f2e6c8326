"""MNIST-like sources: tfds mnist / fashion_mnist / kmnist / emnist_letters (tfds.testing.mock_data) and the `idx` source
(MNIST-format files, generated here plain and gzipped): shapes, labels, splits, the one-sentence errors
for damaged files, the config checks, and launch/main.py --dry_run on an idx folder."""
import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxclust.config import ConfigError, base_config, validate_config
from jaxclust.data import idx, sources
from jaxclust.data.sources import DataError

ROOT = Path(__file__).resolve().parents[1]
tfds = pytest.importorskip("tensorflow_datasets")
NO_TFDS_DIR = "/nonexistent/tensorflow_datasets"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def data_cfg(**overrides):
    c = base_config().data
    for key, value in overrides.items():
        c[key] = value
    return c


def one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message and "\n" not in message


# ----------------------------------------------------------------------------------------------
# tfds (mocked)
# ----------------------------------------------------------------------------------------------

SPLIT_SIZES = {"train": 5, "test": 3}


def as_dataset(self, split, *args, **kwargs):
    """Mocked tfds reader: 'train' has 5 examples of pixel value 1, 'test' 3 of value 2, a '+'-joined
    split their concatenation; label i % 10."""
    import tensorflow as tf

    parts = str(split).split("+")

    def examples():
        for part in parts:
            for i in range(SPLIT_SIZES[part]):
                yield {"image": np.full((28, 28, 1), {"train": 1, "test": 2}[part], np.uint8), "label": i % 10}

    return tf.data.Dataset.from_generator(examples, output_types=self.info.features.dtype,
                                          output_shapes=self.info.features.shape)


@pytest.mark.parametrize("name, first_class", [("mnist", "0"), ("fashion_mnist", "T-shirt/top"), ("kmnist", "o")])
def test_tfds_mnist_like(name, first_class):
    with tfds.testing.mock_data(num_examples=9):
        bank = sources.load_source(data_cfg(source="tfds", name=name, path=NO_TFDS_DIR))
        assert bank.images.shape == (9, 28, 28, 1) and bank.images.dtype == np.uint8
        assert bank.labels.dtype == np.int32 and 0 <= bank.labels.min() and bank.labels.max() < 10
        assert len(bank.class_names) == 10 and bank.class_names[0] == first_class and bank.name == name
        rgb = sources.load_source(data_cfg(source="tfds", name=name, path=NO_TFDS_DIR, channels=3))
        assert rgb.images.shape == (9, 28, 28, 3) and (rgb.images == bank.images).all()
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        both = sources.load_source(data_cfg(source="tfds", name=name, path=NO_TFDS_DIR))  # default: train+test
        train = sources.load_source(data_cfg(source="tfds", name=name, path=NO_TFDS_DIR, split="train"))
        test = sources.load_source(data_cfg(source="tfds", name=name, path=NO_TFDS_DIR, split="test"))
    assert (both.num_examples, train.num_examples, test.num_examples) == (8, 5, 3)
    np.testing.assert_array_equal(both.images[:, 0, 0, 0], [1] * 5 + [2] * 3)  # train first, then test
    np.testing.assert_array_equal(both.labels, [0, 1, 2, 3, 4, 0, 1, 2])


def letters_dataset(labels):
    """A mocked tfds reader for emnist/letters: image i has a single bright pixel at (row 0, column i + 1),
    as EMNIST stores it (transposed), and label labels[i]."""
    def as_dataset_fn(self, split, *args, **kwargs):
        import tensorflow as tf

        def examples():
            for i, label in enumerate(labels):
                image = np.zeros((28, 28, 1), np.uint8)
                image[0, i + 1, 0] = 255
                yield {"image": image, "label": label}

        return tf.data.Dataset.from_generator(examples, output_types=self.info.features.dtype,
                                              output_shapes=self.info.features.shape)
    return as_dataset_fn


def test_tfds_emnist_letters_upright_with_labels_0_to_25():
    with tfds.testing.mock_data(as_dataset_fn=letters_dataset([1, 2, 26])):
        bank = sources.load_source(data_cfg(source="tfds", name="emnist_letters", path=NO_TFDS_DIR))
    assert bank.images.shape == (3, 28, 28, 1) and bank.images.dtype == np.uint8
    np.testing.assert_array_equal(bank.labels, [0, 1, 25])
    assert bank.class_names[bank.labels[0]] == "A" and bank.class_names[bank.labels[2]] == "Z"
    assert len(bank.class_names) == 26 and bank.name == "emnist_letters"
    for i in range(3):  # transposed back: the stored (0, i + 1) pixel is at (i + 1, 0)
        assert bank.images[i, i + 1, 0, 0] == 255 and bank.images[i].sum() == 255


@pytest.mark.parametrize("label", [0, 27])
def test_tfds_emnist_letters_label_outside_1_to_26_is_one_sentence(label):
    with tfds.testing.mock_data(as_dataset_fn=letters_dataset([1, label])):
        with pytest.raises(DataError) as error:
            sources.load_source(data_cfg(source="tfds", name="emnist_letters", path=NO_TFDS_DIR))
    assert one_sentence(str(error.value)) and f"(the first: {label})" in str(error.value)


def test_mnist_like_normalization():
    assert sources.normalization("mnist") == ((0.1307,), (0.3081,))
    assert sources.normalization("fashion_mnist") == ((0.2860,), (0.3530,))
    assert sources.normalization("kmnist") == ((0.1918,), (0.3483,))
    assert sources.normalization("cifar10") == sources.CIFAR10_STATS  # the others unchanged
    for name in ("mnist", "fashion_mnist", "kmnist"):
        assert sources.TFDS_SOURCES[name][2] == "train+test"


# ----------------------------------------------------------------------------------------------
# idx
# ----------------------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    """An uint8 array in the IDX format: magic 0x000008NN, big-endian uint32 dims, the values."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx_set(folder: Path, train=20, test=10, gz=False, dotted=False, seed=0):
    """train/test images (N, 28, 28) of random uint8 and labels 0..9 as the four MNIST files."""
    rng = np.random.RandomState(seed)
    arrays = {"train": (rng.randint(0, 256, (train, 28, 28)).astype(np.uint8), rng.randint(0, 10, train).astype(np.uint8)),
              "test": (rng.randint(0, 256, (test, 28, 28)).astype(np.uint8), rng.randint(0, 10, test).astype(np.uint8))}
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(FILES, (*arrays["train"], *arrays["test"])):
        name = name.replace("-idx", ".idx") if dotted else name
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz, dotted", [(False, False), (True, False), (False, True), (True, True)])
def test_idx_round_trip(tmp_path, gz, dotted):
    arrays = write_idx_set(tmp_path / "mnist", gz=gz, dotted=dotted)
    bank = sources.load_source(data_cfg(source="idx", path=str(tmp_path / "mnist")))  # default: train+test
    assert bank.images.shape == (30, 28, 28, 1) and bank.images.dtype == np.uint8
    np.testing.assert_array_equal(bank.images[..., 0], np.concatenate([arrays["train"][0], arrays["test"][0]]))
    assert bank.labels.dtype == np.int32
    np.testing.assert_array_equal(bank.labels, np.concatenate([arrays["train"][1], arrays["test"][1]]))
    assert bank.class_names == tuple("0123456789") and bank.name == "mnist"
    for split, (images, labels) in arrays.items():
        one = sources.load_source(data_cfg(source="idx", path=str(tmp_path / "mnist"), split=split))
        np.testing.assert_array_equal(one.images[..., 0], images)
        np.testing.assert_array_equal(one.labels, labels)


def test_read_idx_other_types_and_class_names_file(tmp_path):
    values = (np.arange(12) - 5).astype(">i2").reshape(3, 4)  # stored big-endian
    (tmp_path / "short.idx").write_bytes(bytes([0, 0, 0x0B, 2]) + np.asarray((3, 4), ">u4").tobytes() + values.tobytes())
    read = idx.read_idx(tmp_path / "short.idx")
    assert read.dtype == np.int16 and read.dtype.isnative and (read == values).all()
    arrays = write_idx_set(tmp_path / "fashion", train=6, test=4)
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    (tmp_path / "fashion" / "class_names.txt").write_text("\n".join(names) + "\n")
    bank = sources.load_source(data_cfg(source="idx", path=str(tmp_path / "fashion"), split="test", channels=3))
    assert bank.class_names == tuple(names) and bank.images.shape == (4, 28, 28, 3)
    np.testing.assert_array_equal(bank.images[..., 2], arrays["test"][0])
    bigger = sources.load_source(data_cfg(source="idx", path=str(tmp_path / "fashion"), load_size=32))
    assert bigger.images.shape == (10, 32, 32, 1)


def load_error(folder, **overrides) -> str:
    with pytest.raises(DataError) as error:
        sources.load_source(data_cfg(source="idx", path=str(folder), **overrides))
    message = str(error.value)
    assert one_sentence(message), message
    return message


def test_idx_truncated_file(tmp_path):
    write_idx_set(tmp_path / "d")
    image_file = tmp_path / "d" / FILES[0]
    image_file.write_bytes(image_file.read_bytes()[:-100])
    message = load_error(tmp_path / "d")
    expected = 16 + 20 * 28 * 28
    assert str(image_file) in message and "truncated" in message
    assert f"{expected} bytes" in message and f"has {expected - 100}" in message
    image_file.write_bytes(image_file.read_bytes()[:10])  # not even the whole header
    assert "truncated" in load_error(tmp_path / "d")
    # a gzip file cut short
    write_idx_set(tmp_path / "g", gz=True)
    gz_file = tmp_path / "g" / f"{FILES[2]}.gz"
    gz_file.write_bytes(gz_file.read_bytes()[:-30])
    message = load_error(tmp_path / "g")
    assert str(gz_file) in message and "truncated" in message
    # the train split alone does not read the damaged test files
    assert sources.load_source(data_cfg(source="idx", path=str(tmp_path / "g"), split="train")).num_examples == 20


def test_idx_count_mismatch_magic_and_labels(tmp_path):
    write_idx_set(tmp_path / "d")
    (tmp_path / "d" / FILES[1]).write_bytes(idx_bytes(np.zeros(19, np.uint8)))
    message = load_error(tmp_path / "d")
    assert "20 images" in message and "19 labels" in message and FILES[0] in message and FILES[1] in message
    # labels file holding images (magic 0x803 where 0x801 is due)
    (tmp_path / "d" / FILES[1]).write_bytes(idx_bytes(np.zeros((20, 28, 28), np.uint8)))
    message = load_error(tmp_path / "d")
    assert "0x00000803" in message and "0x00000801" in message and FILES[1] in message
    # not an IDX file at all
    (tmp_path / "d" / FILES[0]).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    message = load_error(tmp_path / "d")
    assert "not an IDX file" in message and "0x89504e47" in message and FILES[0] in message
    # labels out of range
    write_idx_set(tmp_path / "e")
    (tmp_path / "e" / FILES[1]).write_bytes(idx_bytes(np.full(20, 12, np.uint8)))
    message = load_error(tmp_path / "e")
    assert "labels go up to 12" in message and "class_names.txt" in message
    (tmp_path / "e" / "class_names.txt").write_text("\n".join("abcdefghijklm"))  # 13 names
    assert len(sources.load_source(data_cfg(source="idx", path=str(tmp_path / "e"))).class_names) == 13


def test_idx_missing_files_and_bad_split(tmp_path):
    message = load_error(tmp_path / "nowhere")
    assert all(name in message for name in FILES) and "--config.data.path" in message
    write_idx_set(tmp_path / "d")
    (tmp_path / "d" / FILES[2]).unlink()
    message = load_error(tmp_path / "d")
    assert FILES[2] in message and FILES[3] not in message and "'test' split" in message
    assert sources.load_source(data_cfg(source="idx", path=str(tmp_path / "d"), split="train")).num_examples == 20
    assert "'val'" in load_error(tmp_path / "d", split="val")


def test_idx_config_checks(tmp_path):
    cfg = base_config()
    cfg.data.source = "idx"
    with pytest.raises(ConfigError, match="data.path"):
        validate_config(cfg)
    cfg.data.path = str(tmp_path)
    validate_config(cfg)
    cfg.data.split, cfg.eval.split = "train", "test"  # scored on the held-out t10k files
    validate_config(cfg)
    cfg.data.split = "train+val"
    with pytest.raises(ConfigError, match="data.split of data.source='idx' must be 'train', 'test' or 'train\\+test'"):
        validate_config(cfg)


# ----------------------------------------------------------------------------------------------
# launch/main.py
# ----------------------------------------------------------------------------------------------

def launch_dry_run(folder):
    cmd = [sys.executable, str(ROOT / "launch" / "main.py"), "--dry_run", "--config=configs/propos_digits.py",
           "--config.data.source=idx", "--config.data.name=mnist", f"--config.data.path={folder}",
           "--config.data.image_size=28", "--config.augment.mean=(0.1307,)", "--config.augment.std=(0.3081,)",
           "--config.train.batch_size=16"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})


def test_launch_dry_run_on_idx_folder(tmp_path):
    import json

    write_idx_set(tmp_path / "mnist", gz=True)
    out = launch_dry_run(tmp_path / "mnist")
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["source"] == "idx" and summary["num_examples"] == 30 and summary["labelled"]
    assert summary["stored_shape"] == [28, 28, 1] and summary["view_shape"] == [28, 28, 1]
    # a truncated image file: exit 2, one line, no traceback
    image_file = tmp_path / "mnist" / f"{FILES[0]}.gz"
    image_file.write_bytes(gzip.compress(gzip.decompress(image_file.read_bytes())[:-28]))
    out = launch_dry_run(tmp_path / "mnist")
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "truncated" in lines[0] and FILES[0] in lines[0], out.stderr[-2000:]
    assert one_sentence(lines[0]) and "Traceback" not in out.stderr
