"""A small conv-BN-ReLU network for tiny images (e.g. 8x8 sklearn digits, 28x28 MNIST).

Same conventions as :mod:`jaxclust.models.resnet`: bias-free 3x3 convs with explicit padding 1,
torchvision's conv init (kaiming normal, fan_out, relu), PyTorch-style BatchNorm
(momentum 0.9 in flax terms, epsilon 1e-5), global average pool at the end.

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
    the first has stride 2. Returns the global-average-pooled feature, (B, widths[-1])."""

    widths: Sequence[int] = (32, 64, 128)
    blocks_per_stage: int = 2
    norm: ModuleDef = BatchNorm
    conv_impl: str = "auto"  # see jaxclust.models.resnet.Conv

    @property
    def out_dim(self) -> int:
        return int(self.widths[-1])

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if self.blocks_per_stage < 1 or len(self.widths) < 1:
            raise ValueError("ConvNet needs at least one stage and one block per stage.")
        for s, w in enumerate(self.widths):
            for b in range(self.blocks_per_stage):
                stride = 2 if (s > 0 and b == 0) else 1
                x = ConvBNReLU(w, stride, norm=self.norm, conv_impl=self.conv_impl,
                               name=f"stage{s + 1}_block{b}")(x, train)
        return jnp.mean(x, axis=(1, 2))


__all__ = ["ConvBNReLU", "ConvNet"]
