"""The one pytree of training state, and the EMA update of the target network."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
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


def initial_state(tx, params, batch_stats, *, target: str | None = None, extra: dict | None = None) -> TrainState:
    """Step 0 of a method's state; the optimiser `tx` is initialised on `params`. With `target`, the
    target network starts as a copy of params[target] and batch_stats[target] (official: a deep copy
    of the online encoder); without, the method has none."""
    copy = (lambda tree: jax.tree.map(jnp.array, tree[target])) if target else (lambda tree: {})
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                      target_params=copy(params), target_batch_stats=copy(batch_stats),
                      opt_state=tx.init(params), extra=extra or {})


def ema_update(target: Any, online: Any, momentum: jax.Array) -> Any:
    """target <- m * target + (1 - m) * online, leaf by leaf (official `_momentum_update_key_encoder`)."""
    return jax.tree.map(lambda t, o: momentum * t + (1.0 - momentum) * o, target, online)
