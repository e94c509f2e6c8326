"""Networks: torchvision-compatible ResNets, a small ConvNet for tiny images, MLP heads.

All modules are Flax linen, called as ``module.apply(variables, x, train, ...)`` with NHWC float32
images; train mode needs ``mutable=['batch_stats']``.
"""

from __future__ import annotations

import functools

from typing import Any

import flax.linen as nn

from jaxclust.models.convnet import POOLS as CONVNET_POOLS, ConvNet
from jaxclust.models.heads import HEAD_INITS, MLPHead, MLPHeadModule
from jaxclust.models.resnet import (
    CONV_IMPLS,
    BasicBlock,
    BatchNorm,
    Bottleneck,
    Conv,
    ResNet,
    count_params,
    resnet10,
    resnet18,
    resnet34,
    resnet50,
)

BACKBONES = ("resnet10", "resnet18", "resnet34", "resnet50", "convnet")
_RESNETS = {"resnet10": resnet10, "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50}


def _check_backbone(name: str) -> None:
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; valid backbones are: {', '.join(BACKBONES)}.")


def make_norm(model_cfg: Any) -> Any:
    """The norm-layer factory handed to every network (``norm(name=...)(x, train)``).

    Under jit on a sharded batch, BatchNorm statistics are those of the whole global batch on any
    number of devices (synchronised BN). ``model.bn_groups = G`` > 1 computes them over G equal
    slices instead (ghost BN), which reproduces a G-GPU PyTorch run's per-GPU BatchNorm.
    """
    groups = int(model_cfg.get("bn_groups", 1))
    return BatchNorm if groups == 1 else functools.partial(BatchNorm, groups=groups)


def build_backbone(model_cfg: Any) -> nn.Module:
    """Backbone from ``model_cfg`` (ConfigDict or mapping) keys ``backbone``, ``width``, ``stem``,
    ``convnet_widths``; optional: ``convnet_blocks_per_stage`` (default 2), ``conv_impl``
    (``'auto'`` | ``'xla'`` | ``'patches'``, default ``'auto'``, see :class:`jaxclust.models.resnet.Conv`)."""
    name = model_cfg["backbone"]
    _check_backbone(name)
    norm = make_norm(model_cfg)
    conv_impl = model_cfg.get("conv_impl", "auto")
    if name == "convnet":
        return ConvNet(
            widths=tuple(model_cfg["convnet_widths"]),
            blocks_per_stage=int(model_cfg.get("convnet_blocks_per_stage", 2)),
            norm=norm,
            conv_impl=conv_impl,
            pool=model_cfg.get("convnet_pool", "avg"),
        )
    return _RESNETS[name](
        width=int(model_cfg["width"]), stem=model_cfg["stem"], norm=norm, conv_impl=conv_impl
    )


def backbone_out_dim(model_cfg: Any) -> int:
    """Feature dimension of :func:`build_backbone`'s output, without building or running it."""
    name = model_cfg["backbone"]
    _check_backbone(name)
    if name == "convnet":
        if model_cfg.get("convnet_pool", "avg") == "flatten":
            raise ValueError("model.convnet_pool 'flatten' gives features whose size depends on the image "
                             "size; this head needs 'avg' or 'max'.")
        return int(tuple(model_cfg["convnet_widths"])[-1])
    width = int(model_cfg["width"])
    return 32 * width if name == "resnet50" else 8 * width


__all__ = [
    "BACKBONES",
    "CONVNET_POOLS",
    "HEAD_INITS",
    "CONV_IMPLS",
    "BasicBlock",
    "BatchNorm",
    "Bottleneck",
    "Conv",
    "ConvNet",
    "MLPHead",
    "MLPHeadModule",
    "ResNet",
    "backbone_out_dim",
    "build_backbone",
    "count_params",
    "make_norm",
    "resnet10",
    "resnet18",
    "resnet34",
    "resnet50",
]
