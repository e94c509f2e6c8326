"""On-device, jittable RandAugment and Cutout with SCAN / PIL semantics.

SCAN's strong augmentation (``wvangansbeke/Unsupervised-Classification``, ``data/augment.py`` and
``utils/common_config.py``, strategy ``ours``; used by its self-labeling stage and, per its paper, by
SeCu's)::

    RandomHorizontalFlip -> RandomCrop(crop_size) -> Augment(num_strong_augs) -> ToTensor
    -> Normalize -> Cutout(n_holes=1, length)

with ``num_strong_augs = 4`` and ``length = 16`` (CIFAR-10/20) or 32 (STL-10). The pipeline itself is
assembled in :mod:`jaxclust.data.augment` (``AugmentConfig.randaugment_ops`` / ``cutout_length``);
this module holds the ops.

Conventions are those of :mod:`jaxclust.data.augment`: every function works on ONE float32 image of
shape ``(H, W, C)`` with values in ``[0, 1]`` and ``C`` in ``{1, 3}``; batches go through
``jax.vmap``. PIL works on 8-bit images, so every op first rounds the image to the 256 levels
(``round(255 x)``; exact for images that came from uint8, as SCAN's do), computes the op on the
levels with PIL's integer / float32 arithmetic, and returns ``level / 255``. :func:`rand_augment`
rounds once at the start and keeps levels between its ops, as the PIL chain does.

RandAugment (SCAN ``Augment(n)``): ``n`` ops drawn uniformly from the 14 below WITH replacement
(``random.choices``), each with a magnitude uniform in its range (``random.random() * (max - min) +
min``), applied in order. The ops, in SCAN's ``augment_list`` order, and their PIL counterparts:

============ ============ ========================================================================
op           magnitude    PIL
============ ============ ========================================================================
identity     [0, 1]       the image
autocontrast [0, 1]       ``ImageOps.autocontrast(img)`` (per channel, cutoff 0)
equalize     [0, 1]       ``ImageOps.equalize(img)`` (per channel)
rotate       [-30, 30]    ``img.rotate(v)``: degrees counter-clockwise about (W/2, H/2), nearest
solarize     [0, 256]     ``ImageOps.solarize(img, v)``: levels >= v are inverted
color        [0.05, 0.95] ``ImageEnhance.Color(img).enhance(v)`` (identity for C == 1)
contrast     [0.05, 0.95] ``ImageEnhance.Contrast(img).enhance(v)``
brightness   [0.05, 0.95] ``ImageEnhance.Brightness(img).enhance(v)``
sharpness    [0.05, 0.95] ``ImageEnhance.Sharpness(img).enhance(v)``
shear_x      [-0.1, 0.1]  ``img.transform(size, AFFINE, (1, v, 0, 0, 1, 0))``
translate_x  [-0.1, 0.1]  ``img.transform(size, AFFINE, (1, 0, v * W, 0, 1, 0))``
translate_y  [-0.1, 0.1]  ``img.transform(size, AFFINE, (1, 0, 0, 0, 1, v * H))``
posterize    [4, 8]       ``ImageOps.posterize(img, int(v))``
shear_y      [-0.1, 0.1]  ``img.transform(size, AFFINE, (1, 0, 0, v, 1, 0))``
============ ============ ========================================================================

PIL details reproduced (Pillow's C code, ``libImaging``):

* Geometric ops resample with PIL's default NEAREST filter and fill with 0 (black), as SCAN calls
  them (no ``fillcolor``). Rotation and shears take PIL's 16.16 fixed-point path (``affine_fixed``):
  output pixel (x, y) reads input pixel ``((A2 + y A1 + x A0) >> 16, (A5 + y A4 + x A3) >> 16)`` with
  ``Ai = floor(65536 ai + 0.5)`` and the offsets taken at pixel centres. Translations take PIL's
  scaling path: column ``x + floor(t + 0.5)``. Shears and translations match PIL exactly. For
  rotations PIL computes cos / sin in float64, we in float32, so a 16.16 coefficient can be one unit
  off, which moves sampling points by at most (1 + H + W) / 65536 pixel: measured, 1 to 3 pixels per
  million read their neighbour (0.2-0.8% of rotations on 32x32 and 96x96 images affected).
* Enhance ops are ``Image.blend(degenerate, img, v)``: ``trunc(d + v * (x - d))`` in float32, clipped
  to [0, 255] (for factors outside [0, 1]). Degenerates: Color the luma image
  ``(19595 R + 38470 G + 7471 B + 2^15) >> 16`` (convert("L")); Contrast a constant, the luma mean
  rounded half up; Brightness 0; Sharpness PIL's SMOOTH filter (3x3 kernel 1 1 1 / 1 5 1 / 1 1 1
  over 13, rounded half up) with the one-pixel border copied unfiltered.
* autocontrast: per channel, ``floor((x - lo) * 255 / (hi - lo))`` for min ``lo`` < max ``hi``
  (identity otherwise). PIL evaluates ``int(x * scale - lo * scale)`` in float64, which is one level
  lower where the exact value is an integer for ~0.4% of (lo, hi, x) triples; we keep the exact value.
* equalize: per channel, ``step = (N - count(max level)) // 255``; if ``step > 0`` level ``l`` maps
  to ``min((step // 2 + count(< l)) // step, 255)`` (PIL clips its lookup table), else identity.
* posterize keeps the top ``int(v)`` bits (``v`` clipped to [1, 8]); solarize compares the level to
  the float threshold.

SCAN's ``random_mirror`` flips the sign of rotate / shear / translate magnitudes with probability
1/2; their ranges are symmetric about 0, so the magnitude distribution is the same and the flip is
not drawn here.

Cutout (SCAN ``Cutout``, applied after ``Normalize``): a side ``L`` uniform in ``{1, ..., length}``
(SCAN's code draws it whatever its ``random`` flag says), a centre ``(y, x)`` uniform over the
pixels, and rows ``[y - L // 2, y + L // 2)`` x columns ``[x - L // 2, x + L // 2)``, clipped at the
borders, set to 0 (so the hole is ``2 (L // 2)`` pixels wide before clipping; none for ``L = 1``).
:func:`cutout` takes the fill value: :mod:`jaxclust.data.augment` cuts the un-normalised image with
the normalisation mean, which is exactly 0 after normalisation.

Under ``vmap`` the op of each slot is chosen with ``lax.switch``, which becomes a select: every op
is computed for every image and slot (in one ``fori_loop`` body, so each op is compiled once).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

__all__ = [
    "OPS",
    "MAGNITUDE_RANGES",
    "NUM_OPS",
    "to_levels",
    "from_levels",
    "identity",
    "autocontrast",
    "equalize",
    "rotate",
    "solarize",
    "color",
    "contrast",
    "brightness",
    "sharpness",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
    "posterize",
    "apply_op",
    "apply_ops",
    "rand_augment_params",
    "rand_augment",
    "rand_augment_from_uniforms",
    "cutout_box",
    "cutout",
    "cutout_from_uniforms",
]

#: SCAN's ``augment_list()``, in its order, with each op's magnitude range (low, high).
_SCAN_LIST = (
    ("identity", 0.0, 1.0),
    ("autocontrast", 0.0, 1.0),
    ("equalize", 0.0, 1.0),
    ("rotate", -30.0, 30.0),
    ("solarize", 0.0, 256.0),
    ("color", 0.05, 0.95),
    ("contrast", 0.05, 0.95),
    ("brightness", 0.05, 0.95),
    ("sharpness", 0.05, 0.95),
    ("shear_x", -0.1, 0.1),
    ("translate_x", -0.1, 0.1),
    ("translate_y", -0.1, 0.1),
    ("posterize", 4.0, 8.0),
    ("shear_y", -0.1, 0.1),
)
OPS = tuple(name for name, _, _ in _SCAN_LIST)
MAGNITUDE_RANGES = tuple((lo, hi) for _, lo, hi in _SCAN_LIST)
NUM_OPS = len(OPS)


# ----------------------------------------------------------------------------------------------
# uint8 levels
# ----------------------------------------------------------------------------------------------

def to_levels(img: jax.Array) -> jax.Array:
    """[0, 1] float image -> float32 array of integer levels 0..255 (rounded to nearest)."""
    return jnp.clip(jnp.round(jnp.asarray(img, jnp.float32) * 255.0), 0.0, 255.0)


def from_levels(v: jax.Array) -> jax.Array:
    """Levels 0..255 -> [0, 1] float32 (``level / 255``, as ``augment.to_float`` of a uint8 image)."""
    return v / 255.0


def _on_levels(op):
    """Wraps an op on levels into one on [0, 1] images."""

    def wrapped(img, *args):
        return from_levels(op(to_levels(img), *args))

    wrapped.__name__ = op.__name__.lstrip("_")
    wrapped.__doc__ = op.__doc__
    return wrapped


# ----------------------------------------------------------------------------------------------
# Ops on levels: v is (H, W, C) float32 holding integers 0..255; m is the (traced) magnitude
# ----------------------------------------------------------------------------------------------

def _identity(v, m=None):
    """The image itself."""
    del m
    return v


def _autocontrast(v, m=None):
    """``ImageOps.autocontrast``: each channel stretched so its min maps to 0 and its max to 255."""
    del m
    lo = jnp.min(v, axis=(0, 1))
    hi = jnp.max(v, axis=(0, 1))
    d = hi - lo
    # (v - lo) * 255 is an integer <= 65025 and d <= 255: the float32 quotient floors exactly.
    stretched = jnp.floor((v - lo) * 255.0 / jnp.maximum(d, 1.0))
    return jnp.where(d > 0, stretched, v)


def _equalize(v, m=None):
    """``ImageOps.equalize``: per-channel histogram equalisation with PIL's integer formula."""
    del m
    h, w, c = v.shape
    idx = v.astype(jnp.int32)
    flat = (idx + 256 * jnp.arange(c, dtype=jnp.int32)).reshape(-1)
    hist = jnp.zeros((c * 256,), jnp.int32).at[flat].add(1).reshape(c, 256)
    top = jnp.take_along_axis(hist, jnp.max(idx, axis=(0, 1))[:, None], axis=1)[:, 0]
    step = (h * w - top) // 255  # (C,)
    below = jnp.cumsum(hist, axis=1) - hist  # pixels strictly below each level
    lut = jnp.minimum((step[:, None] // 2 + below) // jnp.maximum(step, 1)[:, None], 255)
    mapped = lut[jnp.arange(c)[None, None, :], idx].astype(jnp.float32)
    return jnp.where(step > 0, mapped, v)


def _solarize(v, m):
    """``ImageOps.solarize(img, m)``: levels ``>= m`` become ``255 - level``."""
    return jnp.where(v < m, v, 255.0 - v)


def _posterize(v, m):
    """``ImageOps.posterize(img, int(m))``: keep the top ``int(m)`` bits (clipped to 1..8)."""
    bits = jnp.clip(jnp.floor(m), 1.0, 8.0)
    quantum = jnp.exp2(8.0 - bits)
    return jnp.floor(v / quantum) * quantum


def _blend(degenerate, v, factor):
    """``Image.blend(degenerate, img, factor)`` on 8-bit images: float32 ``d + f (x - d)``,
    clipped to [0, 255] and truncated."""
    f = jnp.asarray(factor, jnp.float32)
    return jnp.clip(jnp.trunc(degenerate + f * (v - degenerate)), 0.0, 255.0)


def _luma(v):
    """``convert("L")``: (H, W, 1) levels, ``(19595 R + 38470 G + 7471 B + 2^15) >> 16``."""
    if v.shape[-1] == 1:
        return v
    i = v.astype(jnp.int32)
    y = (i[..., 0] * 19595 + i[..., 1] * 38470 + i[..., 2] * 7471 + 32768) >> 16
    return y.astype(jnp.float32)[..., None]


def _color(v, m):
    """``ImageEnhance.Color``: blend with the luma image; the identity for C == 1."""
    if v.shape[-1] == 1:
        return v
    return _blend(jnp.broadcast_to(_luma(v), v.shape), v, m)


def _contrast(v, m):
    """``ImageEnhance.Contrast``: blend with the mean luma, ``int(mean + 0.5)``."""
    h, w, _ = v.shape
    n = h * w
    total = jnp.sum(_luma(v).astype(jnp.int32))
    mean = ((2 * total + n) // (2 * n)).astype(jnp.float32)
    return _blend(mean, v, m)


def _brightness(v, m):
    """``ImageEnhance.Brightness``: blend with black."""
    return _blend(jnp.zeros_like(v), v, m)


def _smooth(v):
    """PIL's ``ImageFilter.SMOOTH`` (kernel 1 1 1 / 1 5 1 / 1 1 1, divisor 13, +0.5 rounding), the
    one-pixel border copied from the input. The sum is an integer S and S / 13 + 0.5 is never within
    1/26 of an integer, so PIL's float32 accumulation floors to ``floor((S + 6.5) / 13)``."""
    h, w, _ = v.shape
    p = jnp.pad(v, ((1, 1), (1, 1), (0, 0)))
    total = 4.0 * v
    for dy in range(3):
        for dx in range(3):
            total = total + p[dy:dy + h, dx:dx + w]
    smoothed = jnp.floor((total + 6.5) / 13.0)
    rows = jnp.arange(h)
    cols = jnp.arange(w)
    interior = ((rows > 0) & (rows < h - 1))[:, None] & ((cols > 0) & (cols < w - 1))[None, :]
    return jnp.where(interior[..., None], smoothed, v)


def _sharpness(v, m):
    """``ImageEnhance.Sharpness``: blend with the SMOOTH-filtered image."""
    return _blend(_smooth(v), v, m)


def _fix(a):
    """PIL's 16.16 fixed point ``FIX(a) = floor(a * 65536 + 0.5)`` as int32."""
    return jnp.floor(jnp.asarray(a, jnp.float32) * 65536.0 + 0.5).astype(jnp.int32)


def _gather_or_black(v, yin, xin):
    """``v[yin, xin]`` where inside the image, 0 elsewhere (PIL's fill)."""
    h, w, _ = v.shape
    inside = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
    out = v[jnp.clip(yin, 0, h - 1), jnp.clip(xin, 0, w - 1)]
    return jnp.where(inside[..., None], out, 0.0)


def _affine_fixed(v, a0, a1, a3, a4, off_x, off_y):
    """PIL's ``affine_fixed`` (nearest, 16.16 fixed point): int32 coefficients ``a0, a1, a3, a4``
    and offsets ``off_x = FIX(a2 + a0 / 2 + a1 / 2)``, ``off_y = FIX(a5 + a3 / 2 + a4 / 2)``."""
    h, w, _ = v.shape
    y = jnp.arange(h, dtype=jnp.int32)[:, None]
    x = jnp.arange(w, dtype=jnp.int32)[None, :]
    xin = jnp.right_shift(off_x + y * a1 + x * a0, 16)  # arithmetic shift: floor division
    yin = jnp.right_shift(off_y + y * a4 + x * a3, 16)
    return _gather_or_black(v, yin, xin)


def _fix_half(m):
    """``FIX(0.5 + m / 2)`` computed without rounding ``0.5 + m / 2`` in float32."""
    return 32768 + jnp.floor(jnp.asarray(m, jnp.float32) * 32768.0 + 0.5).astype(jnp.int32)


_ONE = 65536  # FIX(1)


def _shear_x(v, m):
    """``img.transform(size, AFFINE, (1, m, 0, 0, 1, 0))``: input x = x + m y (pixel centres)."""
    return _affine_fixed(v, _ONE, _fix(m), 0, _ONE, _fix_half(m), 32768)


def _shear_y(v, m):
    """``img.transform(size, AFFINE, (1, 0, 0, m, 1, 0))``: input y = m x + y (pixel centres)."""
    return _affine_fixed(v, _ONE, 0, _fix(m), _ONE, 32768, _fix_half(m))


def _fix_offset(centre: float, p, kx: float, q, ky: float):
    """``FIX(centre + p kx + q ky)`` for float32 ``p, q`` in [-1, 1] and static half-integers
    ``kx, ky`` (|k| < 2^10), ``65536 centre`` an integer: ``p`` and ``q`` are split into their top 12
    bits and the rest, so every product and the large partial sum are exact in float32; only the
    sum of the small products (below |k| / 2048) is rounded, by ~1e-4 of a 1/65536 unit on a
    32-96 pixel image instead of ~0.1 for the plain float32 sum."""
    def split(a):
        hi = jnp.floor(a * 4096.0) / 4096.0
        return hi, a - hi

    p_hi, p_lo = split(p)
    q_hi, q_lo = split(q)
    big = (p_hi * kx + q_hi * ky) * 65536.0  # multiples of 2^-13 (times 2^16): exact
    small = (p_lo * kx + q_lo * ky) * 65536.0
    return (int(65536 * centre) + big.astype(jnp.int32)
            + jnp.floor(small + 0.5).astype(jnp.int32))


def _rotate(v, m):
    """``img.rotate(m)``: ``m`` degrees counter-clockwise about (W / 2, H / 2), nearest, black fill.
    PIL's matrix maps output to input: ``in = R(-m) (out - c) + c`` (y down)."""
    h, w, _ = v.shape
    theta = jnp.asarray(m, jnp.float32) * jnp.float32(-math.pi / 180.0)
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    cx, cy = w / 2.0, h / 2.0
    # FIX(a2 + a0/2 + a1/2) with a2 = cx - a0 cx - a1 cy, i.e. FIX(cx + a0 (1/2 - cx) + a1 (1/2 - cy)).
    off_x = _fix_offset(cx, cos, 0.5 - cx, sin, 0.5 - cy)
    off_y = _fix_offset(cy, -sin, 0.5 - cx, cos, 0.5 - cy)
    return _affine_fixed(v, _fix(cos), _fix(sin), _fix(-sin), _fix(cos), off_x, off_y)


def _translate_x(v, m):
    """``img.transform(size, AFFINE, (1, 0, m * W, 0, 1, 0))``: output column x reads input column
    ``x + floor(m W + 0.5)`` (PIL's scaling path), black outside."""
    h, w, _ = v.shape
    shift = jnp.floor(jnp.asarray(m, jnp.float32) * w + 0.5).astype(jnp.int32)
    y = jnp.broadcast_to(jnp.arange(h, dtype=jnp.int32)[:, None], (h, w))
    x = jnp.arange(w, dtype=jnp.int32)[None, :] + shift
    return _gather_or_black(v, y, jnp.broadcast_to(x, (h, w)))


def _translate_y(v, m):
    """``img.transform(size, AFFINE, (1, 0, 0, 0, 1, m * H))``: output row y reads input row
    ``y + floor(m H + 0.5)``, black outside."""
    h, w, _ = v.shape
    shift = jnp.floor(jnp.asarray(m, jnp.float32) * h + 0.5).astype(jnp.int32)
    y = jnp.arange(h, dtype=jnp.int32)[:, None] + shift
    x = jnp.broadcast_to(jnp.arange(w, dtype=jnp.int32)[None, :], (h, w))
    return _gather_or_black(v, jnp.broadcast_to(y, (h, w)), x)


_LEVEL_OPS = {
    "identity": _identity,
    "autocontrast": _autocontrast,
    "equalize": _equalize,
    "rotate": _rotate,
    "solarize": _solarize,
    "color": _color,
    "contrast": _contrast,
    "brightness": _brightness,
    "sharpness": _sharpness,
    "shear_x": _shear_x,
    "translate_x": _translate_x,
    "translate_y": _translate_y,
    "posterize": _posterize,
    "shear_y": _shear_y,
}
_BRANCHES = tuple(_LEVEL_OPS[name] for name in OPS)

# Public ops on [0, 1] images (magnitudes as SCAN passes them to PIL, see the module docstring).
identity = _on_levels(_identity)
autocontrast = _on_levels(_autocontrast)
equalize = _on_levels(_equalize)
rotate = _on_levels(_rotate)
solarize = _on_levels(_solarize)
color = _on_levels(_color)
contrast = _on_levels(_contrast)
brightness = _on_levels(_brightness)
sharpness = _on_levels(_sharpness)
shear_x = _on_levels(_shear_x)
shear_y = _on_levels(_shear_y)
translate_x = _on_levels(_translate_x)
translate_y = _on_levels(_translate_y)
posterize = _on_levels(_posterize)


def _switch(v, op, magnitude):
    return lax.switch(jnp.asarray(op, jnp.int32), _BRANCHES, v, jnp.asarray(magnitude, jnp.float32))


def apply_op(img: jax.Array, op, magnitude) -> jax.Array:
    """Op number ``op`` (index into :data:`OPS`, may be traced) with ``magnitude`` on a [0, 1] image."""
    return from_levels(_switch(to_levels(img), op, magnitude))


def apply_ops(img: jax.Array, ops: jax.Array, magnitudes: jax.Array) -> jax.Array:
    """Ops ``ops[0], ops[1], ...`` (int (n,)) with ``magnitudes`` (n,), in order, on levels (the
    image is rounded to 8 bits once, as PIL's chain of 8-bit images)."""
    n = ops.shape[0]
    if n == 0:
        return img
    v = lax.fori_loop(0, n, lambda i, v: _switch(v, ops[i], magnitudes[i]), to_levels(img))
    return from_levels(v)


# ----------------------------------------------------------------------------------------------
# RandAugment and Cutout
# ----------------------------------------------------------------------------------------------

def _ops_from_uniforms(u):
    """u: (2, n) uniforms in [0, 1) -> (ops int32 (n,), magnitudes float32 (n,))."""
    ops = jnp.minimum(jnp.floor(u[0] * NUM_OPS).astype(jnp.int32), NUM_OPS - 1)
    lo = jnp.asarray([r[0] for r in MAGNITUDE_RANGES], jnp.float32)[ops]
    hi = jnp.asarray([r[1] for r in MAGNITUDE_RANGES], jnp.float32)[ops]
    return ops, lo + (hi - lo) * u[1]


def rand_augment_from_uniforms(u: jax.Array, img: jax.Array) -> jax.Array:
    """RandAugment with its randomness given: ``u`` (2, num_ops) uniforms in [0, 1) (row 0 picks
    the ops, row 1 their magnitudes)."""
    if u.shape[-1] == 0:
        return img
    return apply_ops(img, *_ops_from_uniforms(u))


def rand_augment_params(key, num_ops: int):
    """The ops (int32 (num_ops,), indices into :data:`OPS`, drawn uniformly with replacement) and
    magnitudes (float32 (num_ops,), uniform in each op's range) that :func:`rand_augment` uses."""
    return _ops_from_uniforms(jax.random.uniform(key, (2, num_ops), jnp.float32))


def rand_augment(key, img: jax.Array, num_ops: int) -> jax.Array:
    """SCAN's ``Augment(num_ops)`` on one [0, 1] image: ``num_ops`` ops drawn uniformly with
    replacement, each with a uniform magnitude, on the image rounded to 8 bits. ``num_ops = 0``
    returns the image unchanged (not rounded)."""
    if num_ops == 0:
        return img
    return rand_augment_from_uniforms(jax.random.uniform(key, (2, num_ops), jnp.float32), img)


def cutout_box(u: jax.Array, height: int, width: int, length: int, random_length: bool = True):
    """The hole ``(y1, y2, x1, x2)`` (rows y1..y2-1, columns x1..x2-1; int32) from 3 uniforms: side
    ``L`` (uniform in 1..length, or ``length`` if not ``random_length``), centre row, centre column."""
    if random_length:
        side = 1 + jnp.minimum(jnp.floor(u[0] * length).astype(jnp.int32), length - 1)
    else:
        side = jnp.int32(length)
    half = side // 2
    y = jnp.minimum(jnp.floor(u[1] * height).astype(jnp.int32), height - 1)
    x = jnp.minimum(jnp.floor(u[2] * width).astype(jnp.int32), width - 1)
    return (jnp.clip(y - half, 0, height), jnp.clip(y + half, 0, height),
            jnp.clip(x - half, 0, width), jnp.clip(x + half, 0, width))


def cutout_from_uniforms(u: jax.Array, img: jax.Array, length: int, fill=0.0,
                         random_length: bool = True) -> jax.Array:
    """Cutout with its randomness given (3 uniforms, see :func:`cutout_box`); ``fill`` is a scalar
    or one value per channel."""
    h, w, _ = img.shape
    y1, y2, x1, x2 = cutout_box(u, h, w, length, random_length)
    rows = jnp.arange(h)
    cols = jnp.arange(w)
    hole = ((rows >= y1) & (rows < y2))[:, None] & ((cols >= x1) & (cols < x2))[None, :]
    return jnp.where(hole[..., None], jnp.asarray(fill, img.dtype), img)


def cutout(key, img: jax.Array, length: int, fill=0.0, random_length: bool = True) -> jax.Array:
    """SCAN's ``Cutout(n_holes=1, length)`` on one image (SCAN applies it to the normalised tensor,
    fill 0): a square of side ``2 (L // 2)``, ``L`` uniform in 1..length, centred on a uniform pixel,
    clipped at the borders, set to ``fill``. ``length = 0`` returns the image unchanged."""
    if length == 0:
        return img
    return cutout_from_uniforms(jax.random.uniform(key, (3,), jnp.float32), img, length, fill,
                                random_length)
