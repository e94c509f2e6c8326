"""Tests for jaxclust.models: parameter counts vs torchvision, shapes, BatchNorm semantics, inits.

Everything big goes through ``jax.eval_shape`` (no real init of ResNet-34/50); real inits and applies
are jitted (op-by-op eager dispatch of a ResNet is slower than compiling it on CPU).

Real inits use an ``rbg`` key: on XLA:CPU every threefry draw is its own large fusion, and jitting a
ResNet-18 init with the default threefry key spends ~5-8 s compiling RNG code (~1.7 s with rbg). The
initialisers are key-implementation agnostic, so the statistics tested here are the same.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxclust.models import (
    BACKBONES,
    BatchNorm,
    Conv,
    ConvNet,
    MLPHead,
    ResNet,
    backbone_out_dim,
    build_backbone,
    count_params,
    resnet10,
    resnet18,
    resnet34,
    resnet50,
)

KEY = jax.random.key(0, impl="rbg")


def randn(seed, shape):
    """Test inputs from NumPy (an eager jax.random call costs a threefry compile)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def shape_variables(model, shape):
    return jax.eval_shape(lambda: model.init(KEY, jnp.zeros(shape, jnp.float32), train=False))


def shape_params(model, shape):
    return count_params(shape_variables(model, shape)["params"])


def real_init(model, shape, key=KEY):
    return jax.jit(lambda k: model.init(k, jnp.zeros(shape, jnp.float32), train=False))(key)


# ---------------------------------------------------------------------------------------------
# Parameter counts (torchvision golden numbers, fc removed)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, shape, expected",
    [
        # ProPos bigresnet18 (CIFAR stem, no fc), counted by the authors' code.
        (resnet18(stem="cifar"), (1, 32, 32, 3), 11_168_832),
        (resnet18(stem="imagenet"), (1, 64, 64, 3), 11_176_512),
        (resnet34(stem="imagenet"), (1, 64, 64, 3), 21_284_672),
        (resnet50(stem="imagenet"), (1, 64, 64, 3), 23_508_032),
        # torchvision ResNet(BasicBlock, [1, 1, 1, 1]) without fc, counted with torch.
        (resnet10(stem="imagenet"), (1, 64, 64, 3), 4_905_792),
        # CIFAR stem swaps a 7x7x3x64 conv for a 3x3x3x64 one: -7680 params.
        (resnet34(stem="cifar"), (1, 32, 32, 3), 21_284_672 - 7680),
        (resnet50(stem="cifar"), (1, 32, 32, 3), 23_508_032 - 7680),
        # convs 288+9216+18432+36864+73728+147456, BN 2*(2*32+2*64+2*128).
        (ConvNet((32, 64, 128), 2), (1, 8, 8, 1), 286_880),
    ],
    ids=["r18-cifar", "r18-imagenet", "r34-imagenet", "r50-imagenet", "r10-imagenet", "r34-cifar", "r50-cifar",
         "convnet"],
)
def test_param_counts(model, shape, expected):
    assert shape_params(model, shape) == expected


@pytest.mark.parametrize("init", ["torch_linear", "normal_0.01"])
def test_head_param_count(init):
    expected = 512 * 4096 + 4096 + 2 * 4096 + 4096 * 256 + 256
    assert shape_params(MLPHead(4096, 256, init=init), (2, 512)) == expected


def test_count_params_on_real_arrays():
    assert count_params({"a": jnp.zeros((3, 4)), "b": [np.ones(5)]}) == 17


def test_batch_stats_shapes_and_names():
    v = shape_variables(resnet18(), (1, 32, 32, 3))
    params, stats = v["params"], v["batch_stats"]
    # Readable, stable names the torchvision converter relies on.
    assert params["stem_conv"]["kernel"].shape == (3, 3, 3, 64)
    assert set(params["stem_bn"]) == {"scale", "bias"}
    assert set(stats["stem_bn"]) == {"mean", "var"}
    assert set(params["stage1_block0"]) == {"conv1", "bn1", "conv2", "bn2"}  # no downsample
    assert set(params["stage2_block0"]) == {"conv1", "bn1", "conv2", "bn2", "downsample_conv", "downsample_bn"}
    assert params["stage2_block0"]["downsample_conv"]["kernel"].shape == (1, 1, 64, 128)
    assert "stage4_block1" in params and "stage5_block0" not in params
    assert count_params(stats) == 2 * 4800  # running mean + var of every BN channel (4800 channels in R18)
    # Bottleneck v1.5: the stride sits on the 3x3 conv; 1x1 convs have no spatial extent.
    p50 = shape_variables(resnet50(), (1, 32, 32, 3))["params"]["stage2_block0"]
    assert p50["conv1"]["kernel"].shape == (1, 1, 256, 128)
    assert p50["conv2"]["kernel"].shape == (3, 3, 128, 128)
    assert p50["conv3"]["kernel"].shape == (1, 1, 128, 512)
    assert p50["downsample_conv"]["kernel"].shape == (1, 1, 256, 512)


