"""Photometric ops on ONE float32 image ``(H, W, C)`` with values in ``[0, 1]`` and ``C`` in
``{1, 3}``, with explicit (possibly traced) parameters: grayscale, ColorJitter's four ops,
solarize and Gaussian blur.

The random parameters of the training pipeline are drawn in :mod:`jaxclust.data.augment`. Semantics
follow torchvision (``transforms.functional_tensor``), not ``tf.image`` / dm-pix:

* ColorJitter: multiplicative brightness, contrast blended towards the mean of the grayscale image,
  saturation blended with the grayscale image, hue shifted in HSV, every op clamped to ``[0, 1]``;
  :func:`color_jitter` applies the four ops in a given order.
* Grayscale uses 0.299/0.587/0.114 and keeps ``C`` channels. For ``C == 1`` saturation, hue and
  grayscale are no-ops (as torchvision for 1-channel tensors).
* Gaussian blur: torchvision's discrete kernel, separable, reflect padding (``torch`` "reflect" ==
  ``numpy.pad`` "reflect" == ``scipy.ndimage`` "mirror"); generalised to kernels wider than the image
  by repeated mirroring, where torch would raise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxclust.data.geometric import apply_resampling

__all__ = [
    "rgb_to_grayscale",
    "to_grayscale",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "color_jitter",
    "solarize",
    "gaussian_kernel1d",
    "gaussian_blur",
]

_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


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


def _mod1(x):
    """``jnp.mod(x, 1.0)`` for finite x, bit for bit up to the sign of a zero: ``x - floor(x)`` is
    exact (the fractional part of a float is representable), and it stays vectorised where XLA:CPU
    calls libm's fmodf per element."""
    return x - jnp.floor(x)


def rgb_to_hsv(img: jax.Array, axis: int = -1) -> jax.Array:
    """torchvision's ``_rgb2hsv`` on an array with 3 channels along ``axis``; h, s, v in [0, 1]."""
    r, g, b = (jnp.take(img, k, axis=axis) for k in range(3))
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
    h = _mod1(h / 6.0 + 1.0)
    return jnp.stack([h, s, maxc], axis=axis)


def hsv_to_rgb(hsv: jax.Array, axis: int = -1) -> jax.Array:
    """torchvision's ``_hsv2rgb`` on an array with 3 channels along ``axis``."""
    h, s, v = (jnp.take(hsv, k, axis=axis) for k in range(3))
    i = jnp.floor(h * 6.0)
    f = h * 6.0 - i
    i = jnp.where(i >= 6.0, i - 6.0, i)  # i % 6 for i in 0..6 (h * 6 can round up to 6), kept in float
    p = jnp.clip(v * (1.0 - s), 0.0, 1.0)
    q = jnp.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = jnp.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    # Nested selects, not jnp.select: that one lowers to an argmax over the stacked conditions, a
    # reduction per pixel that XLA:CPU cannot fuse with the arithmetic around it.
    def sector(a0, a1, a2, a3, a4, a5):
        return jnp.where(i < 3, jnp.where(i == 0, a0, jnp.where(i == 1, a1, a2)),
                         jnp.where(i == 3, a3, jnp.where(i == 4, a4, a5)))

    return jnp.stack([sector(v, q, p, p, t, v), sector(t, v, v, q, p, p), sector(p, p, t, v, v, q)],
                     axis=axis)


def adjust_hue(img: jax.Array, hue_factor) -> jax.Array:
    """Rotate the hue by ``hue_factor`` (fraction of the circle, in [-0.5, 0.5]); identity for C == 1.

    Computed on channel planes (C, H, W): XLA:CPU vectorises the per-pixel HSV arithmetic over
    contiguous planes about twice as fast as over interleaved RGB, transposes included."""
    if img.shape[-1] == 1:
        return img
    hsv = rgb_to_hsv(jnp.moveaxis(img, -1, 0), axis=0)
    h = _mod1(hsv[0] + hue_factor)
    return jnp.moveaxis(hsv_to_rgb(jnp.stack([h, hsv[1], hsv[2]], axis=0), axis=0), 0, -1)


def color_jitter(img: jax.Array, order, brightness, contrast, saturation, hue,
                 enabled: tuple[bool, bool, bool, bool] = (True, True, True, True)) -> jax.Array:
    """ColorJitter with explicit parameters.

    Args:
      order: int array (4,), a permutation of 0..3 (0 brightness, 1 contrast, 2 saturation, 3 hue);
        op ``order[k]`` is applied in slot ``k``.
      brightness, contrast, saturation: multiplicative factors; hue: hue shift.
      enabled: static flags; a disabled op is the identity (torchvision skips ops with strength 0).

    Hue, by far the costliest op, runs exactly once: the three blends (brightness, contrast,
    saturation: blend with 0 / the grayscale mean / the grayscale image, one shared code path) in
    their drawn order, those drawn before hue in a ``fori_loop`` of three slots, the others in a
    second loop after it (a slot outside its loop is an exact identity). Under ``vmap`` a
    ``where`` per slot selecting among the four ops (or a ``lax.switch``) computes hue in all four
    slots for every image; an unrolled switch also triples the compile time.
    """
    single = img.shape[-1] == 1
    order = jnp.asarray(order, jnp.int32)
    one = jnp.float32(1.0)
    factors = jnp.stack([
        jnp.asarray(brightness, jnp.float32) if enabled[0] else one,
        jnp.asarray(contrast, jnp.float32) if enabled[1] else one,
        jnp.asarray(saturation, jnp.float32) if enabled[2] else one,
    ])
    hue_slot = jnp.argmax(order == 3)
    # The blends in their order: blend j is the op of slot j, or of slot j + 1 once past hue.
    blends = order[jnp.arange(3) + (jnp.arange(3) >= hue_slot)]

    def blend_slot(x, op, active):
        gray = rgb_to_grayscale(x)[..., None]
        target = jnp.where(op == 0, 0.0, jnp.where(op == 1, jnp.mean(gray), gray))
        blended = _blend(x, target, factors[op])
        # saturation of a 1-channel image is the identity (blend(x, x, f) would only add
        # rounding); disabled ops have factor 1, an exact identity.
        return jnp.where(active & ~((op == 2) & single), blended, x)

    if not enabled[3] or single:
        return lax.fori_loop(0, 3, lambda j, x: blend_slot(x, blends[j], True), img)
    x = lax.fori_loop(0, 3, lambda j, x: blend_slot(x, blends[j], j < hue_slot), img)
    x = adjust_hue(x, hue)
    return lax.fori_loop(0, 3, lambda j, x: blend_slot(x, blends[j], j >= hue_slot), x)


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
    return apply_resampling(img, _blur_matrix(img.shape[0], kernel), _blur_matrix(img.shape[1], kernel))
