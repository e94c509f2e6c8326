"""On-device, jittable image augmentation with torchvision semantics.

Every op works on ONE float32 image of shape ``(H, W, C)`` with values in ``[0, 1]`` and ``C`` in
``{1, 3}``; batches are handled by ``jax.vmap`` with one PRNG key per image (see :func:`augment_batch`).
The training pipeline reproduces the ProPos/SimCLR torchvision recipe::

    RandomResizedCrop -> (RandomAffine) -> RandomHorizontalFlip -> RandomApply(ColorJitter, p)
    -> RandomGrayscale(p) -> RandomApply(GaussianBlur, p) -> RandomApply(Solarize, p)
    -> (RandAugment) -> Normalize -> (Cutout)

The last two are SCAN's strong augmentation (``randaugment_ops`` ops, ``Cutout`` of side up to
``cutout_length``, in SCAN's order), implemented with PIL semantics in
:mod:`jaxclust.data.randaugment`; RandAugment works on the image rounded to 8 bits, as PIL does.

Semantics follow torchvision (not ``tf.image`` / dm-pix):

* RandomResizedCrop: area fraction uniform in ``crop_scale``, aspect ratio log-uniform in
  ``crop_ratio``, 10 tries (vectorised) and torchvision's centre-crop fallback; the crop is resampled
  with PIL/torch anti-aliased bilinear filtering whose support is restricted to the crop window (as
  ``img.crop(...).resize(...)`` does), not to the whole image.
* ColorJitter: multiplicative brightness, contrast blended towards the mean of the grayscale image,
  saturation blended with the grayscale image, hue shifted in HSV, every op clamped to ``[0, 1]``,
  the four ops applied in a fresh random order for every image.
* Grayscale uses 0.299/0.587/0.114 and keeps ``C`` channels. For ``C == 1`` saturation, hue and
  grayscale are no-ops (as torchvision for 1-channel tensors).
* Gaussian blur: torchvision's discrete kernel, separable, reflect padding (``torch`` "reflect" ==
  ``numpy.pad`` "reflect" == ``scipy.ndimage`` "mirror"); generalised to kernels wider than the image
  by repeated mirroring, where torch would raise.

Two views: ``view_configs`` gives the config of each view; with ``augment.asymmetric`` (the official
``byol_transform``) view 2 has its own blur and solarize probabilities, and its own RandAugment and
Cutout (SCAN's strong view; off, 0, by default). Test-time transform: the
stored image resized to the network size (PIL bicubic), or with ``test_resized_crop`` torchvision's
``Resize(test_resize) + CenterCrop(test_crop)`` first (official ImageNet-Dogs config).

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
from jax import lax

from jaxclust.data import randaugment

__all__ = [
    "AugmentConfig",
    "CONFIG_KEYS",
    "default_config",
    "to_float",
    "normalize",
    "horizontal_flip",
    "rgb_to_grayscale",
    "to_grayscale",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "color_jitter",
    "sample_jitter_params",
    "solarize",
    "gaussian_kernel1d",
    "gaussian_blur",
    "resize",
    "resized_crop",
    "sample_crop_params",
    "affine_transform",
    "sample_affine_params",
    "augment_image",
    "augment_batch",
    "eval_image",
    "eval_batch",
    "resize_center_crop",
    "view_configs",
    "example_keys",
]

_GRAY_WEIGHTS = (0.299, 0.587, 0.114)

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


def _pair(value: Any, name: str) -> tuple[float, float]:
    vals = tuple(float(v) for v in value)
    if len(vals) != 2:
        raise ValueError(f"augment.{name} must have two values, got {value!r}")
    if vals[0] > vals[1]:
        raise ValueError(f"augment.{name} must be (low, high) with low <= high, got {value!r}")
    return vals  # type: ignore[return-value]


def _prob(value: Any, name: str) -> float:
    p = float(value)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"augment.{name} must be a probability in [0, 1], got {value!r}")
    return p


def _nonneg(value: Any, name: str) -> float:
    v = float(value)
    if v < 0:
        raise ValueError(f"augment.{name} must be >= 0, got {value!r}")
    return v


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
        # Normalise types so that equal configs hash equally (lists -> tuples, ints -> floats).
        s = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        s("crop", bool(self.crop))
        s("affine", bool(self.affine))
        s("test_resized_crop", bool(self.test_resized_crop))
        for k in ("test_resize", "test_crop"):
            v = int(getattr(self, k))
            if v != getattr(self, k) or v <= 0:
                raise ValueError(f"augment.{k} must be a positive integer, got {getattr(self, k)!r}")
            s(k, v)
        if self.test_crop > self.test_resize:
            raise ValueError(f"augment.test_crop ({self.test_crop}) must be <= augment.test_resize "
                             f"({self.test_resize})")
        for k in ("crop_scale", "crop_ratio", "affine_scale", "blur_sigma"):
            s(k, _pair(getattr(self, k), k))
        for k in ("flip_prob", "jitter_prob", "grayscale_prob", "blur_prob", "solarize_prob"):
            s(k, _prob(getattr(self, k), k))
        for k in ("affine_rotation", "affine_shift", "brightness", "contrast", "saturation", "hue"):
            s(k, _nonneg(getattr(self, k), k))
        s("solarize_threshold", float(self.solarize_threshold))
        if self.hue > 0.5:
            raise ValueError(f"augment.hue must be in [0, 0.5], got {self.hue}")
        if self.crop_scale[0] <= 0 or self.crop_ratio[0] <= 0 or self.affine_scale[0] <= 0:
            raise ValueError("augment.crop_scale, crop_ratio and affine_scale must be positive")
        k = int(self.blur_kernel)
        if k != self.blur_kernel or k <= 0 or k % 2 == 0:
            raise ValueError(f"augment.blur_kernel must be a positive odd integer, got {self.blur_kernel!r}")
        s("blur_kernel", k)
        for key in ("randaugment_ops", "cutout_length"):
            value = getattr(self, key)
            if isinstance(value, bool) or int(value) != value or value < 0:
                raise ValueError(f"augment.{key} must be a non-negative integer (0 = off), got {value!r}")
            s(key, int(value))
        if self.blur_sigma[0] <= 0:
            raise ValueError("augment.blur_sigma must be positive")
        mean = tuple(float(v) for v in np.atleast_1d(self.mean))
        std = tuple(float(v) for v in np.atleast_1d(self.std))
        if len(mean) != len(std) or not mean:
            raise ValueError(f"augment.mean and augment.std must have the same length, got {mean}, {std}")
        if min(std) <= 0:
            raise ValueError("augment.std must be positive")
        s("mean", mean)
        s("std", std)

    @classmethod
    def from_config(cls, cfg: Any) -> "AugmentConfig":
        """Builds the config from an ``ml_collections.ConfigDict`` (or any mapping) holding all
        :data:`CONFIG_KEYS`. Missing keys raise ``KeyError``; unknown keys are ignored."""
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
    return first, dataclasses.replace(
        first, blur_prob=view2["blur_prob"], solarize_prob=view2["solarize_prob"],
        randaugment_ops=view2.get("randaugment_ops", 0), cutout_length=view2.get("cutout_length", 0),
        flip_prob=first.flip_prob if flip2 == -1.0 else flip2)


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


def horizontal_flip(img: jax.Array) -> jax.Array:
    return img[:, ::-1, :]


def rgb_to_grayscale(img: jax.Array) -> jax.Array:
    """Luma ``0.299 R + 0.587 G + 0.114 B`` as ``(H, W)``; for C == 1 the single channel."""
    if img.shape[-1] == 1:
        return img[..., 0]
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return _GRAY_WEIGHTS[0] * r + _GRAY_WEIGHTS[1] * g + _GRAY_WEIGHTS[2] * b


def to_grayscale(img: jax.Array) -> jax.Array:
    """Grayscale keeping the channel count (torchvision RandomGrayscale); identity for C == 1."""
    if img.shape[-1] == 1:
        return img
    return jnp.broadcast_to(rgb_to_grayscale(img)[..., None], img.shape)


def _blend(img1, img2, ratio):
    return jnp.clip(ratio * img1 + (1.0 - ratio) * img2, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------
# Colour ops (torchvision.transforms.functional_tensor formulas)
# ----------------------------------------------------------------------------------------------

def adjust_brightness(img: jax.Array, factor) -> jax.Array:
    """``clip(factor * img)`` (multiplicative, torchvision)."""
    return _blend(img, 0.0, factor)


def adjust_contrast(img: jax.Array, factor) -> jax.Array:
    """Blend with the mean of the grayscale image (of the image itself for C == 1)."""
    mean = jnp.mean(rgb_to_grayscale(img))
    return _blend(img, mean, factor)


def adjust_saturation(img: jax.Array, factor) -> jax.Array:
    """Blend with the grayscale image; identity for C == 1."""
    if img.shape[-1] == 1:
        return img
    return _blend(img, rgb_to_grayscale(img)[..., None], factor)


def rgb_to_hsv(img: jax.Array) -> jax.Array:
    """torchvision's ``_rgb2hsv`` on an (..., 3) array; h, s, v in [0, 1]."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    maxc = jnp.maximum(jnp.maximum(r, g), b)
    minc = jnp.minimum(jnp.minimum(r, g), b)
    eqc = maxc == minc
    cr = maxc - minc
    ones = jnp.ones_like(maxc)
    s = cr / jnp.where(eqc, ones, maxc)
    cr_div = jnp.where(eqc, ones, cr)
    rc = (maxc - r) / cr_div
    gc = (maxc - g) / cr_div
    bc = (maxc - b) / cr_div
    is_r = maxc == r
    is_g = (maxc == g) & ~is_r
    h = jnp.where(is_r, bc - gc, jnp.where(is_g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = jnp.mod(h / 6.0 + 1.0, 1.0)
    return jnp.stack([h, s, maxc], axis=-1)


def hsv_to_rgb(hsv: jax.Array) -> jax.Array:
    """torchvision's ``_hsv2rgb`` on an (..., 3) array."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = jnp.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(jnp.int32) % 6
    p = jnp.clip(v * (1.0 - s), 0.0, 1.0)
    q = jnp.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = jnp.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    r = jnp.select([i == 0, i == 1, i == 2, i == 3, i == 4], [v, q, p, p, t], v)
    g = jnp.select([i == 0, i == 1, i == 2, i == 3, i == 4], [t, v, v, q, p], p)
    b = jnp.select([i == 0, i == 1, i == 2, i == 3, i == 4], [p, p, t, v, v], q)
    return jnp.stack([r, g, b], axis=-1)


def adjust_hue(img: jax.Array, hue_factor) -> jax.Array:
    """Rotate the hue by ``hue_factor`` (fraction of the circle, in [-0.5, 0.5]); identity for C == 1."""
    if img.shape[-1] == 1:
        return img
    hsv = rgb_to_hsv(img)
    h = jnp.mod(hsv[..., 0] + hue_factor, 1.0)
    return hsv_to_rgb(jnp.stack([h, hsv[..., 1], hsv[..., 2]], axis=-1))


def color_jitter(img: jax.Array, order, brightness, contrast, saturation, hue,
                 enabled: tuple[bool, bool, bool, bool] = (True, True, True, True)) -> jax.Array:
    """ColorJitter with explicit parameters.

    Args:
      order: int array (4,), a permutation of 0..3 (0 brightness, 1 contrast, 2 saturation, 3 hue);
        op ``order[k]`` is applied in slot ``k``.
      brightness, contrast, saturation: multiplicative factors; hue: hue shift.
      enabled: static flags; a disabled op is the identity (torchvision skips ops with strength 0).

    The four slots run in a ``fori_loop`` whose body computes the selected op: the three blends
    share one code path (blend with 0 / the grayscale mean / the grayscale image) and hue is
    selected by ``where``. This keeps one copy of each op in the program (an unrolled
    ``lax.switch`` per slot becomes 4 x 4 ops under ``vmap`` and triples the compile time).
    """
    single = img.shape[-1] == 1
    order = jnp.asarray(order, jnp.int32)
    one = jnp.float32(1.0)
    factors = jnp.stack([
        jnp.asarray(brightness, jnp.float32) if enabled[0] else one,
        jnp.asarray(contrast, jnp.float32) if enabled[1] else one,
        jnp.asarray(saturation, jnp.float32) if enabled[2] else one,
    ])
    do_hue = enabled[3] and not single

    def body(slot, x):
        op = order[slot]
        gray = rgb_to_grayscale(x)[..., None]
        target = jnp.where(op == 0, 0.0, jnp.where(op == 1, jnp.mean(gray), gray))
        blended = _blend(x, target, factors[jnp.minimum(op, 2)])
        # hue is handled below; saturation of a 1-channel image is the identity (blend(x, x, f)
        # would only add rounding); disabled ops have factor 1, an exact identity.
        out = jnp.where((op == 3) | ((op == 2) & single), x, blended)
        if do_hue:
            out = jnp.where(op == 3, adjust_hue(x, hue), out)
        return out

    return lax.fori_loop(0, 4, body, img)


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


def solarize(img: jax.Array, threshold) -> jax.Array:
    """Invert pixels ``>= threshold`` (torchvision / PIL ImageOps.solarize)."""
    return jnp.where(img >= threshold, 1.0 - img, img)


# ----------------------------------------------------------------------------------------------
# Gaussian blur
# ----------------------------------------------------------------------------------------------

def gaussian_kernel1d(sigma, kernel_size: int) -> jax.Array:
    """torchvision's ``_get_gaussian_kernel1d``: exp(-x^2 / 2 sigma^2) on integer offsets, normalised."""
    half = (kernel_size - 1) * 0.5
    x = jnp.linspace(-half, half, kernel_size, dtype=jnp.float32)
    pdf = jnp.exp(-0.5 * jnp.square(x / sigma))
    return pdf / jnp.sum(pdf)


def _reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Reflect indices into [0, n) without repeating the edge (numpy 'reflect' / scipy 'mirror')."""
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    m = np.mod(idx, period)
    return np.where(m < n, m, period - m)


def _blur_matrix(n: int, kernel: jax.Array) -> jax.Array:
    """(n, n) matrix of a 1-D correlation with ``kernel`` and reflect padding:
    ``out[i] = sum_k kernel[k] * x[reflect(i + k - r)]``. The 0/1 tap pattern is a static constant,
    only the weights are traced (sigma is random per image)."""
    k = kernel.shape[0]
    idx = _reflect_index(np.arange(n)[:, None] + np.arange(k)[None, :] - k // 2, n)  # (n, k)
    taps = np.zeros((n, k, n), np.float32)
    taps[np.arange(n)[:, None], np.arange(k)[None, :], idx] = 1.0
    return jnp.einsum("k,ikj->ij", kernel, jnp.asarray(taps), precision=lax.Precision.HIGHEST)


def gaussian_blur(img: jax.Array, sigma, kernel_size: int) -> jax.Array:
    """Separable Gaussian blur with torchvision's kernel and reflect padding (same sigma on both
    axes), applied as two small matrix products (cheaper than a gather/conv for per-image sigma)."""
    kernel = gaussian_kernel1d(sigma, kernel_size)
    return _apply_resample(img, _blur_matrix(img.shape[0], kernel), _blur_matrix(img.shape[1], kernel))


# ----------------------------------------------------------------------------------------------
# Resampling: resize / resized crop (PIL / torch antialias semantics) and affine
# ----------------------------------------------------------------------------------------------

def _triangle(x):
    return jnp.maximum(0.0, 1.0 - jnp.abs(x))


def _cubic(x, a=-0.5):  # PIL's bicubic kernel
    x = jnp.abs(x)
    w1 = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    w2 = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return jnp.where(x < 1.0, w1, jnp.where(x < 2.0, w2, 0.0))


_KERNELS = {"bilinear": (_triangle, 1.0), "bicubic": (_cubic, 2.0)}


def _resample_matrix(in_size: int, out_size: int, start, length, method: str, antialias: bool):
    """(out_size, in_size) weights resampling the window [start, start + length) to out_size pixels.

    PIL's ImagingResample / torch's antialiased interpolate: output pixel i has its centre at
    ``start + (i + 0.5) * scale`` (scale = length / out_size); the kernel is stretched by
    ``max(scale, 1)`` when downsampling (antialias); input pixels outside the window get weight 0
    and the weights are renormalised (edge behaviour of a crop followed by a resize).
    """
    kernel, support = _KERNELS[method]
    start = jnp.asarray(start, jnp.float32)
    length = jnp.asarray(length, jnp.float32)
    scale = length / out_size
    stretch = jnp.maximum(scale, 1.0) if antialias else jnp.float32(1.0)
    centres = start + (jnp.arange(out_size, dtype=jnp.float32) + 0.5) * scale
    pix = jnp.arange(in_size, dtype=jnp.float32)
    w = kernel((pix[None, :] + 0.5 - centres[:, None]) / stretch)
    w = jnp.where((pix[None, :] >= start) & (pix[None, :] < start + length)
                  & (jnp.abs(pix[None, :] + 0.5 - centres[:, None]) < support * stretch), w, 0.0)
    return w / jnp.sum(w, axis=1, keepdims=True)


def _apply_resample(img, wy, wx):
    return jnp.einsum("oh,hwc,pw->opc", wy, img, wx, precision=lax.Precision.HIGHEST)


def resize(img: jax.Array, out_h: int, out_w: int, method: str = "bilinear",
           antialias: bool = True) -> jax.Array:
    """Resize ``(H, W, C)`` to ``(out_h, out_w, C)`` like PIL ``Image.resize`` (float images).

    ``method`` is "bilinear" (torchvision ``Resize`` default) or "bicubic" (PIL ``Image.resize``
    default, a = -0.5); bicubic output is clipped to [0, 1] as PIL does for 8-bit images.
    """
    h, w = img.shape[0], img.shape[1]
    if (h, w) == (out_h, out_w):
        return img
    wy = _resample_matrix(h, out_h, 0.0, float(h), method, antialias)
    wx = _resample_matrix(w, out_w, 0.0, float(w), method, antialias)
    out = _apply_resample(img, wy, wx)
    return jnp.clip(out, 0.0, 1.0) if method == "bicubic" else out


def resized_crop(img: jax.Array, top, left, height, width, out_size: int,
                 method: str = "bilinear") -> jax.Array:
    """``F.resized_crop``: crop rows [top, top+height) and columns [left, left+width) and resize to
    ``(out_size, out_size)`` with antialiased bilinear filtering. The crop box may be traced."""
    h, w = img.shape[0], img.shape[1]
    wy = _resample_matrix(h, out_size, top, height, method, True)
    wx = _resample_matrix(w, out_size, left, width, method, True)
    out = _apply_resample(img, wy, wx)
    return jnp.clip(out, 0.0, 1.0) if method == "bicubic" else out


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


def _bilinear_sample_zero(img: jax.Array, qy: jax.Array, qx: jax.Array) -> jax.Array:
    """Bilinear sampling at pixel-index coordinates (qy, qx), zero outside the image."""
    h, w = img.shape[0], img.shape[1]
    y0 = jnp.floor(qy)
    x0 = jnp.floor(qx)
    fy = (qy - y0)[..., None]
    fx = (qx - x0)[..., None]
    y0 = y0.astype(jnp.int32)
    x0 = x0.astype(jnp.int32)

    def tap(yi, xi):
        valid = ((yi >= 0) & (yi < h) & (xi >= 0) & (xi < w))[..., None]
        v = img[jnp.clip(yi, 0, h - 1), jnp.clip(xi, 0, w - 1)]
        return jnp.where(valid, v, 0.0)

    return ((1 - fy) * (1 - fx) * tap(y0, x0) + (1 - fy) * fx * tap(y0, x0 + 1)
            + fy * (1 - fx) * tap(y0 + 1, x0) + fy * fx * tap(y0 + 1, x0 + 1))


def affine_transform(img: jax.Array, angle, shift, scale) -> jax.Array:
    """Rotate by ``angle`` degrees (counter-clockwise as displayed), scale by ``scale`` about the
    image centre ((H-1)/2, (W-1)/2), then translate by ``shift = (dx, dy)`` pixels (dx to the
    right, dy down). Bilinear sampling, zeros outside the input."""
    h, w = img.shape[0], img.shape[1]
    cy, cx = (h - 1) * 0.5, (w - 1) * 0.5
    theta = jnp.deg2rad(jnp.asarray(angle, jnp.float32))
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    shift = jnp.asarray(shift, jnp.float32)
    py, px = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                          indexing="ij")
    dx = px - cx - shift[0]
    dy = py - cy - shift[1]
    # Inverse map output -> input: q = c + R(-angle) (p - c - t) / scale  (y axis pointing down).
    qx = cx + (cos * dx - sin * dy) / scale
    qy = cy + (sin * dx + cos * dy) / scale
    return _bilinear_sample_zero(img, qy, qx)


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

    if cfg.crop:
        top, left, ch, cw = _crop_from_uniforms(u[_U_CROP], h, w, cfg.crop_scale, cfg.crop_ratio)
        x = resized_crop(x, top, left, ch, cw, out_size)
    elif (h, w) != (out_size, out_size):
        x = resize(x, out_size, out_size, "bilinear")

    if cfg.affine:
        angle, shift, scale = _affine_from_uniforms(u[_U_AFFINE], cfg)
        x = affine_transform(x, angle, shift, scale)

    if cfg.flip_prob > 0:
        x = jnp.where(u[_U_FLIP] < cfg.flip_prob, horizontal_flip(x), x)

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
        raise ValueError(f"augment.mean/std have {len(cfg.mean)} values for {channels}-channel images")


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


def resize_center_crop(img: jax.Array, resize_to: int, crop: int) -> jax.Array:
    """torchvision ``CenterCrop(crop)(Resize(resize_to)(img))`` of one float image: the shorter side
    resized to ``resize_to`` (the longer to ``int(resize_to * long / short)``), bilinear with PIL's
    antialiasing, then the centred ``crop x crop`` window (offsets ``round((size - crop) / 2)``).
    Computed as one resampling whose output rows/columns are the crop window of the resized image."""
    h, w = img.shape[0], img.shape[1]
    if h <= w:
        new_h, new_w = resize_to, int(resize_to * w / h)
    else:
        new_h, new_w = int(resize_to * h / w), resize_to
    if crop > new_h or crop > new_w:
        raise ValueError(f"centre crop {crop} is larger than the resized image {new_h}x{new_w}")
    top, left = int(round((new_h - crop) / 2.0)), int(round((new_w - crop) / 2.0))
    wy = _resample_matrix(h, new_h, 0.0, float(h), "bilinear", True)[top:top + crop]
    wx = _resample_matrix(w, new_w, 0.0, float(w), "bilinear", True)[left:left + crop]
    return _apply_resample(img, wy, wx)


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
