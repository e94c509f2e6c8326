"""The `idx` source: MNIST-format files (Y. LeCun's IDX format), as MNIST, Fashion-MNIST and KMNIST are
distributed, read with numpy alone.

`data.path` is a folder holding, plain or gzipped (`.gz`), with `-idx` or `.idx` before the type
(`train-images-idx3-ubyte`, or `train-images.idx3-ubyte` as some mirrors name them):

    train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte

`data.split` picks 'train', 'test' (the t10k files) or '+'-joined both ('' = 'train+test', the 70,000
images the clustering literature uses); only the files of the chosen split are read. Class names are
"0".."9", or the lines of an optional `class_names.txt` in the folder (one name per line, in label
order; e.g. Fashion-MNIST's T-shirt/top, Trouser, ...). The bank is named after the folder.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), then
each dimension as a big-endian uint32, then the values, row-major, big-endian. Images are type
0x08 (uint8) with 3 dimensions (magic 0x00000803), labels uint8 with one (magic 0x00000801).
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from jaxclust.data.bank import DataError, ImageBank

#: IDX type code -> numpy dtype (big-endian, as stored)
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
#: split -> (images file, labels file), as MNIST names them
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASS_NAMES_FILE = "class_names.txt"


def _read_bytes(path: Path) -> tuple[bytes, bool]:
    """The file's bytes, gunzipped when it is gzip (by its content, whatever its name), and whether it was."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw, False
    try:
        return gzip.decompress(raw), True
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"IDX file {str(path)!r} is a damaged or truncated gzip file ({error}); "
                        "download it again.") from error


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file (plain or gzipped), in native byte order. DataError if the magic
    number is not an IDX one or the file's length is not the header's plus the values' its dimensions
    promise."""
    path = Path(path)
    data, gzipped = _read_bytes(path)
    size = f"{len(data)}" + (" uncompressed" if gzipped else "")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        magic = int.from_bytes(data[:4].ljust(4, b"\0"), "big")
        raise DataError(f"{str(path)!r} is not an IDX file: its magic number is 0x{magic:08x}, not 0x00000803 "
                        "(images) or 0x00000801 (labels).")
    dtype, ndim = np.dtype(IDX_TYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"IDX file {str(path)!r} is truncated: its header alone needs {header} bytes, "
                        f"it has {size}.")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(f"IDX file {str(path)!r} is {what}: a header of shape {dims} means {expected} bytes, "
                        f"the file has {size}; download it again.")
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def find_file(folder: Path, name: str) -> Path | None:
    """`name` in `folder`: as is, gzipped, or with '.idx' for '-idx' (train-images.idx3-ubyte)."""
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def magic_number(array: np.ndarray) -> int:
    """The IDX magic number an array read by `read_idx` was stored under."""
    codes = {np.dtype(t).newbyteorder("="): code for code, t in IDX_TYPES.items()}
    return codes[array.dtype] << 8 | array.ndim


def _check_magic(array: np.ndarray, path: Path, magic: int, what: str) -> None:
    if magic_number(array) != magic:
        raise DataError(f"{str(path)!r} has the IDX magic number 0x{magic_number(array):08x} ({array.dtype}, "
                        f"{array.ndim} dimensions), not the 0x{magic:08x} of an MNIST {what} file.")


def read_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, H, W, 1) uint8, labels (N,) int32) of one split ('train' or 'test') in `folder`."""
    names = SPLIT_FILES[split]
    paths = [find_file(folder, n) for n in names]
    if None in paths:
        missing = [n for n, p in zip(names, paths) if p is None]
        raise DataError(f"idx data set at {str(folder)!r} has no {' or '.join(missing)} (plain, .gz, or named with "
                        f"'.idx' for '-idx'), which its {split!r} split needs; add the file(s) or choose another "
                        "--config.data.split.")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    _check_magic(images, paths[0], IMAGES_MAGIC, "images")
    _check_magic(labels, paths[1], LABELS_MAGIC, "labels")
    if len(images) != len(labels):
        raise DataError(f"idx data set at {str(folder)!r}: {paths[0].name} holds {len(images)} images but "
                        f"{paths[1].name} {len(labels)} labels; the two files must come from the same release.")
    return images[..., None], labels.astype(np.int32)


def class_names(folder: Path) -> tuple[str, ...]:
    """The lines of `class_names.txt` in `folder` (blank ones left out), else "0".."9"."""
    file = folder / CLASS_NAMES_FILE
    if not file.is_file():
        return tuple(str(k) for k in range(10))
    return tuple(line.strip() for line in file.read_text().splitlines() if line.strip())


def load_idx(data_cfg) -> ImageBank:
    """The images and labels of `data.split` (default 'train+test', in that order) of the MNIST-format
    folder `data.path`, as (N, H, W, 1) uint8 at their stored size (`sources` resizes to data.load_size)."""
    folder = Path(data_cfg.path)
    if not data_cfg.path or not folder.is_dir():
        files = ", ".join(name for pair in SPLIT_FILES.values() for name in pair)
        raise DataError(f"idx data set not found at {str(data_cfg.path)!r}: put {files} (plain or .gz) in a folder "
                        "and pass --config.data.path=DIR.")
    split = data_cfg.get("split", "") or "train+test"
    parts = split.split("+")
    if any(p not in SPLIT_FILES for p in parts) or len(set(parts)) != len(parts):
        raise DataError(f"the idx source reads data.split 'train', 'test' or 'train+test', not {split!r}.")
    read = [read_split(folder, p) for p in parts]
    if len({im.shape[1:] for im, _ in read}) > 1:
        raise DataError(f"idx data set at {str(folder)!r}: the train and test images differ in size "
                        f"({' and '.join(str(im.shape[1:3]) for im, _ in read)}); read one split at a time.")
    images = np.concatenate([im for im, _ in read])
    labels = np.concatenate([lab for _, lab in read])
    names = class_names(folder)
    if labels.size and labels.max() >= len(names):
        source = f"the {len(names)} lines of {CLASS_NAMES_FILE}" if (folder / CLASS_NAMES_FILE).is_file() \
            else f"the {len(names)} classes '0'..'9'"
        raise DataError(f"idx data set at {str(folder)!r}: labels go up to {int(labels.max())}, beyond {source}; "
                        f"write {CLASS_NAMES_FILE} in that folder with one class name per line.")
    name = folder.resolve().name
    return ImageBank(images=images, labels=labels, class_names=names, name=name)
