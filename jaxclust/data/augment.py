"""On-device, jittable image augmentation with torchvision semantics: its config, the random draws of
its parameters, and the training and test-time pipelines.

Every op works on ONE float32 image of shape ``(H, W, C)`` with values in ``[0, 1]`` and ``C`` in
``{1, 3}``; batches are handled by ``jax.vmap`` with one PRNG key per image (see :func:`augment_batch`).
The training pipeline reproduces the ProPos/SimCLR torchvision recipe::

    RandomResizedCrop -> (RandomAffine) -> RandomHorizontalFlip -> RandomApply(ColorJitter, p)
    -> RandomGrayscale(p) -> RandomApply(GaussianBlur, p) -> RandomApply(Solarize, p)
    -> (RandAugment) -> Normalize -> (Cutout)

The last two are SCAN's strong augmentation (``randaugment_ops`` ops, ``Cutout`` of side up to
``cutout_length``, in SCAN's order), implemented with PIL semantics in
:mod:`jaxclust.data.randaugment`; RandAugment works on the image rounded to 8 bits, as PIL does.
The other ops, with explicit parameters and their torchvision semantics, are in
:mod:`jaxclust.data.geometric` (flip, resize, resized crop, affine) and
:mod:`jaxclust.data.photometric` (ColorJitter, grayscale, Gaussian blur, solarize). Their random
parameters are drawn here as torchvision draws them:

* RandomResizedCrop: area fraction uniform in ``crop_scale``, aspect ratio log-uniform in
  ``crop_ratio``, 10 tries (vectorised) and torchvision's centre-crop fallback.
* ColorJitter: factors uniform as torchvision's ``get_params``, the four ops applied in a fresh random
  order for every image.

Two views: ``view_configs`` gives the config of each view; with ``augment.asymmetric`` (the official
``byol_transform``) view 2 has its own blur and solarize probabilities, and its own RandAugment and
Cutout (SCAN's strong view; off, 0, by default). Test-time transform: the
stored image resized to the network size (PIL bicubic), or with ``test_resized_crop`` torchvision's
``Resize(test_resize) + CenterCrop(test_crop)`` first (official ImageNet-Dogs config).

Config errors: a bad value of the ``augment`` section raises :class:`jaxclust.config.ConfigError`
naming its key; :func:`validate` runs every such check on a whole config, before any data is read.

Random branches are written as ``jnp.where(u < p, f(x), x)``: under ``vmap`` a ``lax.cond`` would
become a select anyway, so every enabled op is computed for every image. Ops whose probability or
strength is 0 in the (static) config are removed at trace time. RandAugment and Cutout draw from
``fold_in(key, 1)``, so turning them on leaves every other draw of an image unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxclust.config import ConfigError
from jaxclust.data import randaugment
from jaxclust.data.geometric import affine_transform, horizontal_flip, resize, resize_center_crop, resized_crop
from jaxclust.data.photometric import color_jitter, gaussian_blur, solarize, to_grayscale

__all__ = [
    "AugmentConfig",
    "CONFIG_KEYS",
    "default_config",
    "view_configs",
    "validate",
    "to_float",
    "normalize",
    "sample_jitter_params",
    "sample_crop_params",
    "sample_affine_params",
    "augment_image",
    "augment_batch",
    "eval_image",
    "eval_batch",
    "example_keys",
]

#: Keys that ``AugmentConfig.from_config`` reads; all of them must be present.
CONFIG_KEYS = (
    "crop", "crop_scale", "crop_ratio",
    "affine", "affine_rotation", "affine_shift", "affine_scale",
    "flip_prob",
    "jitter_prob", "brightness", "contrast", "saturation", "hue",
    "grayscale_prob",
    "blur_prob", "blur_kernel", "blur_sigma",
    "solarize_prob", "solarize_threshold",
    "mean", "std",
    "test_resized_crop", "test_resize", "test_crop",
)
#: Keys of ``augment.view2`` that ``view_configs`` needs with ``augment.asymmetric`` (it also reads
#: ``randaugment_ops``, ``cutout_length`` and ``flip_prob`` when present).
_VIEW2_KEYS = ("blur_prob", "solarize_prob")


# ----------------------------------------------------------------------------------------------
# Config checks: every bad value raises ConfigError naming its key (`name` is the key under augment.)
# ----------------------------------------------------------------------------------------------

def _number(value: Any, name: str, kind=float):
    """``kind(value)``; a ConfigError naming the key when the value is not a number."""
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"augment.{name} must be a number, got {value!r}; set it to one.") from None


def _pair(value: Any, name: str) -> tuple[float, float]:
    try:
        vals = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        vals = ()
    if len(vals) != 2:
        raise ConfigError(f"augment.{name} must be two numbers (low, high), got {value!r}; "
                          f"give it as --config.augment.{name}='(low, high)'.")
    if vals[0] > vals[1]:
        raise ConfigError(f"augment.{name} must be (low, high) with low <= high, got {value!r}; "
                          "swap the two values.")
    return vals  # type: ignore[return-value]


def _prob(value: Any, name: str) -> float:
    p = _number(value, name)
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"augment.{name} must be a probability in [0, 1], got {value!r}; 0 turns it off.")
    return p


def _nonneg(value: Any, name: str) -> float:
    v = _number(value, name)
    if v < 0:
        raise ConfigError(f"augment.{name} must be >= 0, got {value!r}; 0 turns it off.")
    return v


def _count(value: Any, name: str) -> int:
    """A non-negative integer (0 = off); bools are refused."""
    if isinstance(value, bool) or _number(value, name, int) != value or value < 0:
        raise ConfigError(f"augment.{name} must be a non-negative integer (0 = off), got {value!r}.")
    return int(value)


def _per_channel(value: Any, name: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in np.atleast_1d(value))
    except (TypeError, ValueError):
        raise ConfigError(f"augment.{name} must be numbers, one per channel (or one for all), "
                          f"got {value!r}.") from None


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Static (hashable) augmentation settings; pass it as a static argument to ``jax.jit``.

    Defaults are the ProPos CIFAR-10 training transform (blur and solarize off).

    Attributes:
      crop: apply RandomResizedCrop. If False the image is only resized (bilinear, anti-aliased) to
        ``out_size`` when its size differs.
      crop_scale: (min, max) fraction of the image area kept by the crop (torchvision ``scale``).
      crop_ratio: (min, max) aspect ratio w/h of the crop, sampled log-uniformly (torchvision ``ratio``).
      affine: apply a small random affine transform (for tiny images such as 8x8 digits), after the
        crop/resize: rotation, translation and isotropic scale about the image centre, bilinear
        sampling, zeros outside the image.
      affine_rotation: maximum rotation in degrees; the angle is uniform in [-r, r].
      affine_shift: maximum translation in pixels; uniform in [-s, s] independently per axis
        (continuous, torchvision's RandomAffine rounds it to whole pixels).
      affine_scale: (min, max) of the uniform isotropic scale factor.
      flip_prob: probability of a horizontal flip.
      jitter_prob: probability of applying ColorJitter.
      brightness: ColorJitter brightness b, factor uniform in [max(0, 1-b), 1+b] (multiplicative).
      contrast: ColorJitter contrast c, factor uniform in [max(0, 1-c), 1+c].
      saturation: ColorJitter saturation s, factor uniform in [max(0, 1-s), 1+s].
      hue: ColorJitter hue h in [0, 0.5], shift uniform in [-h, h] (fraction of the hue circle).
      grayscale_prob: probability of converting to grayscale (C channels are kept).
      blur_prob: probability of Gaussian blur (0 disables it at trace time).
      blur_kernel: odd blur kernel size in pixels (torchvision ``kernel_size``).
      blur_sigma: (min, max) of the uniform blur sigma in pixels.
      solarize_prob: probability of solarization (0 disables it).
      solarize_threshold: pixels >= threshold are inverted; in [0, 1] units (PIL's 128 ~ 0.502).
      mean: per-channel normalisation mean (one value per channel, or one value for all).
      std: per-channel normalisation std.
      test_resized_crop: test-time ``Resize(test_resize)`` (shorter side, bilinear) and
        ``CenterCrop(test_crop)`` before the resize to the network size (official ``test_resized_crop``).
      test_resize: shorter side after the test-time resize.
      test_crop: side of the test-time centre crop.
      randaugment_ops: SCAN's RandAugment (``Augment(n)``): this many ops drawn with replacement from
        its 14, each with a uniform magnitude, applied after every op above on the image rounded to
        8 bits (:mod:`jaxclust.data.randaugment`). 0 = off.
      cutout_length: SCAN's Cutout after normalisation: a square of side ``2 (L // 2)``, ``L`` uniform
        in 1..cutout_length, centred on a uniform pixel, clipped at the borders, set to 0 in the
        normalised image (``augment_image`` fills it with ``mean``). 0 = off.

    The last two are not in :data:`CONFIG_KEYS`: ``view_configs`` sets them for view 2 from
    ``augment.view2`` (SCAN's strong view).
    """

    crop: bool = True
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    affine: bool = False
    affine_rotation: float = 15.0
    affine_shift: float = 1.0
    affine_scale: tuple[float, float] = (0.9, 1.1)
    flip_prob: float = 0.5
    jitter_prob: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_prob: float = 0.2
    blur_prob: float = 0.0
    blur_kernel: int = 23
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_prob: float = 0.0
    solarize_threshold: float = 0.5
    mean: tuple[float, ...] = (0.4914, 0.4822, 0.4465)
    std: tuple[float, ...] = (0.2023, 0.1994, 0.2010)
    test_resized_crop: bool = False
    test_resize: int = 256
    test_crop: int = 224
    randaugment_ops: int = 0
    cutout_length: int = 0

    def __post_init__(self):
        # Normalise types so that equal configs hash equally (lists -> tuples, ints -> floats); a bad
        # value raises ConfigError naming its key.
        s = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        s("crop", bool(self.crop))
        s("affine", bool(self.affine))
        s("test_resized_crop", bool(self.test_resized_crop))
        for k in ("test_resize", "test_crop"):
            value = getattr(self, k)
            v = _number(value, k, int)
            if v != value or v <= 0:
                raise ConfigError(f"augment.{k} must be a positive integer (pixels), got {value!r}.")
            s(k, v)
        if self.test_crop > self.test_resize:
            raise ConfigError(f"augment.test_crop ({self.test_crop}) must be <= augment.test_resize "
                              f"({self.test_resize}); lower augment.test_crop or raise augment.test_resize.")
        for k in ("crop_scale", "crop_ratio", "affine_scale", "blur_sigma"):
            s(k, _pair(getattr(self, k), k))
        for k in ("flip_prob", "jitter_prob", "grayscale_prob", "blur_prob", "solarize_prob"):
            s(k, _prob(getattr(self, k), k))
        for k in ("affine_rotation", "affine_shift", "brightness", "contrast", "saturation", "hue"):
            s(k, _nonneg(getattr(self, k), k))
        s("solarize_threshold", _number(self.solarize_threshold, "solarize_threshold"))
        if not 0.0 <= self.solarize_threshold <= 1.0:
            raise ConfigError(f"augment.solarize_threshold must lie in [0, 1] (pixel values in [0, 1] units; PIL's "
                              f"128 is 128/255), got {self.solarize_threshold!r}.")
        if self.hue > 0.5:
            raise ConfigError(f"augment.hue must be in [0, 0.5] (a fraction of the hue circle), got {self.hue}; "
                              "lower it.")
        for k in ("crop_scale", "crop_ratio", "affine_scale"):
            if getattr(self, k)[0] <= 0:
                raise ConfigError(f"augment.{k} must be positive, got {getattr(self, k)}; raise its low value "
                                  "above 0.")
        if self.crop_scale[1] > 1.0:
            raise ConfigError(f"augment.crop_scale must lie in (0, 1] (fractions of the image area), got "
                              f"{self.crop_scale}.")
        k = _number(self.blur_kernel, "blur_kernel", int)
        if k != self.blur_kernel or k <= 0 or k % 2 == 0:
            raise ConfigError(f"augment.blur_kernel must be a positive odd integer (pixels), got "
                              f"{self.blur_kernel!r}; e.g. 23 (official), or 3 for tiny images.")
        s("blur_kernel", k)
        for key in ("randaugment_ops", "cutout_length"):
            s(key, _count(getattr(self, key), key))
        if self.blur_sigma[0] <= 0:
            raise ConfigError(f"augment.blur_sigma must be positive, got {self.blur_sigma}; raise its low value "
                              "above 0.")
        mean = _per_channel(self.mean, "mean")
        std = _per_channel(self.std, "std")
        if len(mean) != len(std) or not mean:
            raise ConfigError(f"augment.mean and augment.std must have the same number of values (one per "
                              f"channel, or one for all), got {mean}, {std}.")
        if min(std) <= 0:
            raise ConfigError(f"augment.std must be positive, got {std}.")
        s("mean", mean)
        s("std", std)

    @classmethod
    def from_config(cls, cfg: Any) -> "AugmentConfig":
        """Builds the config from an ``ml_collections.ConfigDict`` (or any mapping) holding all
        :data:`CONFIG_KEYS`. Missing keys raise ``KeyError`` (:func:`validate`: ``ConfigError``), a
        bad value ``ConfigError``; unknown keys are ignored."""
        missing = [k for k in CONFIG_KEYS if k not in cfg]
        if missing:
            raise KeyError(f"augment config is missing keys: {missing}")
        return cls(**{k: cfg[k] for k in CONFIG_KEYS})

    @property
    def jitter_enabled(self) -> bool:
        return self.jitter_prob > 0 and (
            self.brightness > 0 or self.contrast > 0 or self.saturation > 0 or self.hue > 0)


