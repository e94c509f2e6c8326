"""Image sources. Each returns an `ImageBank`: the whole data set as uint8 images in memory.

The bank is put on the device(s) once by the training loop; batches are gathered from it by index.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A data set is missing or malformed; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class ImageBank:
    images: np.ndarray  # (N, H, W, C) uint8
    labels: np.ndarray | None  # (N,) int32 ground truth, or None for unlabelled data
    class_names: tuple[str, ...]
    name: str

    def __post_init__(self):
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise DataError(
                f"data set {self.name!r}: images must be uint8 of shape (N, H, W, C), "
                f"got {self.images.dtype} {self.images.shape}."
            )
        if len(self.images) == 0:
            raise DataError(f"data set {self.name!r} has no images.")
        if self.labels is not None and self.labels.shape != (len(self.images),):
            raise DataError(
                f"data set {self.name!r}: labels must have shape ({len(self.images)},), "
                f"got {self.labels.shape}."
            )

    @property
    def num_examples(self) -> int:
        return len(self.images)

    @property
    def num_channels(self) -> int:
        return self.images.shape[-1]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])


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


SOURCES = {"digits": lambda cfg: load_digits(), "npz": lambda cfg: load_npz(cfg.path)}


def load_source(data_cfg) -> ImageBank:
    """The ImageBank named by `data.source` (and `data.path` where the source needs one)."""
    if data_cfg.source not in SOURCES:
        raise DataError(
            f"unknown data.source {data_cfg.source!r}; choose one of: {', '.join(sorted(SOURCES))}."
        )
    return SOURCES[data_cfg.source](data_cfg)
