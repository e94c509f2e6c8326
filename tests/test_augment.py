"""Tests for jaxclust.data.augment, .geometric and .photometric: each op against an independent reference
on fixed parameters (numpy ports of the torchvision formulas, colorsys, PIL float images, scipy.ndimage),
the config checks, then the random pipeline (shapes, range, determinism, per-image keys)."""

import colorsys
import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jaxclust.config import ConfigError, base_config
from jaxclust.data import augment as A
from jaxclust.data import geometric as G
from jaxclust.data import photometric as P

ATOL = 1e-5


def _rand_img(seed, h, w, c):
    return np.random.RandomState(seed).rand(h, w, c).astype(np.float32)


@pytest.fixture(scope="module")
def rgb():
    x = _rand_img(0, 8, 8, 3)
    # a few special pixels: black, white, gray, pure primaries
    x[0, 0] = 0.0
    x[0, 1] = 1.0
    x[0, 2] = 0.5
    x[0, 3] = (1.0, 0.0, 0.0)
    x[0, 4] = (0.0, 1.0, 0.0)
    x[0, 5] = (0.0, 0.0, 1.0)
    x[0, 6] = (0.2, 0.2, 0.7)
    return x


# ----------------------------------------------------------------------------------------------
# numpy references (torchvision functional_tensor formulas, float64)
# ----------------------------------------------------------------------------------------------

def np_gray(x):
    x = x.astype(np.float64)
    if x.shape[-1] == 1:
        return x[..., 0]
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def np_blend(a, b, f):
    return np.clip(f * a.astype(np.float64) + (1 - f) * b, 0.0, 1.0)


def np_brightness(x, f):
    return np_blend(x, 0.0, f)


def np_contrast(x, f):
    return np_blend(x, np_gray(x).mean(), f)


def np_saturation(x, f):
    if x.shape[-1] == 1:
        return x.astype(np.float64)
    return np_blend(x, np_gray(x)[..., None], f)


def np_hue(x, h):
    if x.shape[-1] == 1:
        return x.astype(np.float64)
    out = np.empty(x.shape, np.float64)
    for idx in np.ndindex(x.shape[:-1]):
        hh, s, v = colorsys.rgb_to_hsv(*map(float, x[idx]))
        out[idx] = colorsys.hsv_to_rgb((hh + h) % 1.0, s, v)
    return out


NP_JITTER = [np_brightness, np_contrast, np_saturation, np_hue]


def np_bilinear_upsample(a, oh, ow):
    """torch F.interpolate(mode='bilinear', align_corners=False) (antialias is a no-op upsampling)."""
    def axis(o, n):
        src = np.maximum((np.arange(o) + 0.5) * (n / o) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n - 1)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, src - i0
    y0, y1, ly = axis(oh, a.shape[0])
    x0, x1, lx = axis(ow, a.shape[1])
    a = a.astype(np.float64)
    ly = ly[:, None, None]
    lx = lx[None, :, None]
    top = a[y0][:, x0] * (1 - lx) + a[y0][:, x1] * lx
    bot = a[y1][:, x0] * (1 - lx) + a[y1][:, x1] * lx
    return top * (1 - ly) + bot * ly


def pil_resize(a, size_hw, resample, box=None):
    """Per-channel PIL resize in float ('F') mode; box = (top, left, height, width) crops first."""
    Image = pytest.importorskip("PIL.Image")
    chans = []
    for c in range(a.shape[-1]):
        im = Image.fromarray(np.ascontiguousarray(a[..., c], np.float32), mode="F")
        if box is not None:
            t, l, h, w = box
            im = im.crop((l, t, l + w, t + h))
        chans.append(np.asarray(im.resize((size_hw[1], size_hw[0]), resample)))
    return np.stack(chans, -1)


def np_tv_kernel(sigma, k):
    x = np.arange(k, dtype=np.float64) - (k - 1) / 2
    p = np.exp(-0.5 * (x / sigma) ** 2)
    return p / p.sum()