def default_config():
    """An ``ml_collections.ConfigDict`` with every key of :data:`CONFIG_KEYS`, set to the ProPos
    CIFAR-10 training transform (crop + flip + jitter 0.8 + grayscale 0.2, no blur/solarize)."""
    import ml_collections

    d = dataclasses.asdict(AugmentConfig())
    return ml_collections.ConfigDict({k: d[k] for k in CONFIG_KEYS})


def view_configs(cfg: Any) -> tuple[AugmentConfig, AugmentConfig]:
    """The configs of view 1 and view 2 from an ``augment`` config section.

    Both views share every key, unless ``cfg.asymmetric`` is true: then view 2 takes
    ``cfg.view2.blur_prob`` and ``cfg.view2.solarize_prob`` (the official ``byol_transform``: view 1
    blur 1.0 / solarize 0.0, view 2 blur 0.1 / solarize 0.2, both ColorJitter(0.4, 0.4, 0.2, 0.1)),
    and ``cfg.view2.randaugment_ops`` and ``cfg.view2.cutout_length`` (SCAN's strong view; 0 when
    absent, for configs written before they existed), and ``cfg.view2.flip_prob`` unless it is -1
    (the default: as view 1). View 1 never has RandAugment or Cutout.
    """
    first = AugmentConfig.from_config(cfg)
    if not cfg.get("asymmetric", False):
        return first, first
    view2 = cfg["view2"]
    flip2 = view2.get("flip_prob", -1.0)
    if flip2 != -1.0 and not 0.0 <= _number(flip2, "view2.flip_prob") <= 1.0:
        raise ConfigError(f"augment.view2.flip_prob must be -1 (as augment.flip_prob) or a probability in "
                          f"[0, 1], got {flip2!r}.")
    return first, dataclasses.replace(
        first, blur_prob=_prob(view2["blur_prob"], "view2.blur_prob"),
        solarize_prob=_prob(view2["solarize_prob"], "view2.solarize_prob"),
        randaugment_ops=_count(view2.get("randaugment_ops", 0), "view2.randaugment_ops"),
        cutout_length=_count(view2.get("cutout_length", 0), "view2.cutout_length"),
        flip_prob=first.flip_prob if flip2 == -1.0 else flip2)


