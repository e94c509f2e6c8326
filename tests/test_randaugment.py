"""Tests for jaxclust.data.randaugment: every op against PIL (the calls SCAN's data/augment.py makes),
RandAugment's sampling (uniform ops with replacement, magnitude ranges) and op chaining, Cutout against
a numpy port of SCAN's Cutout, and the wiring into jaxclust.data.augment (off = unchanged, on = SCAN's
order, the hole exactly 0 after normalisation).

Every jitted function is built once per module (JAX compile time dominates)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from jaxclust.data import augment as A
from jaxclust.data import randaugment as R

# ----------------------------------------------------------------------------------------------
# PIL references: SCAN's op functions without the random sign flip (magnitudes are given here)
# ----------------------------------------------------------------------------------------------


def pil_op(name, arr, v):
    """SCAN's call for op `name` with magnitude v on a uint8 (H, W, C) array -> uint8 (H, W, C)."""
    im = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
    w, h = im.size
    out = {
        "identity": lambda: im,
        "autocontrast": lambda: ImageOps.autocontrast(im),
        "equalize": lambda: ImageOps.equalize(im),
        "rotate": lambda: im.rotate(v),
        "solarize": lambda: ImageOps.solarize(im, v),
        "color": lambda: ImageEnhance.Color(im).enhance(v),
        "contrast": lambda: ImageEnhance.Contrast(im).enhance(v),
        "brightness": lambda: ImageEnhance.Brightness(im).enhance(v),
        "sharpness": lambda: ImageEnhance.Sharpness(im).enhance(v),
        "shear_x": lambda: im.transform(im.size, Image.AFFINE, (1, v, 0, 0, 1, 0)),
        "translate_x": lambda: im.transform(im.size, Image.AFFINE, (1, 0, v * w, 0, 1, 0)),
        "translate_y": lambda: im.transform(im.size, Image.AFFINE, (1, 0, 0, 0, 1, v * h)),
        "posterize": lambda: ImageOps.posterize(im, int(v)),
        "shear_y": lambda: im.transform(im.size, Image.AFFINE, (1, 0, 0, v, 1, 0)),
    }[name]()
    return np.asarray(out).reshape(arr.shape)