# ---------------------------------------------------------------------------------------------
# Shapes, train / eval behaviour
# ---------------------------------------------------------------------------------------------


def _train_eval(model, x):
    @jax.jit
    def run(v, x):
        y_train, upd = model.apply(v, x, train=True, mutable=["batch_stats"])
        y_eval_init = model.apply(v, x, train=False)
        v2 = {"params": v["params"], "batch_stats": upd["batch_stats"]}
        y_eval = model.apply(v2, x, train=False)
        y_eval_first = model.apply(v2, x[:1], train=False)
        return y_train, upd["batch_stats"], y_eval_init, y_eval, y_eval_first

    v = real_init(model, x.shape)
    return v, run(v, x)


@pytest.mark.parametrize(
    "model, shape, out_dim",
    [
        (resnet18(width=8, stem="cifar"), (2, 16, 16, 3), 64),
        (resnet18(width=8, stem="imagenet"), (2, 32, 32, 3), 64),
        (ConvNet((32, 64, 128), 2), (2, 8, 8, 1), 128),
    ],
    ids=["r18w8-cifar", "r18w8-imagenet", "convnet"],
)
def test_forward_train_and_eval(model, shape, out_dim):
    x = randn(1, shape) * 2.0 + 0.5
    v, (y_train, new_stats, y_eval_init, y_eval, y_eval_first) = _train_eval(model, x)
    assert y_train.shape == y_eval.shape == (shape[0], out_dim)
    assert y_train.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(y_train)))
    # Train mode returns updated running stats for every BN layer.
    old, new = jax.tree_util.tree_leaves(v["batch_stats"]), jax.tree_util.tree_leaves(new_stats)
    assert len(old) == len(new) > 0
    assert all(not np.allclose(o, n) for o, n in zip(old, new))
    assert jax.tree_util.tree_structure(new_stats) == jax.tree_util.tree_structure(v["batch_stats"])
    # Eval mode reads the running stats: changing them changes the output ...
    assert not np.allclose(y_eval_init, y_eval)
    # ... and each sample is processed independently of the rest of the batch (no batch statistics),
    np.testing.assert_allclose(y_eval_first[0], y_eval[0], rtol=1e-5, atol=1e-5)
    # whereas train mode normalises with batch statistics.
    assert not np.allclose(y_train, y_eval, atol=1e-4)


def test_resnet50_output_shape():
    out = jax.eval_shape(
        lambda: resnet50(width=4).init_with_output(KEY, jnp.zeros((2, 32, 32, 3)), train=False)[0]
    )
    assert out.shape == (2, 128)  # 32 * width


def test_head_output_shape():
    x = jnp.ones((4, 16))
    y = jax.jit(lambda: MLPHead(32, 8).init_with_output(KEY, x, train=False)[0])()
    assert y.shape == (4, 8)