def _missing_keys(cfg: Any) -> list[str]:
    """Keys of the ``augment`` section ``cfg`` that :func:`view_configs` needs and does not find."""
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if cfg.get("asymmetric", False):
        view2 = cfg.get("view2")
        if view2 is None or not hasattr(view2, "get"):
            return missing + ["view2 (a section)"]
        missing += [f"view2.{k}" for k in _VIEW2_KEYS if k not in view2]
    return missing


def validate(cfg: Any) -> None:
    """Raises ConfigError, naming the key, for every ``augment`` value that :func:`view_configs` or
    ``AugmentConfig.from_config`` would reject (missing keys included), and for an ``augment.mean``
    / ``augment.std`` whose length cannot fit ``data.channels``. ``cfg`` is the whole config; reads
    no data and compiles nothing, so it can run before the data set is loaded."""
    aug = cfg.get("augment")
    if aug is None:
        raise ConfigError("the config has no augment section; start it from jaxclust.config.base_config().")
    missing = _missing_keys(aug)
    if missing:
        raise ConfigError(f"augment config is missing {', '.join('augment.' + k for k in missing)}; add "
                          "them (jaxclust.config.base_config() sets every one).")
    if aug.test_resized_crop and not 0 < aug.test_crop <= aug.test_resize:
        raise ConfigError(f"augment.test_crop ({aug.test_crop}) must lie between 1 and "
                          f"augment.test_resize ({aug.test_resize}).")
    view2 = aug.get("view2") or {}
    for name in ("randaugment_ops", "cutout_length"):
        value = view2.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"augment.view2.{name} must be 0 (off) or a positive integer, got {value!r}.")
        if value and not aug.get("asymmetric", False):
            raise ConfigError(f"augment.view2.{name} ({value}) only applies with augment.asymmetric=True; "
                              f"set --config.augment.asymmetric=True or --config.augment.view2.{name}=0.")
    first, _ = view_configs(aug)
    channels = (cfg.get("data") or {}).get("channels", 0)
    if channels in (1, 3) and len(first.mean) not in (1, channels):
        raise ConfigError(f"augment.mean and augment.std have {len(first.mean)} values but data.channels="
                          f"{channels}; give {channels} values (one per channel) or one for all.")


