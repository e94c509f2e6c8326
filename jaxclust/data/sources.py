"""Image sources. Each returns an `ImageBank`: the whole data set as uint8 images in memory.

The bank is put on the device(s) once by the training loop; batches are gathered from it by index.

`data.source` names the source:

| source | what it reads |
|---|---|
| `digits` | scikit-learn's 8x8 digits (no download) |
| `npz` | a file with `images` (N,H,W[,C]) uint8 and optional `labels` (N,) |
| `folder` | an ImageFolder-style directory: one sub-folder per class, or a flat folder (no labels) |
| `idx` | the four MNIST-format `*-ubyte[.gz]` files in the folder `data.path` (jaxclust/data/idx.py) |
| `tfds` | `data.name`: `cifar10`; `cifar20` (CIFAR-100 coarse labels) or `cifar100`; `stl10`
  (`data.unlabelled` adds the 100k unlabelled images, label -1); `imagenet2012` (manual download) or
  a SCAN subset `imagenet50/100/200`; `mnist`, `fashion_mnist`, `kmnist`, `emnist_letters` (28x28 grey) |

Then, for every source: `data.channels` (keep / grey / grey repeated to RGB) and `data.imbalance_ratio`
(long-tailed subset, ProPos Table 9). A missing data set raises `DataError` saying where it was
looked for and how to provide it, before anything is compiled.
"""
from __future__ import annotations

import dataclasses
import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from jaxclust.data import idx
from jaxclust.data.bank import DataError, ImageBank  # noqa: F401 - their home for most callers


def load_digits() -> ImageBank:
    """scikit-learn's digits: 1,797 real 8x8 grey images of 10 classes, shipped with scikit-learn."""
    from sklearn import datasets

    digits = datasets.load_digits()
    # Pixel values are integers 0..16; map them onto 0..255 exactly (x * 255 / 16, rounded).
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return ImageBank(
        images=images,
        labels=digits.target.astype(np.int32),
        class_names=tuple(str(c) for c in digits.target_names),
        name="digits",
    )


def load_npz(path: str) -> ImageBank:
    """A .npz file with `images` (N,H,W,C) or (N,H,W) uint8, optional `labels` (N,) and `class_names`."""
    file = Path(path)
    if not file.is_file():
        raise DataError(
            f"npz data set not found at {str(file)!r}: write one with "
            "numpy.savez(path, images=uint8 (N,H,W[,C]), labels=(N,)) and pass --config.data.path=PATH."
        )
    with np.load(file, allow_pickle=False) as data:
        if "images" not in data.files:
            raise DataError(f"{str(file)!r} has no array named 'images' (found: {', '.join(data.files)}).")
        images = data["images"]
        labels = data["labels"] if "labels" in data.files else None
        names = tuple(str(n) for n in data["class_names"]) if "class_names" in data.files else None
    if images.ndim == 3:
        images = images[..., None]
    if np.issubdtype(images.dtype, np.floating) and np.isnan(images).any():
        raise DataError(
            f"{str(file)!r}: images contain {int(np.isnan(images).sum())} NaN values and are "
            f"{images.dtype}; store them as uint8 (0..255) without NaN."
        )
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(
            f"{str(file)!r}: images must have shape (N,H,W) or (N,H,W,C) with C = 1 or 3, got {images.shape}."
        )
    if images.dtype != np.uint8:
        raise DataError(
            f"{str(file)!r}: images must be uint8 (0..255), got {images.dtype}; convert them first."
        )
    if labels is not None:
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{str(file)!r}: labels must be integers, got {labels.dtype}.")
        labels = labels.astype(np.int32)
        if names is None:
            names = tuple(str(c) for c in range(int(labels.max()) + 1))
    return ImageBank(images=images, labels=labels, class_names=names or (), name=file.stem)




# ----------------------------------------------------------------------------------------------
# Normalisation statistics of the official code (TrainTask.normalize, propos_official.md Sec. 2.7)
# ----------------------------------------------------------------------------------------------

CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
CIFAR100_STATS = ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))  # cifar20 and cifar100
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # imagenet, stl10 and every other set
# Grey 28x28 sets (not in the official code): the commonly used mean and std of the pixels (0..1) of each
# set's 60,000-image training split, one value for the one channel.
GREY_STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "kmnist": ((0.1918,), (0.3483,)),
}


def normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the official code uses for data set `name` (cifar10, cifar20/100, anything else), or
    for mnist, fashion_mnist and kmnist their training-split pixel statistics (GREY_STATS)."""
    if name in GREY_STATS:
        return GREY_STATS[name]
    if name.startswith("cifar10") and not name.startswith("cifar100"):
        return CIFAR10_STATS
    if name.startswith("cifar20") or name.startswith("cifar100"):
        return CIFAR100_STATS
    return IMAGENET_STATS


# ----------------------------------------------------------------------------------------------
# Pixels: channel handling and PIL decoding
# ----------------------------------------------------------------------------------------------

def to_grayscale_uint8(images: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (..., 1) uint8 luma, with PIL's convert('L') integer formula
    (ITU-R 601-2: (19595 R + 38470 G + 7471 B + 2^15) >> 16), so a folder read with PIL and an
    array converted here agree exactly."""
    rgb = images.astype(np.uint32)
    luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.uint8)[..., None]


def set_channels(images: np.ndarray, channels: int, name: str) -> np.ndarray:
    """`data.channels`: 0 keeps the stored channels; 1 converts RGB to grey; 3 repeats grey to RGB."""
    have = images.shape[-1]
    if channels == 0 or channels == have:
        return images
    if channels == 1 and have == 3:
        return to_grayscale_uint8(images)
    if channels == 3 and have == 1:
        return np.repeat(images, 3, axis=-1)
    raise DataError(f"data set {name!r} has {have}-channel images; data.channels={channels} cannot be made "
                    "from them (use 0 to keep them, 1 for grey, 3 for RGB).")


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's


def _pil():
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - pillow is a test and data dependency
        raise DataError("reading image files needs Pillow: pip install 'jaxclust[data]'.") from error
    return Image


