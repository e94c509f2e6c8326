"""Geometric ops on ONE float32 image ``(H, W, C)``, with explicit (possibly traced) parameters:
horizontal flip, resize, resized crop, resize + centre crop, and a small affine transform.

The random parameters of the training pipeline are drawn in :mod:`jaxclust.data.augment`. Semantics
follow torchvision / PIL (not ``tf.image`` / dm-pix):

* Resizing is PIL/torch anti-aliased filtering (bilinear, or PIL's bicubic with a = -0.5), computed
  as two small matrix products (:func:`apply_resampling`), one per axis.
* RandomResizedCrop's resampling (:func:`resized_crop`) restricts the filter's support to the crop
  window (as ``img.crop(...).resize(...)`` does), not to the whole image.
* :func:`resize_center_crop` is torchvision's ``CenterCrop(crop)(Resize(resize_to)(img))``.
* :func:`affine_transform`: rotation, isotropic scale about the image centre and translation,
  bilinear sampling, zeros outside the image.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

__all__ = [
    "horizontal_flip",
    "apply_resampling",
    "resize",
    "resized_crop",
    "resize_center_crop",
    "affine_transform",
]


def horizontal_flip(img: jax.Array) -> jax.Array:
    return img[:, ::-1, :]


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


def apply_resampling(img, wy, wx):
    """``(H, W, C)`` image -> ``(O, P, C)``: rows resampled by ``wy`` (O, H), columns by ``wx`` (P, W)."""
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
    out = apply_resampling(img, wy, wx)
    return jnp.clip(out, 0.0, 1.0) if method == "bicubic" else out


def resized_crop(img: jax.Array, top, left, height, width, out_size: int,
                 method: str = "bilinear", flip=False) -> jax.Array:
    """``F.resized_crop``: crop rows [top, top+height) and columns [left, left+width) and resize to
    ``(out_size, out_size)`` with antialiased bilinear filtering. The crop box may be traced.

    ``flip`` (a possibly traced bool) mirrors the result horizontally (RandomHorizontalFlip after the
    crop) by reversing the rows of the column weights: no extra pass over the image."""
    h, w = img.shape[0], img.shape[1]
    wy = _resample_matrix(h, out_size, top, height, method, True)
    wx = _resample_matrix(w, out_size, left, width, method, True)
    wx = jnp.where(flip, wx[::-1], wx)
    out = apply_resampling(img, wy, wx)
    return jnp.clip(out, 0.0, 1.0) if method == "bicubic" else out


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
    return apply_resampling(img, wy, wx)


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


def affine_transform(img: jax.Array, angle, shift, scale, flip=False) -> jax.Array:
    """Rotate by ``angle`` degrees (counter-clockwise as displayed), scale by ``scale`` about the
    image centre ((H-1)/2, (W-1)/2), then translate by ``shift = (dx, dy)`` pixels (dx to the
    right, dy down). Bilinear sampling, zeros outside the input.

    ``flip`` (a possibly traced bool) mirrors the result horizontally (a flip after the transform)
    by sampling output column ``W-1-x`` at column ``x``: no extra pass over the image."""
    h, w = img.shape[0], img.shape[1]
    cy, cx = (h - 1) * 0.5, (w - 1) * 0.5
    theta = jnp.deg2rad(jnp.asarray(angle, jnp.float32))
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    shift = jnp.asarray(shift, jnp.float32)
    py, px = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                          indexing="ij")
    px = jnp.where(flip, (w - 1) - px, px)
    dx = px - cx - shift[0]
    dy = py - cy - shift[1]
    # Inverse map output -> input: q = c + R(-angle) (p - c - t) / scale  (y axis pointing down).
    qx = cx + (cos * dx - sin * dy) / scale
    qy = cy + (sin * dx + cos * dy) / scale
    return _bilinear_sample_zero(img, qy, qx)
