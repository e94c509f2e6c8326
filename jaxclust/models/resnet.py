"""torchvision-compatible ResNets in Flax linen, plus the shared layer helpers (init, BatchNorm).

Layout, padding and initialisation follow torchvision's ``resnet.py`` layer for layer, so that a
torchvision state dict can be mapped onto these parameters (ProPos, ``network/resnet.py``):

* stems: ``'cifar'`` = conv3x3/s1/p1 (no bias) -> BN -> ReLU, no max-pool (ProPos ``cifar=True``);
  ``'imagenet'`` = conv7x7/s2/p3 -> BN -> ReLU -> maxpool3x3/s2/p1 (torchvision default);
  ``'pica'`` = the CIFAR stem -> maxpool2x2/s2/p1 (PICA's ResNet-34, used by C2BIN's clustering setting).
* blocks: ``BasicBlock`` (two 3x3 convs) and ``Bottleneck`` v1.5 (stride on the 3x3 conv);
  downsample = conv1x1(stride) + BN whenever the stride or the channel count changes.
* no ``fc``: the network returns the globally average-pooled feature, (B, 8*width) for basic
  blocks and (B, 32*width) for bottlenecks.
* padding is explicit (PyTorch style), never ``'SAME'``: for stride-2 layers on even inputs the two
  differ (``'SAME'`` pads (0, 1), PyTorch pads (1, 1)), so ``'SAME'`` would not match torchvision.
* convs on maps smaller than the kernel (e.g. 3x3 on 2x2) run as patch matmuls on every backend
  (:class:`Conv`, ``conv_impl='auto'``): same function, avoids a 10-50x slow XLA:CPU path.

Parameter names (stable; a converter relies on them)::

    stem_conv, stem_bn                      <- conv1, bn1
    stage{s}_block{b}/conv{i}, bn{i}        <- layer{s}.{b}.conv{i}, bn{i}     (s = 1..4, b from 0)
    stage{s}_block{b}/downsample_conv       <- layer{s}.{b}.downsample.0
    stage{s}_block{b}/downsample_bn         <- layer{s}.{b}.downsample.1

Kernels are HWIO (torch is OIHW: ``w_flax = w_torch.transpose(2, 3, 1, 0)``). BatchNorm variables are
``params/{scale,bias}`` and ``batch_stats/{mean,var}`` (torch ``weight, bias, running_mean,
running_var``; ``num_batches_tracked`` has no counterpart).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

Array = jax.Array
ModuleDef = Any

# --------------------------------------------------------------------------------------------------
# Initialisers
# --------------------------------------------------------------------------------------------------

#: torchvision's conv init: ``kaiming_normal_(mode='fan_out', nonlinearity='relu')``, i.e. plain
#: (not truncated) N(0, 2 / (k*k*out_channels)).
kaiming_normal_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

#: PyTorch's default Conv2d/Linear weight init: ``kaiming_uniform_(a=sqrt(5))`` = U(+-1/sqrt(fan_in)).
#: variance_scaling 'uniform' draws U(+-sqrt(3*scale/fan_in)); scale = 1/3 gives the bound 1/sqrt(fan_in).
torch_default_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_default_bias_init(fan_in: int) -> Callable:
    """PyTorch's default bias init for Conv/Linear: U(+-1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


# --------------------------------------------------------------------------------------------------
# BatchNorm
# --------------------------------------------------------------------------------------------------