def _np_conv(x, w, stride, pad):
    """Cross-correlation, NHWC x HWIO, symmetric zero padding (torch.nn.functional.conv2d)."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kh, kw = w.shape[:2]
    ho = (x.shape[1] - kh) // stride + 1
    wo = (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], ho, wo, w.shape[3]))
    for i in range(ho):
        for j in range(wo):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.einsum("bhwc,hwco->bo", patch, w)
    return out


def _np_maxpool_s2p1(x, k=3):
    """torch MaxPool2d(k, stride=2, padding=1): -inf padding."""
    x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    ho, wo = (x.shape[1] - k) // 2 + 1, (x.shape[2] - k) // 2 + 1
    return np.stack([np.stack([x[:, 2 * i:2 * i + k, 2 * j:2 * j + k].max((1, 2)) for j in range(wo)], 1)
                     for i in range(ho)], 1)


@pytest.mark.parametrize("conv_impl", ["auto", "xla"])
def test_torch_padding_semantics(conv_impl):
    """ImageNet stem + first stride-2 basic block vs a NumPy torch-semantics reference, on an even
    input (where 'SAME' would pad (0, 1) instead of PyTorch's (1, 1)); the max-pool must pad with
    -inf (as torch), not 0. With 'auto' the 2x2 stage runs as patch matmuls."""
    model = ResNet((1, 1), "basic", width=4, stem="imagenet", conv_impl=conv_impl)
    x = randn(2, (2, 14, 14, 3))
    v = real_init(model, x.shape)
    y = jax.jit(lambda v, x: model.apply(v, x, train=False))(v, x)

    p = jax.tree_util.tree_map(np.asarray, v["params"])
    bn = 1.0 / np.sqrt(1.0 + 1e-5)  # eval BN at init: mean 0, var 1, gamma 1, beta 0
    relu = lambda a: np.maximum(a, 0.0)
    h = relu(_np_conv(x, p["stem_conv"]["kernel"], 2, 3) * bn)
    assert h.shape[1:3] == (7, 7)
    h = _np_maxpool_s2p1(h)
    assert h.shape[1:3] == (4, 4)
    b = p["stage1_block0"]
    h = relu(_np_conv(relu(_np_conv(h, b["conv1"]["kernel"], 1, 1) * bn), b["conv2"]["kernel"], 1, 1) * bn + h)
    b = p["stage2_block0"]
    r = relu(_np_conv(h, b["conv1"]["kernel"], 2, 1) * bn)
    r = _np_conv(r, b["conv2"]["kernel"], 1, 1) * bn
    h = relu(r + _np_conv(h, b["downsample_conv"]["kernel"], 2, 0) * bn)
    assert h.shape[1:3] == (2, 2)
    np.testing.assert_allclose(np.asarray(y), h.mean((1, 2)), rtol=1e-4, atol=1e-5)


def test_pica_stem():
    """PICA's ResNet stem (C2BIN's clustering backbone): 3x3/1 conv, BN, ReLU, then MaxPool2d(2, 2,
    padding=1), which maps 10x10 to 6x6 (torch: floor((10 + 2 - 2) / 2) + 1), against NumPy."""
    model = ResNet((1,), "basic", width=4, stem="pica")
    x = randn(3, (2, 10, 10, 3))
    v = real_init(model, x.shape)
    y = jax.jit(lambda v, x: model.apply(v, x, train=False))(v, x)

    p = jax.tree_util.tree_map(np.asarray, v["params"])
    bn = 1.0 / np.sqrt(1.0 + 1e-5)  # eval BN at init
    relu = lambda a: np.maximum(a, 0.0)
    h = _np_maxpool_s2p1(relu(_np_conv(x, p["stem_conv"]["kernel"], 1, 1) * bn), k=2)
    assert h.shape[1:3] == (6, 6)
    b = p["stage1_block0"]
    h = relu(_np_conv(relu(_np_conv(h, b["conv1"]["kernel"], 1, 1) * bn), b["conv2"]["kernel"], 1, 1) * bn + h)
    np.testing.assert_allclose(np.asarray(y), h.mean((1, 2)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "in_shape, k, stride, pad",
    [((3, 2, 2, 5), 3, 1, 1), ((3, 4, 4, 5), 3, 2, 1), ((3, 1, 1, 5), 3, 1, 1), ((2, 5, 3, 4), 7, 2, 3),
     ((2, 6, 6, 3), 3, 1, 1)],
    ids=["2x2", "4x4-s2", "1x1", "7x7-s2-nonsquare", "6x6"],
)
def test_conv_patch_path_equals_xla_conv(in_shape, k, stride, pad):
    """The patch-matmul path (used by 'auto' on maps smaller than the kernel) is the same function
    as lax.conv: values and gradients w.r.t. input and kernel."""
    x = jnp.asarray(randn(6, in_shape))
    mods = {impl: Conv(6, k, stride, pad, impl=impl) for impl in ("xla", "patches")}
    v = mods["xla"].init(KEY, x)
    assert jax.tree_util.tree_map(jnp.shape, v) == {"params": {"kernel": (k, k, in_shape[-1], 6)}}

    def run(m):
        f = lambda v, x: jnp.sum(jnp.sin(m.apply(v, x)))
        return m.apply(v, x), jax.grad(f, argnums=(0, 1))(v, x)

    (y_x, (gv_x, gx_x)), (y_p, (gv_p, gx_p)) = jax.jit(lambda: (run(mods["xla"]), run(mods["patches"])))()
    np.testing.assert_allclose(y_p, y_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gx_p, gx_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gv_p["params"]["kernel"], gv_x["params"]["kernel"], rtol=1e-5, atol=1e-5)


def test_conv_auto_dispatch():
    def has_conv(shape, k=3, stride=1, pad=1):
        m = Conv(4, k, stride, pad)
        x = jnp.zeros(shape)
        v = jax.eval_shape(lambda: m.init(KEY, x))
        return "conv_general_dilated" in str(jax.make_jaxpr(m.apply)(v, x))

    assert not has_conv((2, 2, 2, 3))           # 3x3 on 2x2: patch matmul
    assert not has_conv((2, 4, 4, 3), stride=2)  # output 2x2 (its input-gradient conv is the slow one)
    assert has_conv((2, 4, 4, 3))               # 4x4 -> 4x4: XLA conv
    assert has_conv((2, 2, 2, 3), k=1, pad=0)    # 1x1 convs always XLA
    with pytest.raises(ValueError, match="patches"):
        Conv(4, 3, impl="cudnn").init(KEY, jnp.zeros((1, 4, 4, 1)))


# ---------------------------------------------------------------------------------------------
# BatchNorm semantics (PyTorch vs flax)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 3, 3, 5), (6, 7)], ids=["2d", "1d"])
def test_batchnorm_matches_torch_rule(shape):
    """torch: y = (x - mean_b) / sqrt(var_b + eps) * gamma + beta with the *biased* batch var;
    running_mean <- 0.9 * running_mean + 0.1 * mean_b;
    running_var  <- 0.9 * running_var  + 0.1 * var_b * n / (n - 1)   (unbiased)."""
    x = randn(3, shape) * 3.0 + 1.5
    bn = BatchNorm()
    v = bn.init(KEY, jnp.asarray(x), train=True)  # init does not touch the running stats
    np.testing.assert_array_equal(v["batch_stats"]["mean"], 0.0)
    np.testing.assert_array_equal(v["batch_stats"]["var"], 1.0)
    v = {"params": {"scale": jnp.linspace(0.5, 2.0, shape[-1]), "bias": jnp.linspace(-1, 1, shape[-1])},
         "batch_stats": {"mean": jnp.full(shape[-1], 0.3), "var": jnp.full(shape[-1], 2.0)}}
    y, upd = jax.jit(lambda v, x: bn.apply(v, x, train=True, mutable=["batch_stats"]))(v, x)

    axes = tuple(range(x.ndim - 1))
    n = x.size // shape[-1]
    mean_b, var_b = x.mean(axes), x.var(axes)
    gamma, beta = np.asarray(v["params"]["scale"]), np.asarray(v["params"]["bias"])
    np.testing.assert_allclose(y, (x - mean_b) / np.sqrt(var_b + 1e-5) * gamma + beta, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(upd["batch_stats"]["mean"], 0.9 * 0.3 + 0.1 * mean_b, rtol=1e-6)
    np.testing.assert_allclose(upd["batch_stats"]["var"], 0.9 * 2.0 + 0.1 * var_b * n / (n - 1), rtol=1e-6)

    # Eval mode: (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
    y_eval = bn.apply(v, x, train=False)
    np.testing.assert_allclose(y_eval, (x - 0.3) / np.sqrt(2.0 + 1e-5) * gamma + beta, rtol=1e-5, atol=1e-5)


def test_flax_batchnorm_uses_biased_running_var():
    """Pins the documented difference: flax.linen.BatchNorm feeds the *biased* batch variance into the
    running average (torch: unbiased). ``BatchNorm(unbiased_running_var=False)`` reproduces flax
    exactly (outputs, running stats and input gradients); the default reproduces torch."""
    x = jnp.asarray(randn(4, (5, 6)) * 2.0 + 1.0)
    n = 5
    ours_flax = BatchNorm(unbiased_running_var=False)
    ours_torch = BatchNorm()
    ref = nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5)

    def run(m, call):
        v = m.init(KEY, x, **call)
        v = {"params": {"scale": jnp.arange(1.0, 7.0), "bias": jnp.zeros(6)}, "batch_stats": v["batch_stats"]}
        f = lambda x: m.apply(v, x, mutable=["batch_stats"], **call)
        (y, upd) = f(x)
        g = jax.grad(lambda x: jnp.sum(f(x)[0] ** 3))(x)
        return y, upd["batch_stats"], g

    y_ref, s_ref, g_ref = run(ref, {})
    y_f, s_f, g_f = run(ours_flax, {"train": True})
    y_t, s_t, g_t = run(ours_torch, {"train": True})
    np.testing.assert_allclose(y_f, y_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g_f, g_ref, rtol=1e-4, atol=1e-4)
    # running mean = 0.1 * a batch mean of n float32 values, some near 0 (|mean| 0.11 of mean |x| 1.5):
    # besides rtol, the float32 bound of that sum, 0.1 * n * eps * max|x|, absolutely
    mean_atol = 0.1 * n * np.finfo(np.float32).eps * float(jnp.abs(x).max())
    np.testing.assert_allclose(s_f["mean"], s_ref["mean"], rtol=1e-6, atol=mean_atol)
    np.testing.assert_allclose(s_f["var"], s_ref["var"], rtol=1e-5)
    # Torch mode: same output, same running mean; running var differs exactly by the n/(n-1) factor.
    np.testing.assert_allclose(y_t, y_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s_t["mean"], s_ref["mean"], rtol=1e-6, atol=mean_atol)
    var_b = np.asarray(x).var(0)
    np.testing.assert_allclose(s_ref["var"], 0.9 + 0.1 * var_b, rtol=1e-5)
    np.testing.assert_allclose(s_t["var"], 0.9 + 0.1 * var_b * n / (n - 1), rtol=1e-5)
    assert not np.allclose(s_t["var"], s_ref["var"])


def test_head_bn_running_stats_after_one_step():
    """End-to-end through MLPHead: bn1's running stats follow torch's rule applied to fc1's output."""
    head = MLPHead(16, 4)
    x = randn(5, (8, 12))
    v = real_init(head, x.shape)
    _, upd = jax.jit(lambda v, x: head.apply(v, x, train=True, mutable=["batch_stats"]))(v, x)
    h = np.asarray(x) @ np.asarray(v["params"]["fc1"]["kernel"]) + np.asarray(v["params"]["fc1"]["bias"])
    np.testing.assert_allclose(upd["batch_stats"]["bn1"]["mean"], 0.1 * h.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(upd["batch_stats"]["bn1"]["var"], 0.9 + 0.1 * h.var(0, ddof=1), rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Init statistics
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def r18_params():
    return jax.tree_util.tree_map(np.asarray, real_init(resnet18(), (1, 8, 8, 3))["params"])


def test_conv_init_kaiming_normal_fan_out(r18_params):
    w = r18_params["stage4_block0"]["conv2"]["kernel"]  # 3x3x512x512, 2.36M values
    std = math.sqrt(2.0 / (3 * 3 * 512))
    assert abs(w.std() / std - 1.0) < 0.01
    assert abs(w.mean()) < 0.01 * std
    # Plain normal, not truncated: ~4.55% of the draws lie beyond 2 sigma (0% if truncated at 2 sigma).
    assert abs(np.mean(np.abs(w) > 2 * std) - 0.0455) < 0.002
    w1 = r18_params["stage2_block0"]["downsample_conv"]["kernel"]  # fan_out = 1*1*128
    assert abs(w1.std() / math.sqrt(2.0 / 128) - 1.0) < 0.05


def test_cifar_stem_keeps_torch_default_init(r18_params):
    w = r18_params["stem_conv"]["kernel"]  # 3x3x3x64, fan_in 27
    bound = 1.0 / math.sqrt(27)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.95 * bound
    assert abs(w.std() / (bound / math.sqrt(3.0)) - 1.0) < 0.05  # uniform, not kaiming fan_out


def test_bn_init(r18_params):
    for bn in (r18_params["stem_bn"], r18_params["stage3_block1"]["bn2"],
               r18_params["stage3_block0"]["downsample_bn"]):
        np.testing.assert_array_equal(bn["scale"], 1.0)
        np.testing.assert_array_equal(bn["bias"], 0.0)


def test_imagenet_stem_is_kaiming():
    p = real_init(ResNet((1,), "basic", width=64, stem="imagenet"), (1, 8, 8, 3))["params"]
    w = np.asarray(p["stem_conv"]["kernel"])
    assert abs(w.std() / math.sqrt(2.0 / (7 * 7 * 64)) - 1.0) < 0.05


def test_head_inits():
    pred = jax.tree_util.tree_map(np.asarray, real_init(MLPHead(4096, 256, init="normal_0.01"), (2, 256))["params"])
    for fc in ("fc1", "fc2"):
        assert abs(pred[fc]["kernel"].std() / 0.01 - 1.0) < 0.01
        np.testing.assert_array_equal(pred[fc]["bias"], 0.0)
    np.testing.assert_array_equal(pred["bn1"]["scale"], 1.0)
    np.testing.assert_array_equal(pred["bn1"]["bias"], 0.0)

    proj = jax.tree_util.tree_map(np.asarray, real_init(MLPHead(4096, 256), (2, 512))["params"])
    for fc, fan_in in (("fc1", 512), ("fc2", 4096)):
        bound = 1.0 / math.sqrt(fan_in)
        for leaf in (proj[fc]["kernel"], proj[fc]["bias"]):
            assert np.abs(leaf).max() <= bound
            assert np.abs(leaf).max() > 0.9 * bound
        assert abs(proj[fc]["kernel"].std() / (bound / math.sqrt(3.0)) - 1.0) < 0.02
    assert proj["fc1"]["kernel"].shape == (512, 4096)

    with pytest.raises(ValueError, match="torch_linear"):
        MLPHead(8, 8, init="xavier")


# ---------------------------------------------------------------------------------------------
# build_backbone / backbone_out_dim
# ---------------------------------------------------------------------------------------------


def _cfg(**kw):
    cfg = ml_collections.ConfigDict(
        dict(backbone="resnet18", width=8, stem="cifar", convnet_widths=(8, 16))
    )
    cfg.update(kw)
    return cfg


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
def test_build_backbone(name, stem):
    cfg = _cfg(backbone=name, stem=stem)
    model = build_backbone(cfg)
    out = jax.eval_shape(lambda: model.init_with_output(KEY, jnp.zeros((2, 32, 32, 3)), train=False)[0])
    assert out.shape == (2, backbone_out_dim(cfg))
    expected = {"resnet10": 64, "resnet18": 64, "resnet34": 64, "resnet50": 256, "convnet": 16}[name]
    assert backbone_out_dim(cfg) == expected


def test_build_backbone_types():
    assert isinstance(build_backbone(_cfg(backbone="convnet")), ConvNet)
    r50 = build_backbone(_cfg(backbone="resnet50", width=64, stem="imagenet"))
    assert isinstance(r50, ResNet) and r50.block == "bottleneck" and r50.stem == "imagenet"
    assert tuple(r50.stage_sizes) == (3, 4, 6, 3)


def test_unknown_backbone_raises():
    with pytest.raises(ValueError, match="resnet18, resnet34, resnet50, convnet"):
        build_backbone(_cfg(backbone="vit_b16"))
    with pytest.raises(ValueError, match="convnet"):
        backbone_out_dim(_cfg(backbone="resnet101"))


def test_convnet_pools_are_reductions_of_the_same_last_map():
    """'avg' and 'max' are the mean and max over space of the map that 'flatten' returns row-major:
    three views of one network's last map (same parameters), checked against numpy."""
    x = jax.random.normal(KEY, (2, 28, 28, 1))
    params = ConvNet((4, 8, 16), pool="flatten").init(KEY, x, train=False)
    out = {pool: np.asarray(ConvNet((4, 8, 16), pool=pool).apply(params, x, train=False))
           for pool in ("avg", "max", "flatten")}
    last_map = out["flatten"].reshape(2, 7, 7, 16)  # 28 -> 14 -> 7
    np.testing.assert_allclose(out["avg"], last_map.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["max"], last_map.max(axis=(1, 2)))
    assert isinstance(build_backbone(_cfg(backbone="convnet", convnet_pool="max")), ConvNet)
    with pytest.raises(ValueError, match="depends on the image size"):
        backbone_out_dim(_cfg(backbone="convnet", convnet_pool="flatten"))
    with pytest.raises(ValueError, match="avg, max, flatten"):
        ConvNet((4,), pool="sum").init(KEY, x, train=False)