# ----------------------------------------------------------------------------------------------
# Basic conversions
# ----------------------------------------------------------------------------------------------

def to_float(images: jax.Array) -> jax.Array:
    """uint8 in [0, 255] -> float32 in [0, 1]; float inputs are only cast to float32."""
    images = jnp.asarray(images)
    if images.dtype == jnp.uint8:
        return images.astype(jnp.float32) / 255.0
    return images.astype(jnp.float32)


def normalize(x: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
    """``(x - mean) / std`` over the last (channel) axis."""
    mean = jnp.asarray(mean, jnp.float32)
    std = jnp.asarray(std, jnp.float32)
    return (x - mean) / std


# ----------------------------------------------------------------------------------------------
# Random parameters (torchvision `get_params`), from uniforms in [0, 1)
# ----------------------------------------------------------------------------------------------

def _scale_u(u, lo, hi):
    """Maps uniforms in [0, 1) to [lo, hi)."""
    return lo + (hi - lo) * u


def _jitter_from_uniforms(u, cfg: AugmentConfig):
    order = jnp.argsort(u[:4]).astype(jnp.int32)  # uniform random permutation
    b = _scale_u(u[4], max(0.0, 1.0 - cfg.brightness), 1.0 + cfg.brightness)
    c = _scale_u(u[5], max(0.0, 1.0 - cfg.contrast), 1.0 + cfg.contrast)
    s = _scale_u(u[6], max(0.0, 1.0 - cfg.saturation), 1.0 + cfg.saturation)
    h = _scale_u(u[7], -cfg.hue, cfg.hue)
    return order, jnp.stack([b, c, s, h])


def sample_jitter_params(key, cfg: AugmentConfig):
    """Samples (order (4,) int32 permutation, factors (4,) float32 = brightness, contrast,
    saturation, hue) as torchvision ``ColorJitter.get_params``."""
    return _jitter_from_uniforms(jax.random.uniform(key, (8,)), cfg)


def _crop_from_uniforms(u, height: int, width: int, scale, ratio):
    """u: 22 uniforms (10 areas, 10 log-ratios, top, left)."""
    area = float(height * width)
    target_area = area * _scale_u(u[0:10], scale[0], scale[1])
    aspect = jnp.exp(_scale_u(u[10:20], math.log(ratio[0]), math.log(ratio[1])))
    ws = jnp.round(jnp.sqrt(target_area * aspect)).astype(jnp.int32)
    hs = jnp.round(jnp.sqrt(target_area / aspect)).astype(jnp.int32)
    ok = (ws > 0) & (ws <= width) & (hs > 0) & (hs <= height)
    first = jnp.argmax(ok)
    found = jnp.any(ok)

    # Fallback (static): centre crop with the aspect ratio clamped into `ratio`.
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fh, fw = height, int(round(height * max(ratio)))
    else:
        fw, fh = width, height

    ch = jnp.where(found, hs[first], fh)
    cw = jnp.where(found, ws[first], fw)
    # randint(0, n) as floor(u * n), clamped against u * n rounding up to n.
    top = jnp.minimum(jnp.floor(u[20] * (height - ch + 1)).astype(jnp.int32), height - ch)
    left = jnp.minimum(jnp.floor(u[21] * (width - cw + 1)).astype(jnp.int32), width - cw)
    top = jnp.where(found, top, (height - fh) // 2)
    left = jnp.where(found, left, (width - fw) // 2)
    return top.astype(jnp.int32), left.astype(jnp.int32), ch.astype(jnp.int32), cw.astype(jnp.int32)


def sample_crop_params(key, height: int, width: int, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0)):
    """torchvision ``RandomResizedCrop.get_params`` (10 tries, vectorised, then the centre fallback).

    Returns int32 scalars ``(top, left, crop_height, crop_width)``.
    """
    return _crop_from_uniforms(jax.random.uniform(key, (22,)), height, width, scale, ratio)


def _affine_from_uniforms(u, cfg: AugmentConfig):
    angle = _scale_u(u[0], -cfg.affine_rotation, cfg.affine_rotation)
    shift = _scale_u(u[1:3], -cfg.affine_shift, cfg.affine_shift)
    scale = _scale_u(u[3], cfg.affine_scale[0], cfg.affine_scale[1])
    return angle, shift, scale


def sample_affine_params(key, cfg: AugmentConfig):
    """Samples (angle degrees, shift (2,) pixels, scale)."""
    return _affine_from_uniforms(jax.random.uniform(key, (4,)), cfg)


# ----------------------------------------------------------------------------------------------
# Pipelines
# ----------------------------------------------------------------------------------------------

# All the randomness of one image comes from ONE `jax.random.uniform(key, (_N_UNIFORMS,))` call:
# every threefry call costs ~0.5 s of XLA compile time on CPU, and the fixed slots below mean that,
# e.g., turning blur on does not change the crop drawn for a given key.
_U_CROP = slice(0, 22)
_U_AFFINE = slice(22, 26)
_U_FLIP = 26
_U_JITTER_P = 27
_U_JITTER = slice(28, 36)
_U_GRAY = 36
_U_BLUR_P = 37
_U_BLUR_SIGMA = 38
_U_SOLARIZE = 39
_N_UNIFORMS = 40
# RandAugment and Cutout: ONE more draw from `fold_in(key, _STRONG_FOLD)`, made only when they are on
# (so the draws above, and the output of a config without them, do not change): 2 per RandAugment op
# (op, magnitude), then 3 for Cutout (side, centre row, centre column).
_STRONG_FOLD = 1


def augment_image(key, image: jax.Array, cfg: AugmentConfig, out_size: int) -> jax.Array:
    """Random training augmentation of ONE image (H, W, C) (uint8, or float in [0, 1]) ->
    (out_size, out_size, C) float32 in [0, 1], before normalisation. ``key`` is a typed key or a
    raw (2,) uint32 key.

    With ``cfg.cutout_length`` the hole is filled with ``cfg.mean``, which normalises to exactly 0:
    SCAN's Cutout zeroes the normalised tensor. (Only the hole can then lie outside [0, 1].)"""
    image = to_float(image)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"expected an (H, W, C) image with C in {{1, 3}}, got shape {image.shape}")
    h, w, c = image.shape
    u = jax.random.uniform(key, (_N_UNIFORMS,), jnp.float32)
    x = image

    # RandomHorizontalFlip is folded into the last geometric op, which mirrors its sampling (no pass
    # over the image); only without crop and affine is it a select of the flipped image.
    flipped = u[_U_FLIP] < cfg.flip_prob
    flip_by = ("affine" if cfg.affine else "crop" if cfg.crop else "select") if cfg.flip_prob > 0 else None
    if cfg.crop:
        top, left, ch, cw = _crop_from_uniforms(u[_U_CROP], h, w, cfg.crop_scale, cfg.crop_ratio)
        x = resized_crop(x, top, left, ch, cw, out_size, flip=flip_by == "crop" and flipped)
    elif (h, w) != (out_size, out_size):
        x = resize(x, out_size, out_size, "bilinear")

    if cfg.affine:
        angle, shift, scale = _affine_from_uniforms(u[_U_AFFINE], cfg)
        x = affine_transform(x, angle, shift, scale, flip=flip_by == "affine" and flipped)

    if flip_by == "select":
        x = jnp.where(flipped, horizontal_flip(x), x)

    if cfg.jitter_enabled:
        order, f = _jitter_from_uniforms(u[_U_JITTER], cfg)
        enabled = (cfg.brightness > 0, cfg.contrast > 0, cfg.saturation > 0, cfg.hue > 0)
        jittered = color_jitter(x, order, f[0], f[1], f[2], f[3], enabled)
        x = jnp.where(u[_U_JITTER_P] < cfg.jitter_prob, jittered, x)

    if cfg.grayscale_prob > 0 and c == 3:
        x = jnp.where(u[_U_GRAY] < cfg.grayscale_prob, to_grayscale(x), x)

    if cfg.blur_prob > 0:
        sigma = _scale_u(u[_U_BLUR_SIGMA], cfg.blur_sigma[0], cfg.blur_sigma[1])
        x = jnp.where(u[_U_BLUR_P] < cfg.blur_prob, gaussian_blur(x, sigma, cfg.blur_kernel), x)

    if cfg.solarize_prob > 0:
        x = jnp.where(u[_U_SOLARIZE] < cfg.solarize_prob, solarize(x, cfg.solarize_threshold), x)

    n_ops = cfg.randaugment_ops
    if n_ops > 0 or cfg.cutout_length > 0:
        strong = jax.random.uniform(jax.random.fold_in(key, _STRONG_FOLD), (2 * n_ops + 3,), jnp.float32)
        if n_ops > 0:
            x = randaugment.rand_augment_from_uniforms(strong[:2 * n_ops].reshape(2, n_ops), x)
        if cfg.cutout_length > 0:
            fill = jnp.broadcast_to(jnp.asarray(cfg.mean, jnp.float32), (c,))
            x = randaugment.cutout_from_uniforms(strong[2 * n_ops:], x, cfg.cutout_length, fill)
    return x.astype(jnp.float32)


def _check_norm(cfg: AugmentConfig, channels: int):
    if len(cfg.mean) not in (1, channels):
        raise ConfigError(f"augment.mean and augment.std have {len(cfg.mean)} values for {channels}-channel "
                          f"images; give {channels} values (one per channel) or one for all.")


@functools.partial(jax.jit, static_argnames=("cfg", "out_size"))
def augment_batch(keys, images, cfg: AugmentConfig, out_size: int) -> jax.Array:
    """Augment a batch: ``keys`` (B,) typed keys or (B, 2) raw uint32 keys, one per image;
    ``images`` uint8 (B, H, W, C). Returns normalised float32 (B, out_size, out_size, C).

    Derive each image's key from (step key, example index), e.g. with :func:`example_keys`, so the
    result of an image does not depend on batch order, batch size or device count.
    """
    _check_norm(cfg, images.shape[-1])
    x = jax.vmap(lambda k, im: augment_image(k, im, cfg, out_size))(keys, images)
    return normalize(x, cfg.mean, cfg.std)


def eval_image(image: jax.Array, out_size: int, method: str = "bicubic",
               resized_crop: tuple[int, int] | None = None) -> jax.Array:
    """Test-time transform of one image (before normalisation): resize to (out, out) if needed.

    ProPos resizes test images with PIL's ``Image.resize`` default filter (bicubic); it is a no-op
    for images already at ``out_size`` (CIFAR). ``resized_crop=(resize, crop)`` first applies
    :func:`resize_center_crop` (official ``test_resized_crop``: Resize(256) + CenterCrop(224))."""
    image = to_float(image)
    if resized_crop is not None:
        image = resize_center_crop(image, *resized_crop)
    return resize(image, out_size, out_size, method)


@functools.partial(jax.jit, static_argnames=("cfg", "out_size", "method"))
def eval_batch(images, cfg: AugmentConfig, out_size: int, method: str = "bicubic") -> jax.Array:
    """Deterministic test-time transform of uint8 (B, H, W, C) -> normalised float32 (B, out, out, C)."""
    _check_norm(cfg, images.shape[-1])
    resized_crop = (cfg.test_resize, cfg.test_crop) if cfg.test_resized_crop else None
    x = jax.vmap(lambda im: eval_image(im, out_size, method, resized_crop))(images)
    return normalize(x, cfg.mean, cfg.std)


def example_keys(key, example_ids: jax.Array) -> jax.Array:
    """One key per example: ``fold_in(key, id)`` for each id in ``example_ids`` (B,)."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.asarray(example_ids, jnp.uint32))