class BatchNorm(nn.Module):
    """BatchNorm over every axis but the last, with PyTorch's semantics.

    ``momentum`` is flax's convention (weight of the old running value): 0.9 == torch ``momentum=0.1``.

    Train mode normalises with the *biased* batch variance (as torch and flax both do) and updates
    ``running = momentum * running + (1 - momentum) * batch_stat``. The one difference between torch
    and ``flax.linen.BatchNorm`` is the variance fed to the running average: torch uses the
    *unbiased* batch variance (times n/(n-1), n = number of reduced elements per channel), flax the
    biased one. ``unbiased_running_var=True`` (default) reproduces torch; ``False`` reproduces
    ``nn.BatchNorm(momentum, epsilon)`` exactly. For the ProPos projector (BatchNorm1d over a
    128-sample batch) the gap is a factor 128/127 on the running variance; for conv layers
    n = B*H*W and the gap is negligible.

    The running statistics are not updated during ``init`` (as in flax). Variable names match
    ``flax.linen.BatchNorm`` so checkpoints are interchangeable.

    Extension point: every network in ``jaxclust.models`` creates its norm layers through a
    ``norm`` factory attribute (default: this class), so ghost/sync BN variants can be added later
    without touching the networks.
    """

    momentum: float = 0.9
    epsilon: float = 1e-5
    unbiased_running_var: bool = True
    scale_init: Callable = nn.initializers.ones
    bias_init: Callable = nn.initializers.zeros
    # Ghost BN: train-mode statistics over `groups` equal consecutive slices of the batch, as the
    # per-GPU BatchNorm of a `groups`-GPU run; the running statistics follow slice 0, as DDP's
    # broadcast of rank 0's buffers does. 1: statistics of the whole (global) batch.
    groups: int = 1

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        features = x.shape[-1]
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((features,), jnp.float32))
        scale = self.param("scale", self.scale_init, (features,), jnp.float32)
        bias = self.param("bias", self.bias_init, (features,), jnp.float32)

        if train:
            if x.shape[0] % self.groups:
                raise ValueError(f"a batch of {x.shape[0]} does not split into {self.groups} BatchNorm groups.")
            xf = x.astype(jnp.float32).reshape((self.groups, -1) + x.shape[1:])
            reduce_axes = tuple(range(1, xf.ndim - 1))
            mean = jnp.mean(xf, axis=reduce_axes, keepdims=True)
            # Two-pass (centred) variance, as torch; flax's default E[x^2]-E[x]^2 loses precision.
            var = jnp.mean(jnp.square(xf - mean), axis=reduce_axes, keepdims=True)
            if not self.is_initializing():
                n = xf[0].size // features
                first_mean, first_var = mean[0].reshape(features), var[0].reshape(features)
                if self.unbiased_running_var and n > 1:
                    run_var_in = first_var * (n / (n - 1))
                else:
                    run_var_in = first_var
                m = self.momentum
                ra_mean.value = m * ra_mean.value + (1.0 - m) * jax.lax.stop_gradient(first_mean)
                ra_var.value = m * ra_var.value + (1.0 - m) * jax.lax.stop_gradient(run_var_in)
            mul = scale * jax.lax.rsqrt(var + self.epsilon)
            return ((xf - mean) * mul + bias).reshape(x.shape).astype(x.dtype)
        mul = scale * jax.lax.rsqrt(ra_var.value + self.epsilon)
        y = (x - ra_mean.value) * mul + bias
        return y.astype(x.dtype)


# --------------------------------------------------------------------------------------------------
# Conv helper
# --------------------------------------------------------------------------------------------------


def _conv_as_patch_matmul(x: Array, kernel: Array, stride: int, padding: int) -> Array:
    """The convolution as one matmul over explicitly gathered patches (im2col by strided slicing).

    Mathematically identical to ``lax.conv_general_dilated`` (cross-correlation, symmetric zero
    padding). Its gradient is pads/slices/matmuls only, no convolution.
    """
    kh, kw, cin, cout = kernel.shape
    b, h, w, _ = x.shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    cols = [
        jax.lax.slice(
            xp,
            (0, i, j, 0),
            (b, i + (ho - 1) * stride + 1, j + (wo - 1) * stride + 1, cin),
            (1, stride, stride, 1),
        )
        for i in range(kh)
        for j in range(kw)
    ]
    patches = jnp.concatenate(cols, axis=-1)  # (b, ho, wo, kh*kw*cin), ordered (i, j, c) like HWIO
    out = patches.reshape(b * ho * wo, kh * kw * cin) @ kernel.reshape(kh * kw * cin, cout)
    return out.reshape(b, ho, wo, cout)


CONV_IMPLS = ("auto", "xla", "patches")