def exact_autocontrast(arr):
    """floor((x - lo) * 255 / (hi - lo)) per channel in integer arithmetic (identity if hi == lo)."""
    x = arr.astype(np.int64)
    lo, hi = x.min(axis=(0, 1)), x.max(axis=(0, 1))
    d = hi - lo
    return np.where(d > 0, (x - lo) * 255 // np.maximum(d, 1), x)


# Non-square images (catch width/height mix-ups), more than 255 pixels (else PIL's equalize is the
# identity: step = (N - count(max)) // 255) and restricted ranges (else autocontrast is the identity).
@pytest.fixture(scope="module")
def rgb_imgs():
    rs = np.random.RandomState(0)
    ranges = [(0, 255), (50, 150), (100, 131)]
    return np.stack([rs.randint(lo, hi + 1, (20, 28, 3)) for lo, hi in ranges]).astype(np.uint8)


@pytest.fixture(scope="module")
def gray_imgs():
    rs = np.random.RandomState(1)
    return np.stack([rs.randint(30, 201, (28, 20, 1)), rs.randint(0, 256, (28, 20, 1))]).astype(np.uint8)


@pytest.fixture(scope="module")
def op_fn():
    """jit(vmap(apply_op)) over images, op and magnitude traced: one compile per image shape."""
    return jax.jit(jax.vmap(R.apply_op, in_axes=(0, None, None)))


def _levels(x):
    x = np.asarray(x) * 255.0
    levels = np.round(x)
    np.testing.assert_allclose(x, levels, atol=1e-3)  # outputs lie on the 8-bit grid
    return levels.astype(np.int64)


MAGNITUDES = {
    "identity": [0.5],
    "autocontrast": [0.0],
    "equalize": [0.0],
    "rotate": [-23.7, 8.2, 30.0],
    "solarize": [17.5, 128.0, 230.9],
    "color": [0.05, 0.37, 0.95],
    "contrast": [0.05, 0.37, 0.95],
    "brightness": [0.05, 0.37, 0.95],
    "sharpness": [0.05, 0.37, 0.95],
    "shear_x": [-0.1, 0.043, 0.0871],
    "translate_x": [-0.1, 0.062, 0.0913],
    "translate_y": [-0.1, 0.062, 0.0913],
    "posterize": [4.0, 5.5, 7.99],
    "shear_y": [-0.1, 0.043, 0.0871],
}


def test_op_list_is_scans():
    assert R.OPS == ("identity", "autocontrast", "equalize", "rotate", "solarize", "color", "contrast",
                     "brightness", "sharpness", "shear_x", "translate_x", "translate_y", "posterize", "shear_y")
    assert R.MAGNITUDE_RANGES[R.OPS.index("rotate")] == (-30.0, 30.0)
    assert R.MAGNITUDE_RANGES[R.OPS.index("solarize")] == (0.0, 256.0)
    assert R.MAGNITUDE_RANGES[R.OPS.index("posterize")] == (4.0, 8.0)
    assert set(MAGNITUDES) == set(R.OPS)


@pytest.mark.parametrize("name", R.OPS)
def test_op_matches_pil(name, op_fn, rgb_imgs, gray_imgs):
    """Exact (every uint8 level) for every op but autocontrast: PIL computes its table in float64 as
    int(x * scale - lo * scale), which is one level below the exact value for ~0.4% of (lo, hi, x)
    where (x - lo) * 255 / (hi - lo) is an integer; we compute the exact value, so the tolerance there
    is one level, and only at those points. (Rotation: PIL's fixed-point coefficients come from float64
    cos/sin, ours from float32; they agree for these angles and sizes, while over many random angles
    1-3 pixels per million read their neighbour, see the module docstring.)"""
    op = R.OPS.index(name)
    for imgs in (rgb_imgs, gray_imgs):
        for m in MAGNITUDES[name]:
            m32 = np.float32(m)
            ours = _levels(op_fn(jnp.asarray(imgs, jnp.float32) / 255.0, op, m32))
            for arr, got in zip(imgs, ours):
                ref = pil_op(name, arr, float(m32)).astype(np.int64)
                if name == "autocontrast":
                    np.testing.assert_array_equal(got, exact_autocontrast(arr))
                    diff = got - ref
                    assert diff.min() >= 0 and diff.max() <= 1
                    x, lo = arr.astype(np.int64), arr.min(axis=(0, 1)).astype(np.int64)
                    d = np.maximum(arr.max(axis=(0, 1)).astype(np.int64) - lo, 1)
                    assert np.all(((x - lo) * 255 % d)[diff != 0] == 0)
                else:
                    np.testing.assert_array_equal(got, ref, err_msg=f"{name} m={m} shape={arr.shape}")


def test_ops_change_the_image(op_fn, rgb_imgs):
    """Guards against a vacuous PIL comparison: every op but identity changes some test image."""
    x = jnp.asarray(rgb_imgs, jnp.float32) / 255.0
    for name in R.OPS[1:]:
        out = np.asarray(op_fn(x, R.OPS.index(name), np.float32(MAGNITUDES[name][0])))
        assert not np.array_equal(out, np.asarray(x)), name


def test_equalize_clips_its_table(op_fn):
    """step = 1 on 20x28 full-range images: PIL's table reaches N - count(max) > 255 and is clipped."""
    img = np.random.RandomState(5).randint(0, 256, (1, 20, 28, 3)).astype(np.uint8)
    ours = _levels(op_fn(jnp.asarray(img, jnp.float32) / 255.0, R.OPS.index("equalize"), 0.0))[0]
    np.testing.assert_array_equal(ours, pil_op("equalize", img[0], 0.0))
    assert ours.max() == 255


def test_public_op_functions(rgb_imgs):
    x = jnp.asarray(rgb_imgs[1], jnp.float32) / 255.0
    np.testing.assert_array_equal(_levels(R.rotate(x, 8.2)), pil_op("rotate", rgb_imgs[1], float(np.float32(8.2))))
    np.testing.assert_array_equal(_levels(R.posterize(x, 5.0)), pil_op("posterize", rgb_imgs[1], 5.0))
    np.testing.assert_array_equal(R.identity(x), x)


# ----------------------------------------------------------------------------------------------
# RandAugment
# ----------------------------------------------------------------------------------------------

NUM_KEYS = 3500


@pytest.fixture(scope="module")
def params():
    keys = jax.random.split(jax.random.key(0), NUM_KEYS)
    ops, mags = jax.jit(jax.vmap(lambda k: R.rand_augment_params(k, 4)))(keys)
    return np.asarray(ops), np.asarray(mags)


def test_ops_uniform_with_replacement(params):
    ops, mags = params
    counts = np.bincount(ops.ravel(), minlength=R.NUM_OPS)
    expected = ops.size / R.NUM_OPS  # 1000; binomial std ~30
    assert counts.shape == (R.NUM_OPS,) and np.all(np.abs(counts - expected) < 0.15 * expected), counts
    # random.choices: 4 draws with replacement repeat an op with probability 1 - 14*13*12*11 / 14^4
    repeated = np.mean([len(set(row)) < 4 for row in ops])
    assert abs(repeated - (1 - 14 * 13 * 12 * 11 / 14 ** 4)) < 0.04
    # each slot is uniform too (not only the pooled counts)
    for slot in range(4):
        assert np.all(np.abs(np.bincount(ops[:, slot], minlength=14) - NUM_KEYS / 14) < 0.3 * NUM_KEYS / 14)
    for i, (lo, hi) in enumerate(R.MAGNITUDE_RANGES):  # magnitudes uniform in the op's range
        m = mags[ops == i]
        assert m.min() >= lo and m.max() < hi
        assert m.min() < lo + 0.05 * (hi - lo) and m.max() > hi - 0.05 * (hi - lo)
        assert abs(m.mean() - (lo + hi) / 2) < 0.05 * (hi - lo)


def test_rand_augment_zero_ops_is_identity(rgb_imgs):
    x = jnp.asarray(rgb_imgs[0], jnp.float32) / 255.0 + 1e-3  # not on the 8-bit grid: not even rounded
    assert R.rand_augment(jax.random.key(0), x, 0) is x
    assert R.rand_augment_from_uniforms(jnp.zeros((2, 0)), x) is x


@pytest.fixture(scope="module")
def ra_out(rgb_imgs):
    keys = jax.random.split(jax.random.key(7), 16)
    imgs = jnp.asarray(np.resize(rgb_imgs, (16,) + rgb_imgs.shape[1:]), jnp.float32) / 255.0
    out = jax.jit(jax.vmap(lambda k, x: R.rand_augment(k, x, 4)))(keys, imgs)
    return keys, np.resize(rgb_imgs, (16,) + rgb_imgs.shape[1:]), np.asarray(out)


def test_rand_augment_range_and_chain_matches_pil(ra_out):
    """Output in [0, 1] on the 8-bit grid; equal to SCAN's chain of PIL calls with the same ops and
    magnitudes (chains with autocontrast skipped: its one-level PIL artefact can be amplified by the
    ops after it)."""
    keys, imgs, out = ra_out
    assert out.min() >= 0.0 and out.max() <= 1.0
    levels = _levels(out)
    compared = 0
    for key, arr, got in zip(keys, imgs, levels):
        ops, mags = (np.asarray(a) for a in R.rand_augment_params(key, 4))
        if R.OPS.index("autocontrast") in ops:
            continue
        ref = arr
        for op, m in zip(ops, mags):
            ref = pil_op(R.OPS[op], ref, float(m))
        np.testing.assert_array_equal(got, ref, err_msg=str([R.OPS[o] for o in ops]))
        compared += 1
    assert compared >= 8
    assert not np.array_equal(levels, imgs)


# ----------------------------------------------------------------------------------------------
# Cutout
# ----------------------------------------------------------------------------------------------

def scan_cutout(img, length, y, x):
    """SCAN's Cutout.__call__ on an (H, W, C) array with its draws given (side `length`, centre y, x)."""
    h, w = img.shape[:2]
    mask = np.ones((h, w), np.float32)
    y1, y2 = np.clip(y - length // 2, 0, h), np.clip(y + length // 2, 0, h)
    x1, x2 = np.clip(x - length // 2, 0, w), np.clip(x + length // 2, 0, w)
    mask[y1:y2, x1:x2] = 0.0
    return img * mask[..., None]


H_CUT, W_CUT, N_CUT = 12, 10, 2000


@pytest.fixture(scope="module")
def cut_fn():
    """jit(vmap(cutout_from_uniforms)) for a few static lengths (compiled per length)."""
    fns = {}

    def get(length, random_length):
        if (length, random_length) not in fns:
            fns[length, random_length] = jax.jit(jax.vmap(
                lambda u, x: R.cutout_from_uniforms(u, x, length, 0.0, random_length)))
        return fns[length, random_length]

    return get


@pytest.fixture(scope="module")
def cut_data():
    rs = np.random.RandomState(3)
    u = rs.rand(N_CUT, 3).astype(np.float32)
    imgs = (rs.rand(N_CUT, H_CUT, W_CUT, 3) + 0.5).astype(np.float32)  # no zeros of its own
    return u, imgs


@pytest.mark.parametrize("length", [5, 6])
def test_cutout_matches_scan(cut_fn, cut_data, length):
    """Side uniform in 1..length (SCAN draws it whatever its `random` flag), centre uniform."""
    u, imgs = cut_data
    out = np.asarray(cut_fn(length, True)(u, imgs))
    side = 1 + np.minimum(np.floor(u[:, 0] * length).astype(int), length - 1)
    ys = np.floor(u[:, 1] * H_CUT).astype(int)
    xs = np.floor(u[:, 2] * W_CUT).astype(int)
    for i in range(0, N_CUT, 7):
        np.testing.assert_array_equal(out[i], scan_cutout(imgs[i], side[i], ys[i], xs[i]))
    assert sorted(set(side)) == list(range(1, length + 1))


def test_cutout_fixed_square_clipped_and_centres_cover(cut_fn, cut_data):
    u, imgs = cut_data
    length = 6
    out = np.asarray(cut_fn(length, False)(u, imgs))
    hole = np.all(out == 0.0, axis=-1)
    np.testing.assert_array_equal(out[~hole], imgs[~hole])  # the rest untouched
    assert np.all(np.any(out == 0.0, axis=-1) == hole)  # all channels cut together
    centres = []
    for i in range(N_CUT):
        rows, cols = np.flatnonzero(hole[i].any(1)), np.flatnonzero(hole[i].any(0))
        assert hole[i].sum() == len(rows) * len(cols)  # one rectangle ...
        assert np.all(np.diff(rows) == 1) and np.all(np.diff(cols) == 1)
        for idx, n in ((rows, H_CUT), (cols, W_CUT)):  # ... a square of side 6, clipped at borders
            assert len(idx) == length or (idx[0] == 0 or idx[-1] == n - 1) and 3 <= len(idx) < length
        y = rows[0] + length // 2 if rows[0] > 0 else rows[-1] + 1 - length // 2
        x = cols[0] + length // 2 if cols[0] > 0 else cols[-1] + 1 - length // 2
        centres.append((y, x))
    y, x = np.array(centres).T
    for c, n in ((y, H_CUT), (x, W_CUT)):  # centres uniform over every row / column
        counts = np.bincount(c, minlength=n)
        assert len(counts) == n and np.all(np.abs(counts - N_CUT / n) < 0.35 * N_CUT / n), counts


def test_cutout_zero_length_and_key_api():
    x = jnp.ones((6, 6, 1))
    assert R.cutout(jax.random.key(0), x, 0) is x
    out = np.asarray(R.cutout(jax.random.key(3), x, 4, fill=0.25, random_length=False))
    assert set(np.unique(out)) <= {0.25, 1.0} and 4 <= (out == 0.25).sum() <= 16


# ----------------------------------------------------------------------------------------------
# Wiring into jaxclust.data.augment
# ----------------------------------------------------------------------------------------------

BASE = A.AugmentConfig(crop=True, crop_scale=(0.5, 1.0), jitter_prob=0.8, grayscale_prob=0.2)
STRONG = dataclasses.replace(BASE, randaugment_ops=3, cutout_length=6)
B = 6


@pytest.fixture(scope="module")
def pipe():
    imgs = np.random.RandomState(4).randint(0, 256, (B, 12, 12, 3)).astype(np.uint8)
    keys = A.example_keys(jax.random.key(9), jnp.arange(B))

    @jax.jit
    def both(keys, imgs):
        run = lambda cfg: jax.vmap(lambda k, im: A.augment_image(k, im, cfg, 12))(keys, imgs)  # noqa: E731
        return run(BASE), run(STRONG)

    base, strong = both(keys, imgs)
    return keys, imgs, np.asarray(base), np.asarray(strong)


def test_new_fields_off_leave_augment_unchanged():
    """Fields at 0: the config is the one without them (same hash: same compiled function), and an
    old config without augment.view2.randaugment_ops / cutout_length gives the same views."""
    assert A.AugmentConfig() == A.AugmentConfig(randaugment_ops=0, cutout_length=0)
    assert hash(A.AugmentConfig()) == hash(A.AugmentConfig(randaugment_ops=0, cutout_length=0))
    from jaxclust.config import base_config

    cfg = base_config().augment
    cfg.asymmetric = True
    new_style = A.view_configs(cfg)
    assert new_style[1].randaugment_ops == 0 and new_style[1].cutout_length == 0
    del cfg.view2["randaugment_ops"], cfg.view2["cutout_length"]
    assert A.view_configs(cfg) == new_style
    cfg.view2.randaugment_ops, cfg.view2.cutout_length = 4, 16
    one, two = A.view_configs(cfg)
    assert (one.randaugment_ops, one.cutout_length, two.randaugment_ops, two.cutout_length) == (0, 0, 4, 16)
    assert dataclasses.replace(two, randaugment_ops=0, cutout_length=0) == new_style[1]
    for bad in (dict(randaugment_ops=-1), dict(cutout_length=2.5)):
        with pytest.raises(ValueError):
            A.AugmentConfig(**bad)


def test_strong_stage_runs_after_the_others(pipe):
    """With RandAugment + Cutout on, the output is those two applied, in SCAN's order, to the output
    without them (every other draw unchanged), with the draws of fold_in(key, 1); it differs."""
    keys, imgs, base, strong = pipe
    assert not np.array_equal(base, strong)
    mean = jnp.asarray(STRONG.mean, jnp.float32)

    def manual(k, x):
        u = jax.random.uniform(jax.random.fold_in(k, 1), (9,))
        x = R.rand_augment_from_uniforms(u[:6].reshape(2, 3), x)
        return R.cutout_from_uniforms(u[6:], x, 6, mean)

    np.testing.assert_array_equal(strong, np.asarray(jax.jit(jax.vmap(manual))(keys, jnp.asarray(base))))


def test_cutout_hole_is_zero_after_normalisation(pipe):
    keys, imgs, _, strong = pipe
    normalised = np.asarray(A.normalize(jnp.asarray(strong), STRONG.mean, STRONG.std))
    zero = np.all(normalised == 0.0, axis=-1)
    hole = np.all(strong == np.asarray(STRONG.mean, np.float32), axis=-1)
    np.testing.assert_array_equal(zero, hole)
    assert zero.any(axis=(1, 2)).sum() >= B // 2  # most images have a hole (side 0 when L = 1)