def decode_resize(source, size: int, gray: bool) -> np.ndarray:
    """One image file (path or bytes) -> (size, size, 1 or 3) uint8.

    As the official test transform `image.resize((img_size, img_size))`: PIL's bicubic resize of the
    whole image to a square (aspect ratio not kept); grey with convert('L'), else convert('RGB').
    """
    Image = _pil()
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        im = im.convert("L" if gray else "RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BICUBIC)
        array = np.asarray(im, dtype=np.uint8)
    return array[..., None] if gray else array


def _is_gray_file(path) -> bool:
    """Whether an image file is grey; an unreadable one does not vote (decoding reports it)."""
    try:
        with _pil().open(path) as im:
            return im.mode in ("1", "L", "LA", "I", "I;16", "F")
    except OSError:  # PIL's UnidentifiedImageError included
        return True


def decode_all(sources, size: int, gray: bool, name: str, skip_unreadable: bool = False):
    """Decodes and resizes many images on a thread pool (PIL releases the GIL) into one array.

    An unreadable image is a DataError naming it; with `skip_unreadable` it is left out instead and
    counted. Returns (images, kept), `kept` the (N,) bool mask of the sources that were read.
    """
    out = np.empty((len(sources), size, size, 1 if gray else 3), np.uint8)
    kept = np.ones(len(sources), bool)
    step = max(1, len(sources) // 10)

    def work(i):
        try:
            out[i] = decode_resize(sources[i], size, gray)
        except Exception as error:  # noqa: BLE001 - any unreadable file is the user's data error
            if skip_unreadable:
                kept[i] = False
                return
            where = sources[i] if not isinstance(sources[i], bytes) else f"image #{i}"
            raise DataError(
                f"data set {name!r}: cannot read {where} ({error}); fix or remove it, or set "
                "data.skip_unreadable=True to leave such files out."
            ) from error
        if len(sources) >= 20000 and (i + 1) % step == 0:
            print(f"{name}: decoded {i + 1}/{len(sources)} images", flush=True)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(work, range(len(sources))))
    if not kept.all():
        print(f"{name}: skipped {int((~kept).sum())} unreadable image(s) of {len(sources)}", flush=True)
        if not kept.any():
            raise DataError(f"data set {name!r}: none of its {len(sources)} images could be read.")
    return out[kept], kept


# ----------------------------------------------------------------------------------------------
# folder: ImageFolder-style directories
# ----------------------------------------------------------------------------------------------

def _image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in `folder` (with `recursive`, in its sub-folders too, as ImageFolder walks a class
    folder: Tiny-ImageNet keeps them in <class>/images/), sorted by path."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(f for f in found if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)


def _folder_roots(data_cfg) -> list[Path]:
    root = Path(data_cfg.path)
    how = ("make a directory with one sub-folder of images per class (or a flat folder of images, "
           "unlabelled) and pass --config.data.path=DIR")
    if not data_cfg.path or not root.is_dir():
        raise DataError(f"folder data set {data_cfg.name!r} not found at {str(root)!r}: {how}.")
    split = data_cfg.get("split", "")
    if not split:
        return [root]
    roots = [root / part for part in split.split("+")]
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        raise DataError(f"folder data set {data_cfg.name!r}: data.split={split!r} needs the sub-folder(s) "
                        f"{', '.join(map(repr, missing))}; create them or set --config.data.split='' to read "
                        f"{str(root)!r} itself.")
    return roots


def folder_index(data_cfg):
    """(files, labels (N,) int32 or None, class names, grey?) of a folder source, without reading pixels.

    Sub-folders are classes in sorted order (torchvision ImageFolder); a folder with image files and no
    class sub-folders is one unlabelled set. Grey: `data.channels` 1, or 0 and the images are grey.
    """
    roots = _folder_roots(data_cfg)
    class_dirs = [sorted(d.name for d in r.iterdir() if d.is_dir() and _image_files(d, True)) for r in roots]
    labelled = any(class_dirs)
    if labelled:
        names = tuple(sorted(set().union(*class_dirs)))
        index = {n: i for i, n in enumerate(names)}
        files, labels = [], []
        for r in roots:
            for n in names:
                if (r / n).is_dir():
                    found = _image_files(r / n, recursive=True)
                    files += found
                    labels += [index[n]] * len(found)
        labels = np.asarray(labels, np.int32)
    else:
        names, files = (), [f for r in roots for f in _image_files(r)]
        labels = None
    if not files:
        raise DataError(f"folder data set {data_cfg.name!r} at {', '.join(str(r) for r in roots)} has no images "
                        f"with one of the extensions {', '.join(IMAGE_EXTENSIONS)}.")
    channels = data_cfg.get("channels", 0)
    return [str(f) for f in files], labels, names, is_grey_set(files, channels)


def is_grey_set(files, channels: int) -> bool:
    """Whether `files` are read as grey: `data.channels` 1, or 0 (as stored) and a sample of them is grey."""
    return channels == 1 or (channels == 0 and all(_is_gray_file(f) for f in files[:: max(1, len(files) // 64)]))


def load_folder(data_cfg) -> ImageBank:
    """An ImageFolder-style directory at `data.path` (or its `data.split` sub-folders, '+'-joined), see
    `folder_index`. Every image is resized to `data.load_size` (default `data.image_size`) on load with
    PIL bicubic, as the official test transform does."""
    files, labels, names, gray = folder_index(data_cfg)
    size = data_cfg.get("load_size", 0) or data_cfg.image_size
    images, kept = decode_all(files, size, gray, data_cfg.name, data_cfg.skip_unreadable)
    labels = labels[kept] if labels is not None else None
    return ImageBank(images=images, labels=labels, class_names=names, name=data_cfg.name,
                     file_names=tuple(files[i] for i in np.flatnonzero(kept)))


# ----------------------------------------------------------------------------------------------
# tfds: CIFAR-10/20/100, STL-10, ImageNet-2012 and the SCAN subsets; MNIST, Fashion-MNIST, KMNIST
# ----------------------------------------------------------------------------------------------

def import_tfds():
    """TensorFlow (its GPUs hidden: it only feeds the host side) and tensorflow_datasets."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TF only decodes and crops images here; its oneDNN kernels (for its own convolutions and matrix
    # products) would announce themselves on stderr at every start, around our one-sentence errors
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        import tensorflow as tf
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise DataError("the tfds data sources need TensorFlow and tensorflow-datasets: "
                        "pip install 'jaxclust[data]'.") from error
    tf.config.set_visible_devices([], "GPU")
    return tf, tfds


def tfds_data_dir(data_cfg) -> str:
    """`data.path`, else $TFDS_DATA_DIR, else ~/tensorflow_datasets (tfds' own default)."""
    return data_cfg.path or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


#: tfds name, pretty name, and the default split (the paper's: Table 1 / Sec. 5.1.1 / Sec. 5.7).
TFDS_SOURCES = {
    "cifar10": ("cifar10", "CIFAR-10", "train+test"),
    "cifar20": ("cifar100", "CIFAR-20", "train+test"),
    "cifar100": ("cifar100", "CIFAR-100", "train+test"),
    "stl10": ("stl10", "STL-10", "train+test"),
    "imagenet2012": ("imagenet2012", "ImageNet-2012", "train"),
    "imagenet50": ("imagenet2012", "ImageNet-50 (SCAN subset)", "train"),
    "imagenet100": ("imagenet2012", "ImageNet-100 (SCAN subset)", "train"),
    "imagenet200": ("imagenet2012", "ImageNet-200 (SCAN subset)", "train"),
    # 28x28 grey, 60,000 train + 10,000 test: the literature clusters all 70,000
    "mnist": ("mnist", "MNIST", "train+test"),
    "fashion_mnist": ("fashion_mnist", "Fashion-MNIST", "train+test"),
    "kmnist": ("kmnist", "KMNIST", "train+test"),
    # 26 letters (upper and lower case merged), 88,800 train + 14,800 test
    "emnist_letters": ("emnist/letters", "EMNIST Letters", "train+test"),
}
IMAGENET_TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")


def tfds_split(data_cfg) -> str:
    return data_cfg.get("split", "") or TFDS_SOURCES[data_cfg.name][2]


def tfds_dataset(data_cfg, split: str, skip_decoding: bool = False):
    """The tf.data.Dataset of a tfds source's `split`, in the stored (deterministic) order.

    If the data set is not prepared in the data directory: with `data.download` tfds downloads and
    prepares it (ImageNet only from the manual-download directory); otherwise, or when that fails,
    a DataError says where it was looked for and how to provide it.
    """
    tf, tfds = import_tfds()
    tfds_name, pretty, _ = TFDS_SOURCES[data_cfg.name]
    data_dir = tfds_data_dir(data_cfg)
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    decoders = {"image": tfds.decode.SkipDecoding()} if skip_decoding else None

    def read():
        return builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)

    try:
        return read()
    except AssertionError:  # tfds: "could not find data in DIR" (not prepared)
        pass
    if tfds_name == "imagenet2012":
        manual = Path(data_cfg.get("manual_dir", "") or Path(data_dir) / "downloads" / "manual")
        missing = [t for t in IMAGENET_TARS if not (manual / t).is_file()]
        if missing:
            raise DataError(
                f"{pretty} is not prepared in {data_dir!r} (tfds 'imagenet2012') and {', '.join(missing)} "
                f"is not in {str(manual)!r}: download the ILSVRC2012 train and validation tars from "
                "image-net.org into that folder (or set --config.data.manual_dir), or point "
                "--config.data.path at a tensorflow_datasets folder where imagenet2012 is prepared.")
        config = tfds.download.DownloadConfig(manual_dir=str(manual))
    elif not data_cfg.get("download", True):
        raise DataError(
            f"{pretty} (tfds {tfds_name!r}) is not prepared in {data_dir!r} and is not downloaded "
            "(data.download=False; a --dry_run never downloads): run once with --config.data.download=True "
            f"(needs internet), or point --config.data.path at a tensorflow_datasets folder that holds {tfds_name}.")
    else:
        config = None
    try:
        builder.download_and_prepare(download_config=config)
    except Exception as error:  # noqa: BLE001 - network, disk or archive errors all end the same way
        raise DataError(
            f"{pretty} (tfds {tfds_name!r}) is not prepared in {data_dir!r} and preparing it failed "
            f"({type(error).__name__}: {str(error)[:200]}): check the network or disk, or point "
            f"--config.data.path at a tensorflow_datasets folder that holds {tfds_name}.") from error
    return read()


def _class_names(feature, count: int) -> tuple[str, ...]:
    names = getattr(feature, "names", None)
    return tuple(names) if names else tuple(str(i) for i in range(count))


def _read_fixed_size(ds, label_key: str | None, batch: int = 1024):
    """Images and labels of a fixed-image-size tfds dataset, read in batches."""
    _, tfds = import_tfds()
    images, labels = [], []
    for ex in tfds.as_numpy(ds.batch(batch)):
        images.append(ex["image"])
        if label_key:
            labels.append(ex[label_key])
    images = np.concatenate(images) if images else np.zeros((0, 1, 1, 3), np.uint8)
    return images, (np.concatenate(labels).astype(np.int32) if label_key and labels else None)


def _maybe_resize(images: np.ndarray, data_cfg, name: str) -> np.ndarray:
    """Fixed-size sets are kept at their native size unless `data.load_size` asks for another."""
    size = data_cfg.get("load_size", 0)
    if not size or images.shape[1:3] == (size, size):
        return images
    Image = _pil()
    gray = images.shape[-1] == 1
    out = [np.asarray(Image.fromarray(im[..., 0] if gray else im).resize((size, size), Image.Resampling.BICUBIC))
           for im in images]
    out = np.stack(out)
    return out[..., None] if gray else out


def load_cifar(data_cfg) -> ImageBank:
    """CIFAR-10, CIFAR-20 (CIFAR-100's 20 coarse super-classes, equal to the official `super_classes`
    table) or CIFAR-100; `data.split` 'train+test' (default, the paper's 60,000), 'train' or 'test'."""
    tfds_name, pretty, _ = TFDS_SOURCES[data_cfg.name]
    label_key = "coarse_label" if data_cfg.name == "cifar20" else "label"
    split = tfds_split(data_cfg)
    ds = tfds_dataset(data_cfg, split)
    _, tfds = import_tfds()
    images, labels = _read_fixed_size(ds, label_key)
    feature = tfds.builder(tfds_name, data_dir=tfds_data_dir(data_cfg)).info.features[label_key]
    names = _class_names(feature, int(feature.num_classes))
    return ImageBank(images=_maybe_resize(images, data_cfg, pretty), labels=labels, class_names=names,
                     name=data_cfg.name)


def load_stl10(data_cfg) -> ImageBank:
    """STL-10's 13,000 labelled images ('train+test', the paper's Table 1); with `data.unlabelled` the
    100,000 unlabelled images follow them with label -1: trained on and clustered, left out of the
    metrics (as the official evaluate_clustering drops label -1)."""
    split = tfds_split(data_cfg)
    images, labels = _read_fixed_size(tfds_dataset(data_cfg, split), "label")
    if data_cfg.get("unlabelled", False):
        extra, _ = _read_fixed_size(tfds_dataset(data_cfg, "unlabelled"), None)
        images = np.concatenate([images, extra])
        labels = np.concatenate([labels, np.full((len(extra),), -1, np.int32)])
    _, tfds = import_tfds()
    names = _class_names(tfds.builder("stl10", data_dir=tfds_data_dir(data_cfg)).info.features["label"], 10)
    return ImageBank(images=_maybe_resize(images, data_cfg, "STL-10"), labels=labels, class_names=names,
                     name=data_cfg.name)


def load_mnist(data_cfg) -> ImageBank:
    """MNIST, Fashion-MNIST or KMNIST: 28x28x1 uint8 images, labels 0..9 and the class names of the tfds
    feature; `data.split` 'train+test' (default, the 70,000 images the clustering literature uses),
    'train' (60,000) or 'test' (10,000). The same files in their MNIST format: data.source 'idx'."""
    tfds_name, pretty, _ = TFDS_SOURCES[data_cfg.name]
    images, labels = _read_fixed_size(tfds_dataset(data_cfg, tfds_split(data_cfg)), "label")
    _, tfds = import_tfds()
    names = _class_names(tfds.builder(tfds_name, data_dir=tfds_data_dir(data_cfg)).info.features["label"], 10)
    return ImageBank(images=_maybe_resize(images, data_cfg, pretty), labels=labels, class_names=names,
                     name=data_cfg.name)


EMNIST_LETTERS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def load_emnist_letters(data_cfg) -> ImageBank:
    """EMNIST Letters: 28x28x1 uint8 images of 26 classes (upper and lower case merged), 'train+test'
    (default, 103,600), 'train' (88,800) or 'test' (14,800). EMNIST as stored (and as tfds gives it) is
    transposed and labels letters 1..26 (tfds declares 37 classes): the images are transposed back
    upright and the labels mapped to 0..25 for A..Z."""
    images, labels = _read_fixed_size(tfds_dataset(data_cfg, tfds_split(data_cfg)), "label")
    bad = (labels < 1) | (labels > len(EMNIST_LETTERS))
    if bad.any():
        raise DataError(f"EMNIST Letters: {int(bad.sum())} label(s) outside 1..26 (the first: {int(labels[bad][0])}); "
                        "the tfds data set 'emnist/letters' looks damaged or is another EMNIST split.")
    images = np.ascontiguousarray(images.transpose(0, 2, 1, 3))
    return ImageBank(images=_maybe_resize(images, data_cfg, "EMNIST Letters"), labels=labels - 1,
                     class_names=EMNIST_LETTERS, name=data_cfg.name)


SUBSET_DIR = Path(__file__).with_name("subsets")


def subset_classes(name: str) -> tuple[str, ...]:
    """WordNet ids of a class list kept in jaxclust/data/subsets/NAME.txt (e.g. the SCAN imagenet50)."""
    file = SUBSET_DIR / f"{name}.txt"
    lines = (line.strip() for line in file.read_text().splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def imagenet_label_map(data_cfg, all_names) -> tuple[np.ndarray, tuple[str, ...]]:
    """(1000,) map from imagenet2012 label to the source's label (-1: not in the subset), names."""
    if data_cfg.name == "imagenet2012":
        return np.arange(len(all_names), dtype=np.int32), tuple(all_names)
    wnids = subset_classes(data_cfg.name)
    position = {w: i for i, w in enumerate(all_names)}
    mapping = np.full((len(all_names),), -1, np.int32)
    for new, w in enumerate(wnids):  # sorted WordNet ids: the ImageFolder order SCAN uses
        mapping[position[w]] = new
    return mapping, wnids


def load_imagenet(data_cfg) -> ImageBank:
    """ImageNet-2012 from tfds (manual download), all 1000 classes or a SCAN subset, as an in-memory
    bank resized to `data.load_size` (default `data.image_size`). ImageNet-50 at 224 px is ~10 GB;
    for the full ImageNet use `data.streaming` (jaxclust.data.streaming) instead."""
    tf, tfds = import_tfds()
    split = tfds_split(data_cfg)
    ds = tfds_dataset(data_cfg, split, skip_decoding=True)
    all_names = tfds.builder("imagenet2012", data_dir=tfds_data_dir(data_cfg)).info.features["label"].names
    mapping, names = imagenet_label_map(data_cfg, all_names)
    if data_cfg.name != "imagenet2012":
        table = tf.constant(mapping)
        ds = ds.filter(lambda ex: tf.gather(table, ex["label"]) >= 0)
    blobs, labels = [], []
    for ex in tfds.as_numpy(ds):
        blobs.append(ex["image"])
        labels.append(mapping[ex["label"]])
    if not blobs:
        raise DataError(f"{data_cfg.name}: the {split!r} split of imagenet2012 in {tfds_data_dir(data_cfg)!r} "
                        "has no image of the subset's classes; check that the data set is complete.")
    size = data_cfg.get("load_size", 0) or data_cfg.image_size
    gray = data_cfg.get("channels", 0) == 1
    images, _ = decode_all(blobs, size, gray, data_cfg.name)  # tfds records: unreadable is a real fault
    return ImageBank(images=images, labels=np.asarray(labels, np.int32), class_names=names,
                     name=data_cfg.name)


# ----------------------------------------------------------------------------------------------
# Long-tailed subsets (ProPos Table 9)
# ----------------------------------------------------------------------------------------------

def long_tail_counts(num_max: int, num_classes: int, ratio: float) -> list[int]:
    """Images kept per class: int(num_max * ratio ** (k / (K - 1))) for class k = 0..K-1, an
    exponential profile from num_max (class 0) down to num_max * ratio (the LDAM/BBN/Tang et al. recipe
    ProPos Sec. 5.8 builds CIFAR-10/20-LT with)."""
    return [int(num_max * ratio ** (k / (num_classes - 1.0))) for k in range(num_classes)]


def long_tail(bank: ImageBank, ratio: float, seed: int = 0) -> ImageBank:
    """The long-tailed subset of a labelled bank: class k keeps `long_tail_counts(...)[k]` images drawn
    at random (numpy RandomState(seed), each class's indices shuffled in turn, class order 0..K-1, as the
    reference recipe with its fixed seed 0); num_max is the largest class. Order of the result: by class."""
    if bank.labels is None:
        raise DataError(f"data set {bank.name!r} has no labels: data.imbalance_ratio needs them to build a "
                        "long-tailed subset.")
    labelled = bank.labels[bank.labels >= 0]
    num_classes = int(labelled.max()) + 1
    counts = long_tail_counts(int(np.bincount(labelled).max()), num_classes, ratio)
    rng = np.random.RandomState(seed)
    keep = []
    for k, count in enumerate(counts):
        idx = np.flatnonzero(bank.labels == k)
        rng.shuffle(idx)
        keep.append(idx[:count])
    keep = np.concatenate(keep)
    return ImageBank(images=bank.images[keep], labels=bank.labels[keep], class_names=bank.class_names,
                     name=f"{bank.name}-lt{ratio:g}")


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------

TFDS_LOADERS = {"cifar10": load_cifar, "cifar20": load_cifar, "cifar100": load_cifar, "stl10": load_stl10,
                "imagenet2012": load_imagenet, "imagenet50": load_imagenet, "imagenet100": load_imagenet,
                "imagenet200": load_imagenet, "mnist": load_mnist, "fashion_mnist": load_mnist,
                "kmnist": load_mnist, "emnist_letters": load_emnist_letters}


def load_tfds(data_cfg) -> ImageBank:
    """The tfds data set named by `data.name` (one of TFDS_SOURCES)."""
    if data_cfg.name not in TFDS_LOADERS:
        raise DataError(f"data.source 'tfds' has no data set {data_cfg.name!r}; set data.name to one of: "
                        f"{', '.join(TFDS_LOADERS)}.")
    return TFDS_LOADERS[data_cfg.name](data_cfg)


def _load_idx(data_cfg) -> ImageBank:
    bank = idx.load_idx(data_cfg)
    return dataclasses.replace(bank, images=_maybe_resize(bank.images, data_cfg, bank.name))


SOURCES = {
    "digits": lambda cfg: load_digits(),
    "npz": lambda cfg: load_npz(cfg.path),
    "folder": load_folder,
    "idx": _load_idx,
    "tfds": load_tfds,
}


def load_source(data_cfg) -> ImageBank:
    """The ImageBank named by `data.source` (and `data.path` where the source needs one), with
    `data.channels` and `data.imbalance_ratio` applied."""
    if data_cfg.source not in SOURCES:
        raise DataError(
            f"unknown data.source {data_cfg.source!r}; choose one of: {', '.join(sorted(SOURCES))}."
        )
    bank = SOURCES[data_cfg.source](data_cfg)
    channels = data_cfg.get("channels", 0)
    if channels and bank.num_channels != channels:
        bank = dataclasses.replace(bank, images=set_channels(bank.images, channels, bank.name))
    ratio = data_cfg.get("imbalance_ratio", 1.0)
    if ratio < 1.0:
        bank = long_tail(bank, ratio)
    return bank