def tv_crop_params(rng, height, width, scale, ratio):
    """Python transcription of torchvision RandomResizedCrop.get_params."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h + 1), rng.randint(0, width - w + 1), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


# ----------------------------------------------------------------------------------------------
# Colour ops
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("f", [0.0, 0.6, 1.0, 1.4])
def test_brightness_contrast_saturation(rgb, f):
    np.testing.assert_allclose(P.adjust_brightness(rgb, f), np_brightness(rgb, f), atol=ATOL)
    np.testing.assert_allclose(P.adjust_contrast(rgb, f), np_contrast(rgb, f), atol=ATOL)
    np.testing.assert_allclose(P.adjust_saturation(rgb, f), np_saturation(rgb, f), atol=ATOL)


def test_single_channel_colour_ops(rgb):
    g = rgb[..., :1]
    np.testing.assert_allclose(P.adjust_brightness(g, 1.3), np_brightness(g, 1.3), atol=ATOL)
    # contrast of a 1-channel tensor blends towards the mean of the image itself
    np.testing.assert_allclose(P.adjust_contrast(g, 0.7), np_blend(g, g.mean(), 0.7), atol=ATOL)
    for out in (P.adjust_saturation(g, 0.3), P.adjust_hue(g, 0.2), P.to_grayscale(g)):
        assert out.shape == g.shape
        np.testing.assert_array_equal(out, g)


def test_grayscale(rgb):
    out = np.asarray(P.to_grayscale(rgb))
    assert out.shape == rgb.shape
    for c in range(3):
        np.testing.assert_allclose(out[..., c], np_gray(rgb), atol=ATOL)


@pytest.mark.parametrize("h", [-0.5, -0.1, 0.0, 0.05, 0.37, 0.5])
def test_hue(rgb, h):
    np.testing.assert_allclose(P.adjust_hue(rgb, h), np_hue(rgb, h), atol=ATOL)


def test_hsv_roundtrip(rgb):
    hsv = np.asarray(P.rgb_to_hsv(rgb))
    ref = np.array([colorsys.rgb_to_hsv(*map(float, p)) for p in rgb.reshape(-1, 3)])
    np.testing.assert_allclose(hsv.reshape(-1, 3), ref, atol=ATOL)
    np.testing.assert_allclose(P.hsv_to_rgb(hsv), rgb, atol=ATOL)


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
def test_color_jitter_order(rgb, order):
    params = (1.3, 0.6, 1.4, 0.08)
    out = P.color_jitter(rgb, jnp.array(order), *params)
    ref = rgb
    for op in order:
        ref = NP_JITTER[op](ref, params[op])
    np.testing.assert_allclose(out, ref, atol=ATOL)
    # one channel: saturation and hue are skipped, brightness/contrast keep their slot order
    g = rgb[..., :1]
    out = P.color_jitter(g, jnp.array(order), *params)
    ref = g
    for op in order:
        ref = NP_JITTER[op](ref, params[op]) if op < 2 else ref
    np.testing.assert_allclose(out, ref, atol=ATOL)


def test_color_jitter_order_matters_and_disabled_ops(rgb):
    params = (1.3, 0.6, 1.4, 0.08)
    a = np.asarray(P.color_jitter(rgb, jnp.array([0, 1, 2, 3]), *params))
    b = np.asarray(P.color_jitter(rgb, jnp.array([3, 2, 1, 0]), *params))
    assert np.abs(a - b).max() > 1e-2
    # disabled ops are exact identities
    out = P.color_jitter(rgb, jnp.array([2, 0, 3, 1]), *params, enabled=(False, True, False, False))
    np.testing.assert_allclose(out, np_contrast(rgb, params[1]), atol=ATOL)


def test_sample_jitter_params():
    cfg = A.AugmentConfig(brightness=0.4, contrast=0.2, saturation=1.5, hue=0.1)
    keys = jax.random.split(jax.random.key(1), 2000)
    order, f = jax.jit(jax.vmap(lambda k: A.sample_jitter_params(k, cfg)))(keys)
    order, f = np.asarray(order), np.asarray(f)
    assert (np.sort(order, axis=1) == np.arange(4)).all()
    counts = {p: 0 for p in itertools.permutations(range(4))}
    for o in map(tuple, order):
        counts[o] += 1
    assert min(counts.values()) > 40  # 24 orders, ~83 each: torchvision shuffles every call
    for j, (lo, hi) in enumerate([(0.6, 1.4), (0.8, 1.2), (0.0, 2.5), (-0.1, 0.1)]):
        assert f[:, j].min() >= lo and f[:, j].max() <= hi
        assert f[:, j].min() < lo + 0.05 * (hi - lo) and f[:, j].max() > hi - 0.05 * (hi - lo)


def test_solarize_and_flip(rgb):
    np.testing.assert_array_equal(P.solarize(rgb, 0.5), np.where(rgb >= 0.5, 1 - rgb, rgb))
    np.testing.assert_array_equal(G.horizontal_flip(rgb), rgb[:, ::-1])


# ----------------------------------------------------------------------------------------------
# Blur
# ----------------------------------------------------------------------------------------------

def test_gaussian_kernel():
    want = np_tv_kernel(1.7, 23)
    # float32 exp and a 23-term normalising sum: 8 ulps of the peak (0.235, spacing 1.5e-8) = 1.2e-7
    np.testing.assert_allclose(P.gaussian_kernel1d(1.7, 23), want, rtol=0, atol=8 * np.spacing(np.float32(want.max())))


def test_blur_torchvision_reflect_padding():
    x = _rand_img(2, 16, 16, 3)
    k, sigma = 7, 1.3
    kern = np_tv_kernel(sigma, k)
    # torchvision: F.pad(mode="reflect") then a valid 2-D correlation with the separable kernel
    xp = np.pad(x.astype(np.float64), ((k // 2, k // 2), (k // 2, k // 2), (0, 0)), mode="reflect")
    ref = np.zeros(x.shape)
    for i in range(k):
        for j in range(k):
            ref += kern[i] * kern[j] * xp[i:i + 16, j:j + 16]
    np.testing.assert_allclose(P.gaussian_blur(x, sigma, k), ref, atol=ATOL)


def test_blur_kernel_wider_than_image():
    # kernel 23 on an 8x8 image (torch would refuse the padding): repeated mirroring,
    # i.e. scipy.ndimage mode "mirror" (torch "reflect"; scipy's own "reflect" repeats the edge).
    x = _rand_img(3, 8, 8, 1)
    kern = np_tv_kernel(2.0, 23)
    ref = ndimage.correlate1d(x.astype(np.float64), kern, axis=0, mode="mirror")
    ref = ndimage.correlate1d(ref, kern, axis=1, mode="mirror")
    np.testing.assert_allclose(P.gaussian_blur(x, 2.0, 23), ref, atol=ATOL)


# ----------------------------------------------------------------------------------------------
# Resampling
# ----------------------------------------------------------------------------------------------

def test_resized_crop_upsample_vs_numpy_bilinear():
    x = _rand_img(4, 16, 16, 3)
    top, left, h, w = 3, 5, 6, 4
    out = G.resized_crop(x, top, left, h, w, 12)
    ref = np_bilinear_upsample(x[top:top + h, left:left + w], 12, 12)
    np.testing.assert_allclose(out, ref, atol=ATOL)
    # full-image "crop" at the same size is the identity
    np.testing.assert_allclose(G.resized_crop(x, 0, 0, 16, 16, 16), x, atol=1e-6)


@pytest.mark.parametrize("box,out", [((2, 1, 11, 13), 8), ((0, 3, 16, 9), 8), ((4, 4, 5, 7), 8),
                                     ((1, 2, 12, 12), 16)])
def test_resized_crop_vs_pil(box, out):
    """torchvision on PIL images: img.crop(box).resize(size, BILINEAR) (antialiased when reducing)."""
    Image = pytest.importorskip("PIL.Image")
    x = _rand_img(5, 16, 16, 3)
    ref = pil_resize(x, (out, out), Image.BILINEAR, box=box)
    np.testing.assert_allclose(G.resized_crop(x, *box, out), ref, atol=ATOL)


@pytest.mark.parametrize("size", [(8, 8), (24, 24), (16, 16)])
def test_resize_bicubic_vs_pil(size):
    Image = pytest.importorskip("PIL.Image")
    x = _rand_img(6, 16, 16, 1)
    ref = np.clip(pil_resize(x, size, Image.BICUBIC), 0, 1)
    np.testing.assert_allclose(G.resize(x, *size, method="bicubic"), ref, atol=ATOL)


def test_crop_fallback():
    # no try can succeed -> torchvision's centre crop with the ratio clamped
    assert tuple(map(int, A.sample_crop_params(jax.random.key(0), 8, 8, (1.0, 1.0), (2.0, 3.0)))) \
        == (2, 0, 4, 8)
    assert tuple(map(int, A.sample_crop_params(jax.random.key(0), 4, 16, (1.0, 1.0), (1.0, 1.0)))) \
        == (0, 6, 4, 4)
    # ... as the python transcription of torchvision's get_params used below
    assert tv_crop_params(np.random.RandomState(1), 8, 8, (1.0, 1.0), (2.0, 3.0)) == (2, 0, 4, 8)
    assert tv_crop_params(np.random.RandomState(1), 4, 16, (1.0, 1.0), (1.0, 1.0)) == (0, 6, 4, 4)


def test_crop_sampling_matches_torchvision_distribution():
    H, W, scale, ratio = 32, 24, (0.08, 1.0), (3 / 4, 4 / 3)
    keys = jax.random.split(jax.random.key(2), 4000)
    t, l, h, w = map(np.asarray, jax.jit(jax.vmap(
        lambda k: A.sample_crop_params(k, H, W, scale, ratio)))(keys))
    assert (h > 0).all() and (w > 0).all() and (t >= 0).all() and (l >= 0).all()
    assert (t + h <= H).all() and (l + w <= W).all()
    # rounding-aware ratio / area bounds of accepted tries
    assert ((w + 0.5) / np.maximum(h - 0.5, 1e-9) >= ratio[0]).all()
    assert ((w - 0.5) / (h + 0.5) <= ratio[1]).all()
    assert ((w + 0.5) * (h + 0.5) >= scale[0] * H * W).all()
    rng = np.random.RandomState(0)
    ref = np.array([tv_crop_params(rng, H, W, scale, ratio) for _ in range(20000)])
    for ours, theirs in [(h * w, ref[:, 2] * ref[:, 3]), (h, ref[:, 2]), (w, ref[:, 3]),
                         (t + h / 2, ref[:, 0] + ref[:, 2] / 2)]:
        assert abs(ours.mean() - theirs.mean()) < 0.04 * theirs.mean()
        assert abs(ours.std() - theirs.std()) < 0.06 * theirs.std()


def test_affine_identity_rot90_and_shift():
    x = _rand_img(7, 8, 8, 3)
    np.testing.assert_allclose(G.affine_transform(x, 0.0, (0.0, 0.0), 1.0), x, atol=1e-6)
    # +90 degrees is counter-clockwise as displayed, i.e. np.rot90 (exact: pixel centres map to
    # pixel centres of a square image)
    np.testing.assert_allclose(G.affine_transform(x, 90.0, (0.0, 0.0), 1.0), np.rot90(x), atol=1e-5)
    np.testing.assert_allclose(G.affine_transform(x, -90.0, (0.0, 0.0), 1.0), np.rot90(x, -1),
                               atol=1e-5)
    # shift (dx, dy) = (1, 2): content moves right by 1 and down by 2, zeros come in
    ref = np.zeros_like(x)
    ref[2:, 1:] = x[:-2, :-1]
    np.testing.assert_allclose(G.affine_transform(x, 0.0, (1.0, 2.0), 1.0), ref, atol=1e-6)


def test_affine_general_vs_scipy():
    x = _rand_img(8, 10, 10, 1)
    angle, (dx, dy), s = 23.0, (0.7, -1.3), 1.15
    out = np.asarray(G.affine_transform(x, angle, (dx, dy), s))
    c = 4.5
    th = math.radians(angle)
    py, px = np.mgrid[0:10, 0:10].astype(np.float64)
    ux, uy = px - c - dx, py - c - dy
    # inverse of p = c + s * R(angle) (q - c) + t, with R counter-clockwise in y-down coordinates
    qx = c + (math.cos(th) * ux - math.sin(th) * uy) / s
    qy = c + (math.sin(th) * ux + math.cos(th) * uy) / s
    ref = ndimage.map_coordinates(x[..., 0].astype(np.float64), [qy, qx], order=1,
                                  mode="grid-constant", cval=0.0)
    np.testing.assert_allclose(out[..., 0], ref, atol=ATOL)
    # and the forward map sends the input pixel q to p (checks the sign conventions)
    qx0, qy0 = 6.0, 3.0
    px0 = c + s * (math.cos(th) * (qx0 - c) + math.sin(th) * (qy0 - c)) + dx
    py0 = c + s * (-math.sin(th) * (qx0 - c) + math.cos(th) * (qy0 - c)) + dy
    i = np.argmin((qx - qx0) ** 2 + (qy - qy0) ** 2)
    assert abs(px.flat[i] - px0) <= 0.75 and abs(py.flat[i] - py0) <= 0.75


def test_normalize():
    x = _rand_img(9, 4, 4, 3)
    m, s = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    np.testing.assert_allclose(A.normalize(x, m, s), (x - np.array(m)) / np.array(s), atol=1e-6)


# ----------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------

def test_config_roundtrip_and_validation():
    cfg_dict = A.default_config()
    assert set(cfg_dict.keys()) == set(A.CONFIG_KEYS)
    cfg = A.AugmentConfig.from_config(cfg_dict)
    assert cfg == A.AugmentConfig() and hash(cfg) == hash(A.AugmentConfig())
    cfg_dict.crop_scale = [0.2, 1]
    cfg_dict.mean = [0.5, 0.5, 0.5]
    cfg2 = A.AugmentConfig.from_config(cfg_dict)
    assert cfg2.crop_scale == (0.2, 1.0) and isinstance(cfg2.mean, tuple)
    hash(cfg2)
    del cfg_dict["hue"]
    with pytest.raises(KeyError, match="hue"):
        A.AugmentConfig.from_config(cfg_dict)
    for bad in [dict(blur_kernel=4), dict(flip_prob=1.5), dict(hue=0.6), dict(std=(1.0, 0.0, 1.0)),
                dict(mean=(0.5,), std=(0.5, 0.5))]:
        with pytest.raises(ValueError):
            A.AugmentConfig(**bad)


def _config_with(path, value):
    """base_config(), asymmetric, with the key at `path` set to `value` (deleted first: any type
    passes ConfigDict's type check), or deleted if `value` is None."""
    cfg = base_config()
    cfg.augment.asymmetric = True
    *parents, key = path.split(".")
    section = functools.reduce(lambda c, name: c[name], parents, cfg)
    del section[key]
    if value is not None:
        section[key] = value
    return cfg


@pytest.mark.parametrize("path, value", [  # one per kind of check; the message names `path`
    ("augment.crop_scale", (0.5, 0.1)), ("augment.crop_ratio", (1.0,)), ("augment.affine_scale", (0.0, 1.0)),
    ("augment.blur_sigma", (0.0, 1.0)), ("augment.flip_prob", 1.5), ("augment.brightness", -0.1),
    ("augment.hue", 0.6), ("augment.solarize_threshold", "high"), ("augment.test_resize", 0),
    ("augment.test_crop", 300), ("augment.blur_kernel", 4), ("augment.mean", (0.5,)),
    ("augment.std", (0.2, 0.0, 0.2)), ("augment.view2.blur_prob", 2.0), ("augment.view2.flip_prob", 3.0),
    ("augment.view2.randaugment_ops", -1), ("augment.view2.solarize_prob", None), ("augment.hue", None),
    ("data.channels", 1)])  # data.channels: 3 mean/std values for grey images
def test_validate_raises_config_error_naming_the_key(path, value):
    cfg = _config_with(path, value)
    with pytest.raises(ConfigError, match=path):
        A.validate(cfg)
    if value is not None and path.startswith("augment"):  # the same checks as when the views are built
        with pytest.raises(ConfigError, match=path):
            A.view_configs(cfg.augment)


def test_validate_accepts_the_base_config():
    cfg = base_config()
    A.validate(cfg)
    cfg.augment.asymmetric, cfg.augment.view2.randaugment_ops, cfg.augment.view2.cutout_length = True, 4, 16
    cfg.data.channels, cfg.augment.mean, cfg.augment.std = 1, (0.5,), (0.25,)
    A.validate(cfg)


# ----------------------------------------------------------------------------------------------
# Pipelines (each config compiles once per module)
# ----------------------------------------------------------------------------------------------

RGB_CFG = A.AugmentConfig(blur_prob=0.5, blur_kernel=5, solarize_prob=0.3)  # ProPos + blur + solarize
GRAY_CFG = A.AugmentConfig(crop=False, affine=True, flip_prob=0.0, blur_prob=0.5, blur_kernel=3,
                           mean=(0.5,), std=(0.25,))
N = 6


@pytest.fixture(scope="module")
def rgb_batch():
    return np.random.RandomState(10).randint(0, 256, (N, 16, 16, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def gray_batch():
    x = np.zeros((N, 8, 8, 1), np.uint8)
    x[:, 2:6, 3:5] = 200  # digit-like blob so that the affine transform has something to move
    x[:, 1, 1:7] = np.arange(N)[:, None] * 40
    return x


@pytest.fixture(scope="module")
def keys():
    return A.example_keys(jax.random.key(42), jnp.arange(N))


@pytest.fixture(scope="module")
def rgb_out(keys, rgb_batch):
    return np.asarray(A.augment_batch(keys, rgb_batch, RGB_CFG, 8))


@pytest.fixture(scope="module")
def gray_out(keys, gray_batch):
    return np.asarray(A.augment_batch(keys, gray_batch, GRAY_CFG, 8))


def _unnorm(x, cfg):
    return x * np.array(cfg.std) + np.array(cfg.mean)


def test_pipeline_shapes_range(rgb_out, gray_out):
    for out, cfg, c in [(rgb_out, RGB_CFG, 3), (gray_out, GRAY_CFG, 1)]:
        assert out.shape == (N, 8, 8, c) and out.dtype == np.float32
        assert np.isfinite(out).all()
        raw = _unnorm(out, cfg)
        assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5


def test_pipeline_deterministic_and_key_dependent(keys, rgb_batch, rgb_out, gray_batch, gray_out):
    np.testing.assert_array_equal(A.augment_batch(keys, rgb_batch, RGB_CFG, 8), rgb_out)
    np.testing.assert_array_equal(A.augment_batch(keys, gray_batch, GRAY_CFG, 8), gray_out)
    other = A.example_keys(jax.random.key(43), jnp.arange(N))
    diff = np.abs(np.asarray(A.augment_batch(other, rgb_batch, RGB_CFG, 8)) - rgb_out)
    assert (diff.reshape(N, -1).max(1) > 1e-3).all()
    # identical images with different per-image keys get different views
    same = np.repeat(rgb_batch[:1], N, axis=0)
    views = np.asarray(A.augment_batch(keys, same, RGB_CFG, 8))
    assert all(np.abs(views[i] - views[j]).max() > 1e-3 for i in range(N) for j in range(i))


def test_pipeline_batch_order_independent(keys, rgb_batch, rgb_out, gray_batch, gray_out):
    perm = np.array([3, 0, 5, 1, 4, 2])
    kp = keys[perm]
    np.testing.assert_allclose(A.augment_batch(kp, rgb_batch[perm], RGB_CFG, 8), rgb_out[perm],
                               atol=1e-6)
    np.testing.assert_allclose(A.augment_batch(kp, gray_batch[perm], GRAY_CFG, 8), gray_out[perm],
                               atol=1e-6)


def test_raw_keys_match_typed_keys(keys, gray_batch, gray_out):
    raw = jax.random.key_data(keys)
    assert raw.shape == (N, 2)
    np.testing.assert_array_equal(A.augment_batch(raw, gray_batch, GRAY_CFG, 8), gray_out)


def test_affine_moves_digits(gray_batch, gray_out):
    plain = (gray_batch / 255.0 - 0.5) / 0.25
    assert (np.abs(gray_out - plain).reshape(N, -1).max(1) > 1e-2).all()


def test_augment_image_matches_batch(keys, rgb_batch, rgb_out):
    one = jax.jit(A.augment_image, static_argnames=("cfg", "out_size"))(
        keys[2], rgb_batch[2], cfg=RGB_CFG, out_size=8)
    np.testing.assert_allclose(A.normalize(one, RGB_CFG.mean, RGB_CFG.std), rgb_out[2], atol=1e-5)


def test_flip_only_pipeline(keys, rgb_batch):
    cfg = A.AugmentConfig(crop=False, flip_prob=1.0, jitter_prob=0.0, grayscale_prob=0.0)
    out = A.augment_batch(keys, rgb_batch, cfg, 16)
    ref = A.eval_batch(rgb_batch[:, :, ::-1], cfg, 16)
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_eval_batch(rgb_batch):
    cfg = RGB_CFG
    out = np.asarray(A.eval_batch(rgb_batch, cfg, 16))
    np.testing.assert_allclose(out, A.normalize(rgb_batch / np.float32(255), cfg.mean, cfg.std),
                               atol=1e-6)
    small = np.asarray(A.eval_batch(rgb_batch, cfg, 8))
    assert small.shape == (N, 8, 8, 3)
    np.testing.assert_array_equal(small, A.eval_batch(rgb_batch, cfg, 8))  # no randomness


# ----------------------------------------------------------------------------------------------
# Test-time Resize + CenterCrop, and the asymmetric (BYOL) two-view recipe
# ----------------------------------------------------------------------------------------------

def pil_resize_center_crop(a, resize_to, crop):
    """Independent reference: torchvision Resize(resize_to) (shorter side, PIL bilinear) then
    CenterCrop(crop), on float PIL images channel by channel."""
    Image = pytest.importorskip("PIL.Image")
    h, w = a.shape[:2]
    size = (resize_to, int(resize_to * w / h)) if h <= w else (int(resize_to * h / w), resize_to)
    resized = pil_resize(a, size, Image.BILINEAR)
    top, left = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
    return resized[top:top + crop, left:left + crop]


@pytest.mark.parametrize("shape,resize_to,crop", [((20, 30), 16, 14), ((31, 17), 12, 9), ((18, 18), 22, 20)])
def test_resize_center_crop_vs_pil(shape, resize_to, crop):
    x = _rand_img(11, *shape, 3)
    out = jax.jit(G.resize_center_crop, static_argnums=(1, 2))(x, resize_to, crop)
    np.testing.assert_allclose(out, pil_resize_center_crop(x, resize_to, crop), atol=ATOL)


def test_eval_batch_test_resized_crop():
    """Official test_resized_crop: Resize(256) + CenterCrop(224) then the image_size resize (here
    scaled down: Resize(16) + CenterCrop(14) on 20x20, then bicubic to 12)."""
    Image = pytest.importorskip("PIL.Image")
    images = np.random.RandomState(12).randint(0, 256, (2, 20, 20, 3)).astype(np.uint8)
    cfg = A.AugmentConfig(test_resized_crop=True, test_resize=16, test_crop=14)
    out = np.asarray(A.eval_batch(images, cfg, 12))
    for i in range(2):
        cropped = pil_resize_center_crop(images[i] / np.float32(255), 16, 14)
        ref = np.clip(pil_resize(cropped, (12, 12), Image.BICUBIC), 0, 1)
        np.testing.assert_allclose(out[i], (ref - np.array(cfg.mean)) / np.array(cfg.std), atol=1e-4)
    with pytest.raises(ValueError, match="test_crop"):
        A.AugmentConfig(test_resized_crop=True, test_resize=16, test_crop=20)


def test_view_configs_byol_recipe():
    import ml_collections

    cfg = base_config().augment
    one, two = A.view_configs(cfg)
    assert one == two == A.AugmentConfig.from_config(cfg)  # symmetric by default
    cfg.asymmetric = True
    cfg.blur_prob, cfg.solarize_prob, cfg.saturation = 1.0, 0.0, 0.2  # official byol_transform
    one, two = A.view_configs(cfg)
    assert (one.blur_prob, one.solarize_prob, two.blur_prob, two.solarize_prob) == (1.0, 0.0, 0.1, 0.2)
    assert one.saturation == two.saturation == 0.2 and one.crop_scale == two.crop_scale
    assert one.flip_prob == two.flip_prob == 0.5  # view2.flip_prob -1: as view 1
    cfg.flip_prob, cfg.view2.flip_prob = 0.0, 0.5  # SCAN's self-label views: weak unflipped, strong flipped
    one, two = A.view_configs(cfg)
    assert (one.flip_prob, two.flip_prob) == (0.0, 0.5)
    assert isinstance(cfg.view2, ml_collections.ConfigDict)


def test_two_views_use_their_own_config(monkeypatch):
    """trainer.two_views hands view 1's config to the first view and view 2's to the second, with the
    per-view key slots 1 and 2 (the augmentation itself is tested above)."""
    from jaxclust import trainer

    calls = []
    monkeypatch.setattr(trainer, "augment_batch", lambda k, images, cfg, size: calls.append((k, cfg)) or cfg)
    views = (A.AugmentConfig(blur_prob=1.0), A.AugmentConfig(blur_prob=0.1, solarize_prob=0.2))
    key, idx = jax.random.key(1), jnp.arange(3)
    assert trainer.two_views(key, None, idx, views, 8) == list(views)
    assert trainer.two_views(key, None, idx, views[0], 8) == [views[0], views[0]]  # one config: both views
    slots = [jax.random.fold_in(jax.random.fold_in(key, 2), v) for v in (1, 2)]
    for (k, _), expected in zip(calls[:2], slots):
        np.testing.assert_array_equal(jax.random.key_data(k[2]), jax.random.key_data(expected))


# ----------------------------------------------------------------------------------------------
# The fused pipeline against a straightforward formulation (each op applied in turn, as torchvision
# does, from the same uniforms): hue computed once inside ColorJitter and the flip folded into the
# crop / affine sampling change nothing beyond float rounding.
# ----------------------------------------------------------------------------------------------

# Outputs lie in [0, 1] before normalisation: 32 float32 ulps of 1.0 covers the summation-order and
# contraction differences of the resampling dot products and the jitter chain.
PIPELINE_ATOL = 32 * float(np.finfo(np.float32).eps)


def straightforward_augment(key, image, cfg, out_size):
    """One image, one op after another with concrete parameters, from the uniforms of `key`."""
    u = np.asarray(jax.random.uniform(key, (A._N_UNIFORMS,), jnp.float32))
    x = A.to_float(image)
    h, w, c = x.shape
    if cfg.crop:
        x = G.resized_crop(x, *A._crop_from_uniforms(jnp.asarray(u[A._U_CROP]), h, w, cfg.crop_scale,
                                                      cfg.crop_ratio), out_size)
    if cfg.affine:
        x = G.affine_transform(x, *A._affine_from_uniforms(jnp.asarray(u[A._U_AFFINE]), cfg))
    if u[A._U_FLIP] < cfg.flip_prob:
        x = G.horizontal_flip(x)
    if cfg.jitter_enabled and u[A._U_JITTER_P] < cfg.jitter_prob:
        order, factors = A._jitter_from_uniforms(jnp.asarray(u[A._U_JITTER]), cfg)
        ops = [P.adjust_brightness, P.adjust_contrast, P.adjust_saturation, P.adjust_hue]
        strengths = (cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)
        for op in np.asarray(order):
            if strengths[op] > 0:
                x = ops[op](x, factors[op])
    if c == 3 and u[A._U_GRAY] < cfg.grayscale_prob:
        x = P.to_grayscale(x)
    if cfg.blur_prob > 0 and u[A._U_BLUR_P] < cfg.blur_prob:
        x = P.gaussian_blur(x, A._scale_u(u[A._U_BLUR_SIGMA], *cfg.blur_sigma), cfg.blur_kernel)
    if cfg.solarize_prob > 0 and u[A._U_SOLARIZE] < cfg.solarize_prob:
        x = P.solarize(x, cfg.solarize_threshold)
    return np.asarray(x)


@pytest.mark.parametrize("name", ["rgb", "gray_flip"])
def test_pipeline_matches_straightforward_formulation(keys, rgb_batch, gray_batch, name):
    cfg, images = {"rgb": (RGB_CFG, rgb_batch),
                   "gray_flip": (dataclasses.replace(GRAY_CFG, flip_prob=0.5), gray_batch)}[name]
    out = _unnorm(np.asarray(A.augment_batch(keys, images, cfg, 8)), cfg)
    for i in range(N):
        np.testing.assert_allclose(out[i], straightforward_augment(keys[i], images[i], cfg, 8),
                                   rtol=0, atol=PIPELINE_ATOL)


def test_color_jitter_every_order_vs_sequential_ops(rgb):
    """All 24 orders (hue in each slot), batched as in the pipeline, against the ops one by one."""
    params = (1.3, 0.6, 1.4, 0.08)
    orders = np.array(list(itertools.permutations(range(4))), np.int32)
    out = jax.jit(jax.vmap(lambda o: P.color_jitter(rgb, o, *params)))(orders)
    ops = [P.adjust_brightness, P.adjust_contrast, P.adjust_saturation, P.adjust_hue]
    for order, got in zip(orders, np.asarray(out)):
        ref = rgb
        for op in order:
            ref = ops[op](ref, params[op])
        np.testing.assert_allclose(got, ref, rtol=0, atol=PIPELINE_ATOL)


def test_flip_folded_into_the_sampling():
    x = _rand_img(13, 12, 10, 3)
    for flip in (False, True):
        crop = G.resized_crop(x, 2, 1, 9, 7, 8, flip=jnp.asarray(flip))
        ref = G.resized_crop(x, 2, 1, 9, 7, 8)
        np.testing.assert_allclose(crop, G.horizontal_flip(ref) if flip else ref, rtol=0, atol=PIPELINE_ATOL)
        affine = G.affine_transform(x, 17.0, (0.4, -0.8), 1.07, flip=jnp.asarray(flip))
        ref = G.affine_transform(x, 17.0, (0.4, -0.8), 1.07)
        np.testing.assert_allclose(affine, G.horizontal_flip(ref) if flip else ref, rtol=0, atol=PIPELINE_ATOL)
