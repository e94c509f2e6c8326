"""The in-memory data set every source returns, and the error a missing or malformed one raises."""
from __future__ import annotations

import dataclasses

import numpy as np


class DataError(ValueError):
    """A data set is missing or malformed; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class ImageBank:
    images: np.ndarray  # (N, H, W, C) uint8
    labels: np.ndarray | None  # (N,) int32 ground truth, or None for unlabelled data
    class_names: tuple[str, ...]
    name: str
    file_names: tuple[str, ...] = ()  # the image files, in order, of a folder source; () otherwise

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
        if self.file_names and len(self.file_names) != len(self.images):
            raise DataError(f"data set {self.name!r}: {len(self.file_names)} file names for {len(self.images)} images.")

    @property
    def num_examples(self) -> int:
        return len(self.images)

    @property
    def num_channels(self) -> int:
        return self.images.shape[-1]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])
