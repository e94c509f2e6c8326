"""MLP heads: the ProPos / BYOL projector and predictor.

``MLPHead(hidden_dim, out_dim)`` = Linear -> BatchNorm1d -> ReLU -> Linear, both Linear layers with
biases. Parameter names: ``fc1`` (torch ``0``), ``bn1`` (torch ``1``), ``fc2`` (torch ``3``).
Dense kernels are (in, out) (torch weight is (out, in): ``w_flax = w_torch.T``).

Inits:
  * ``'torch_linear'`` (projector): PyTorch's default ``nn.Linear`` init, weight and bias
    U(+-1/sqrt(fan_in)).
  * ``'normal_0.01'`` (predictor): weight N(0, 0.01) (std 0.01), bias 0.
BatchNorm: gamma 1, beta 0, PyTorch semantics (see :class:`jaxclust.models.resnet.BatchNorm`).
"""

from __future__ import annotations

import jax
import flax.linen as nn

from jaxclust.models.resnet import (
    BatchNorm,
    ModuleDef,
    torch_default_bias_init,
    torch_default_kernel_init,
)

HEAD_INITS = ("torch_linear", "normal_0.01")


def _dense(features: int, fan_in: int, init: str, name: str) -> nn.Dense:
    if init == "torch_linear":
        return nn.Dense(
            features,
            kernel_init=torch_default_kernel_init,
            bias_init=torch_default_bias_init(fan_in),
            name=name,
        )
    if init == "normal_0.01":
        return nn.Dense(
            features,
            kernel_init=nn.initializers.normal(stddev=0.01),
            bias_init=nn.initializers.zeros,
            name=name,
        )
    raise ValueError(f"Unknown head init {init!r}; valid inits are: {', '.join(HEAD_INITS)}.")


class NoNorm(nn.Module):
    """Stands in for the BatchNorm of an MLP head that has none (MoCo v2's head, C2BIN without mlp_bn)."""

    @nn.compact
    def __call__(self, x, train: bool):
        del train
        return x


class MLPHeadModule(nn.Module):
    """The module behind :func:`MLPHead`. The init scheme is the field ``init_scheme`` because a
    linen field called ``init`` would shadow ``Module.init``."""

    hidden_dim: int
    out_dim: int
    init_scheme: str = "torch_linear"
    norm: ModuleDef = BatchNorm

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = _dense(self.hidden_dim, x.shape[-1], self.init_scheme, "fc1")(x)
        x = nn.relu(self.norm(name="bn1")(x, train))
        return _dense(self.out_dim, self.hidden_dim, self.init_scheme, "fc2")(x)


def MLPHead(  # noqa: N802 (reads like a class at call sites)
    hidden_dim: int,
    out_dim: int,
    init: str = "torch_linear",
    norm: ModuleDef = BatchNorm,
    **module_kwargs,
) -> MLPHeadModule:
    """Linear -> BatchNorm1d -> ReLU -> Linear; ``init`` is ``'torch_linear'`` or ``'normal_0.01'``.

    ``module_kwargs`` (e.g. ``name=``) go to :class:`MLPHeadModule`, so this can be used inside a
    parent's ``@nn.compact`` method like a module class.
    """
    if init not in HEAD_INITS:
        raise ValueError(f"Unknown head init {init!r}; valid inits are: {', '.join(HEAD_INITS)}.")
    return MLPHeadModule(hidden_dim, out_dim, init_scheme=init, norm=norm, **module_kwargs)


__all__ = ["HEAD_INITS", "MLPHead", "MLPHeadModule", "NoNorm"]