class Conv(nn.Module):
    """Bias-free 2D convolution, HWIO kernel named ``kernel`` (same variables as ``nn.Conv``), with
    PyTorch-style symmetric explicit padding.

    ``impl='auto'`` (default) computes the conv as a patch matmul when the feature map is smaller
    than the kernel (``min(H, W, H_out, W_out) < kernel_size``, e.g. a 3x3 conv on a 2x2 map), and
    with ``lax.conv_general_dilated`` otherwise. Reason: XLA:CPU (jax 0.10.2) compiles such convs
    with swapped operands (optimised HLO: ``window={size=2x2 rhs_reversal=1x1}``,
    ``dim_labels=01fb_o01i->f01b``) and without its fast conv fusion; a 3x3 128->128 conv on 128x2x2 maps takes ~10-20 ms forward and ~20-40 ms with
    its gradient instead of ~0.5/1.5 ms, and 512 channels are ~50x slower. The same happens to the
    input gradient of a stride-2 conv producing a 2x2 map. The results are the same up to float
    summation order. ``'xla'`` / ``'patches'`` force one path.
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    kernel_init: Callable = kaiming_normal_fan_out
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        k, s, p = self.kernel_size, self.stride, self.padding
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features), jnp.float32)
        kernel = kernel.astype(x.dtype)
        h, w = x.shape[1], x.shape[2]
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if self.impl not in CONV_IMPLS:
            raise ValueError(f"Unknown conv impl {self.impl!r}; valid impls are: {', '.join(CONV_IMPLS)}.")
        use_patches = self.impl == "patches" or (self.impl == "auto" and k > 1 and min(h, w, ho, wo) < k)
        if use_patches:
            return _conv_as_patch_matmul(x, kernel, s, p)
        return jax.lax.conv_general_dilated(
            x,
            kernel,
            window_strides=(s, s),
            padding=((p, p), (p, p)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )


def conv(
    features: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    kernel_init: Callable = kaiming_normal_fan_out,
    impl: str = "auto",
    name: str | None = None,
) -> Conv:
    """A bias-free :class:`Conv` with PyTorch-style symmetric explicit padding."""
    return Conv(features, kernel, stride, padding, kernel_init=kernel_init, impl=impl, name=name)


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """torchvision ``BasicBlock`` (expansion 1)."""

    planes: int
    stride: int = 1
    norm: ModuleDef = BatchNorm
    conv_impl: str = "auto"
    expansion: int = 1

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        out_ch = self.planes * self.expansion
        identity = x
        y = conv(self.planes, 3, self.stride, 1, impl=self.conv_impl, name="conv1")(x)
        y = nn.relu(self.norm(name="bn1")(y, train))
        y = conv(self.planes, 3, 1, 1, impl=self.conv_impl, name="conv2")(y)
        y = self.norm(name="bn2")(y, train)
        if self.stride != 1 or x.shape[-1] != out_ch:
            identity = conv(out_ch, 1, self.stride, 0, impl=self.conv_impl, name="downsample_conv")(x)
            identity = self.norm(name="downsample_bn")(identity, train)
        return nn.relu(y + identity)


class Bottleneck(nn.Module):
    """torchvision ``Bottleneck`` v1.5 (stride on the 3x3 conv, expansion 4)."""

    planes: int
    stride: int = 1
    norm: ModuleDef = BatchNorm
    conv_impl: str = "auto"
    expansion: int = 4

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        out_ch = self.planes * self.expansion
        identity = x
        y = conv(self.planes, 1, 1, 0, impl=self.conv_impl, name="conv1")(x)
        y = nn.relu(self.norm(name="bn1")(y, train))
        y = conv(self.planes, 3, self.stride, 1, impl=self.conv_impl, name="conv2")(y)
        y = nn.relu(self.norm(name="bn2")(y, train))
        y = conv(out_ch, 1, 1, 0, impl=self.conv_impl, name="conv3")(y)
        y = self.norm(name="bn3")(y, train)
        if self.stride != 1 or x.shape[-1] != out_ch:
            identity = conv(out_ch, 1, self.stride, 0, impl=self.conv_impl, name="downsample_conv")(x)
            identity = self.norm(name="downsample_bn")(identity, train)
        return nn.relu(y + identity)


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
_STEMS = ("cifar", "imagenet", "pica")


# --------------------------------------------------------------------------------------------------
# ResNet
# --------------------------------------------------------------------------------------------------


class ResNet(nn.Module):
    """torchvision ResNet without ``fc``; returns the global-average-pooled feature.

    Attributes:
      stage_sizes: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
      block: ``'basic'`` or ``'bottleneck'``.
      width: channels of the stem and of stage 1 (64 in torchvision); stage s has width * 2**(s-1)
        planes.
      stem: ``'cifar'`` (3x3/s1 conv, PyTorch default init, no max-pool), ``'imagenet'`` or ``'pica'``.
      norm: factory for the norm layers, called as ``norm(name=...)(x, train)``.
      conv_impl: ``'auto'`` | ``'xla'`` | ``'patches'``, see :class:`Conv`.
    """

    stage_sizes: Sequence[int]
    block: str = "basic"
    width: int = 64
    stem: str = "cifar"
    norm: ModuleDef = BatchNorm
    conv_impl: str = "auto"

    @property
    def out_dim(self) -> int:
        expansion = 4 if self.block == "bottleneck" else 1
        return self.width * 2 ** (len(self.stage_sizes) - 1) * expansion

    @nn.compact
    def __call__(self, x: Array, train: bool) -> Array:
        if self.block not in _BLOCKS:
            raise ValueError(f"Unknown block {self.block!r}; valid blocks are: {', '.join(_BLOCKS)}.")
        block_cls = _BLOCKS[self.block]

        if self.stem in ("cifar", "pica"):
            # ProPos replaces conv1 after torchvision's init loop, so it keeps PyTorch's default init.
            x = conv(self.width, 3, 1, 1, kernel_init=torch_default_kernel_init,
                     impl=self.conv_impl, name="stem_conv")(x)
            x = nn.relu(self.norm(name="stem_bn")(x, train))
            if self.stem == "pica":  # PICA's ResNet-34 (C2BIN A12): then MaxPool2d(2, 2, padding=1)
                x = nn.max_pool(x, (2, 2), strides=(2, 2), padding=((1, 1), (1, 1)))
        elif self.stem == "imagenet":
            x = conv(self.width, 7, 2, 3, impl=self.conv_impl, name="stem_conv")(x)
            x = nn.relu(self.norm(name="stem_bn")(x, train))
            # MaxPool2d(3, 2, padding=1): flax pads max_pool with -inf, as torch does.
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        else:
            raise ValueError(f"Unknown stem {self.stem!r}; valid stems are: {', '.join(_STEMS)}.")

        for s, n_blocks in enumerate(self.stage_sizes):
            planes = self.width * 2**s
            for b in range(n_blocks):
                stride = 2 if (s > 0 and b == 0) else 1
                x = block_cls(planes, stride, norm=self.norm, conv_impl=self.conv_impl,
                              name=f"stage{s + 1}_block{b}")(x, train)

        return jnp.mean(x, axis=(1, 2))


def resnet18(
    width: int = 64, stem: str = "cifar", norm: ModuleDef = BatchNorm, conv_impl: str = "auto"
) -> ResNet:
    return ResNet((2, 2, 2, 2), "basic", width=width, stem=stem, norm=norm, conv_impl=conv_impl)


def resnet10(
    width: int = 64, stem: str = "cifar", norm: ModuleDef = BatchNorm, conv_impl: str = "auto"
) -> ResNet:
    """One basic block per stage: the smallest torchvision-layout ResNet, for fast parity tests."""
    return ResNet((1, 1, 1, 1), "basic", width=width, stem=stem, norm=norm, conv_impl=conv_impl)


def resnet34(
    width: int = 64, stem: str = "cifar", norm: ModuleDef = BatchNorm, conv_impl: str = "auto"
) -> ResNet:
    return ResNet((3, 4, 6, 3), "basic", width=width, stem=stem, norm=norm, conv_impl=conv_impl)


def resnet50(
    width: int = 64, stem: str = "cifar", norm: ModuleDef = BatchNorm, conv_impl: str = "auto"
) -> ResNet:
    return ResNet((3, 4, 6, 3), "bottleneck", width=width, stem=stem, norm=norm, conv_impl=conv_impl)


def count_params(params: Any) -> int:
    """Number of scalars in a pytree of arrays or ``jax.ShapeDtypeStruct`` (e.g. from eval_shape)."""
    return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params)))


__all__ = [
    "BatchNorm",
    "BasicBlock",
    "Bottleneck",
    "CONV_IMPLS",
    "Conv",
    "ResNet",
    "conv",
    "count_params",
    "kaiming_normal_fan_out",
    "resnet18",
    "resnet10",
    "resnet34",
    "resnet50",
    "torch_default_bias_init",
    "torch_default_kernel_init",
]
