"""A small conv-BN-ReLU network for tiny images (e.g. 8x8 sklearn digits, 28x28 MNIST).

Same conventions as :mod:`jaxclust.models.resnet`: bias-free 3x3 convs with explicit padding 1,
torchvision's conv init (kaiming normal, fan_out, relu), PyTorch-style BatchNorm
(momentum 0.9 in flax terms, epsilon 1e-5), global average pool at the end (or, with ``pool``, global
max pool or the flattened last map, which keeps the layout that 28x28 digits are told apart by).

Parameter names: ``stage{s}_block{b}/conv`` and ``stage{s}_block{b}/bn`` (s from 1, b from 0).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

from jaxclust.models.resnet import BatchNorm, ModuleDef, conv


class ConvBNReLU(nn.Module):
    features: int
    stride: int = 1
    norm: ModuleDef = BatchNorm
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = conv(self.features, 3, self.stride, 1, impl=self.conv_impl, name="conv")(x)
        return nn.relu(self.norm(name="bn")(x, train))


class ConvNet(nn.Module):
    """Stages of ``blocks_per_stage`` x (conv3x3 -> BN -> ReLU); the first conv of every stage after
    the first has stride 2. Returns the pooled last map: (B, widths[-1]) for ``pool`` 'avg' or 'max',
    (B, h * w * widths[-1]) for 'flatten' (h, w: the last map's side, the input's over 2 ** (stages - 1))."""

    widths: Sequence[int] = (32, 64, 128)
    blocks_per_stage: int = 2
    norm: ModuleDef = BatchNorm
    conv_impl: str = "auto"  # see jaxclust.models.resnet.Conv
    pool: str = "avg"  # one of POOLS

    @property
    def out_dim(self) -> int:
        return int(self.widths[-1])

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if self.blocks_per_stage < 1 or len(self.widths) < 1:
            raise ValueError("ConvNet needs at least one stage and one block per stage.")
        if self.pool not in POOLS:
            raise ValueError(f"ConvNet pool must be one of {', '.join(POOLS)}; got {self.pool!r}.")
        for s, w in enumerate(self.widths):
            for b in range(self.blocks_per_stage):
                stride = 2 if (s > 0 and b == 0) else 1
                x = ConvBNReLU(w, stride, norm=self.norm, conv_impl=self.conv_impl,
                               name=f"stage{s + 1}_block{b}")(x, train)
        if self.pool == "flatten":
            return x.reshape(x.shape[0], -1)
        return jnp.max(x, axis=(1, 2)) if self.pool == "max" else jnp.mean(x, axis=(1, 2))


#: ConvNet's poolings of its last map
POOLS = ("avg", "max", "flatten")

__all__ = ["ConvBNReLU", "ConvNet", "POOLS"]
