"""The one pytree of training state, and the EMA update of the target network."""
from __future__ import annotations

from typing import Any

import jax
from flax import struct


@struct.dataclass
class TrainState:
    """Everything a run needs to continue; checkpoints save exactly this.

    params / batch_stats: the online network (and predictor), trained by the optimiser.
    target_params / target_batch_stats: the EMA network. Only its params are averaged; it keeps
      BatchNorm statistics of its own, updated by its own forward passes (official ProPos, BYOL).
    extra: what is particular to a method, e.g. {"pseudo_labels": (N,), "centroids": (K, D)}.
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    target_params: Any
    target_batch_stats: Any
    opt_state: Any
    extra: Any


def ema_update(target: Any, online: Any, momentum: jax.Array) -> Any:
    """target <- m * target + (1 - m) * online, leaf by leaf (official `_momentum_update_key_encoder`)."""
    return jax.tree.map(lambda t, o: momentum * t + (1.0 - momentum) * o, target, online)
