"""Learning-rate and EMA schedules, and the optimiser, as in the official ProPos code.

Schedules are pure functions of the **1-based** iteration count ``n``: the official loop calls
``adjust_learning_rate(n_iter)`` with n = 1 ... total before each step, so a train step whose
0-based counter is ``step`` evaluates them at ``n = step + 1``. Each works

* on Python / numpy numbers and arrays, in float64 (numpy path), and
* on jax arrays, including tracers under ``jit``, in the default jax float dtype (float32).

The cosine parts are written in an algebraically identical but cancellation-free form
(``(1 + cos x) / 2 == sin((pi - x) / 2) ** 2``). The official ``1 + cos x`` loses all relative
precision in float32 near the end of training (x -> pi): at epoch 999 of 1000 it is off by ~2e-2
relative; the rewritten form stays within a few float32 ulps of the float64 official values.

References: ``shared/reference/propos_official.md`` Sec. 1.4 and 2.8, fixture
``shared/fixtures/propos_official/schedules.npz``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "warmup_cosine_lr",
    "stepwise_cosine_lr",
    "ema_momentum",
    "scaled_base_lr",
    "make_optimizer",
]

_SCHEDULES = ("warmup_cosine", "stepwise_cosine", "constant")
_OPTIMIZERS = ("sgd", "adam", "lars")
# LARS trust coefficient eta of SimCLR / BYOL (C2BIN Table 5 names LARS without its constants).
LARS_TRUST_COEFFICIENT = 1e-3


def _backend(n):
    """Returns (array module, n as a float array of that module).

    jax arrays (and tracers) stay in jax, in the default float dtype (float32 unless x64 is on);
    everything else becomes a float64 numpy array.
    """
    if isinstance(n, jax.Array):
        return jnp, jnp.asarray(n, dtype=jnp.result_type(float))
    return np, np.asarray(n, dtype=np.float64)


def _finish(xp, value):
    """Numpy 0-d results come back as numpy scalars rather than 0-d arrays."""
    if xp is np and np.ndim(value) == 0:
        return np.float64(value)
    return value


def warmup_cosine_lr(n, base_lr, warmup_epochs, epochs, iters_per_epoch, eta_min=0.0):
    """Official ``TrainTask.cosine_annealing_LR``: linear warm-up, then cosine to the total epochs.

    With e = n / iters_per_epoch (fractional epoch, 1-based n):
      * e < warmup_epochs: ``base_lr * e / warmup_epochs``;
      * otherwise: ``eta_min + 0.5 (base_lr - eta_min) (1 + cos((e - warmup_epochs) pi / epochs))``.

    The cosine denominator is the total number of epochs, not the post-warm-up ones, so the last LR
    is 0.62 % of the peak for 50/1000 epochs, not ``eta_min``.
    """
    xp, n = _backend(n)
    warmup_iters = float(warmup_epochs) * float(iters_per_epoch)
    # official basic_template.py: denominator is total epochs. With u = e - warmup and
    # x = u pi / epochs, (1 + cos x)/2 = sin(pi (epochs - u) / (2 epochs))**2; epochs - u in
    # iterations is (epochs + warmup) * ipe - n, an exact integer in float32 (no cancellation).
    end_iters = (float(epochs) + float(warmup_epochs)) * float(iters_per_epoch)
    angle_per_iter = math.pi / (2.0 * float(epochs) * float(iters_per_epoch))
    cosine = eta_min + (base_lr - eta_min) * xp.sin((end_iters - n) * angle_per_iter) ** 2
    if warmup_iters <= 0:
        return _finish(xp, cosine)
    warm = base_lr * n / warmup_iters  # = base * e / warmup
    return _finish(xp, xp.where(n < warmup_iters, warm, cosine))


def stepwise_cosine_lr(n, base_lr, warmup_epochs, epochs, iters_per_epoch):
    """The ``propos_cifar20_r34`` LR (``BYOL_CIFAR20_R34.cosine_annealing_LR``, SupContrast style).

    With the integer epoch E = (n - 1) // iters_per_epoch:
      * E < warmup_epochs: per-iteration linear warm-up from 0 to the cosine value at the end of
        warm-up, ``n / (warmup_epochs * ipe) * base_lr (1 + cos(pi warmup_epochs / epochs)) / 2``;
      * otherwise: ``base_lr (1 + cos(pi E / epochs)) / 2``, constant within an epoch.
    """
    xp, n = _backend(n)
    ipe = float(iters_per_epoch)
    epoch = xp.floor((n - 1.0) / ipe)  # official (n_iter - 1) // iter_per_epoch
    half_angle = math.pi / (2.0 * float(epochs))
    # (1 + cos(pi E / epochs)) / 2 = sin(pi (epochs - E) / (2 epochs))**2, exact-argument form.
    cosine = base_lr * xp.sin((float(epochs) - epoch) * half_angle) ** 2
    warmup_iters = float(warmup_epochs) * ipe
    if warmup_iters <= 0:
        return _finish(xp, cosine)
    warm_to = base_lr * math.cos(float(warmup_epochs) * half_angle) ** 2  # host float64 constant
    warm = n / warmup_iters * warm_to
    return _finish(xp, xp.where(epoch < float(warmup_epochs), warm, cosine))


def ema_momentum(n, base, total_steps, increase):
    """Target-network EMA momentum m (``target = m target + (1 - m) online``).

    Constant ``base`` (official CIFAR-10 R18), or with ``increase`` the BYOL cosine ramp to 1,
    ``1 - (1 - base) (cos(pi n / total_steps) + 1) / 2`` (official byol.py, ``momentum_increase``).
    ``increase`` is a Python bool (static under jit).
    """
    xp, n = _backend(n)
    if not increase:
        return _finish(xp, xp.full(xp.shape(n), base, dtype=n.dtype))
    # (cos x + 1) / 2 = cos(x / 2)**2: same value, one fewer rounding step near x = pi.
    ramp = xp.cos(n * (math.pi / (2.0 * float(total_steps)))) ** 2
    return _finish(xp, 1.0 - (1.0 - base) * ramp)


def scaled_base_lr(lr, batch_size, reference_batch=256):
    """Linear LR scaling with the global batch: ``lr * batch_size / reference_batch``.

    Official basic_template.py: ``opt.learning_rate *= total_batch_size / 256`` (0.05 at 512 -> 0.1).
    """
    if batch_size <= 0 or reference_batch <= 0:
        raise ValueError(f"batch_size and reference_batch must be positive, got {batch_size} and {reference_batch}.")
    return float(lr) * float(batch_size) / float(reference_batch)


def _cfg_get(cfg, key, default=None, required=False):
    """Reads ``key`` from a ConfigDict or mapping, with a one-sentence error if it is required."""
    if key in cfg:
        return cfg[key]
    if required:
        raise KeyError(f"optim config is missing the key {key!r}; set config.optim.{key}.")
    return default


def _scale_top_level(multipliers: Mapping[str, float]) -> optax.GradientTransformation:
    """Multiplies the updates under the given top-level keys of the params dict by constants.

    Applied after the LR scaling, this is a per-group LR multiplier: torch SGD's momentum buffer
    does not depend on the LR, so ``lr * mult * buf == mult * (lr * buf)``.
    """

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        if not isinstance(updates, Mapping):
            raise TypeError("per-group LR multipliers need the params to be a dict keyed by sub-network name.")

        def scale(path, u):
            key = getattr(path[0], "key", None)
            mult = multipliers.get(key)
            return u if mult is None else u * mult

        return jax.tree_util.tree_map_with_path(scale, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer(optim_cfg, iters_per_epoch, epochs, batch_size):
    """Builds the official ProPos optimiser: ``torch.optim.SGD`` under a per-iteration LR schedule.

    Args:
      optim_cfg: ConfigDict (or mapping) with ``name`` ("sgd" | "adam" | "lars"), ``lr`` (base LR before the batch
        scaling), ``momentum``, ``weight_decay``, ``warmup_epochs``, and optionally ``nesterov``
        (False), ``eta_min`` (0.), ``schedule`` ("warmup_cosine" | "stepwise_cosine", default
        "warmup_cosine"; "constant": linear warm-up then flat) and ``predictor_lr_mult`` (1.; ProPos
        uses 10). "adam" is torch Adam (L2 weight decay, beta1 = momentum); "lars" excludes parameters
        with ndim <= 1 from weight decay and the trust ratio (coefficient LARS_TRUST_COEFFICIENT).
      iters_per_epoch: optimiser steps per epoch.
      epochs: total number of epochs.
      batch_size: global batch size, for the linear LR scaling (x batch / 256).

    Returns:
      ``(tx, lr_fn)``. ``tx`` reproduces SGD(momentum, weight_decay) exactly: coupled weight decay on
      all parameters (g <- g + wd p), buf <- m buf + g (buf = g on the first step), p <- p - lr_n buf,
      with lr_n the schedule at n = count + 1. Parameters under the top-level key ``"predictor"`` get
      ``lr_n * predictor_lr_mult``. ``lr_fn(step)`` takes the **0-based** step (optax's count, the
      train state's step) and returns the backbone LR used at that step, i.e. the schedule at
      ``n = step + 1``.
    """
    name = _cfg_get(optim_cfg, "name", required=True)
    if name not in _OPTIMIZERS:
        raise ValueError(f"optim.name must be one of {_OPTIMIZERS}, got {name!r}.")
    base_lr = scaled_base_lr(_cfg_get(optim_cfg, "lr", required=True), batch_size)
    momentum = float(_cfg_get(optim_cfg, "momentum", required=True))
    weight_decay = float(_cfg_get(optim_cfg, "weight_decay", required=True))
    warmup_epochs = _cfg_get(optim_cfg, "warmup_epochs", required=True)
    nesterov = bool(_cfg_get(optim_cfg, "nesterov", False))
    eta_min = float(_cfg_get(optim_cfg, "eta_min", 0.0))
    schedule = _cfg_get(optim_cfg, "schedule", "warmup_cosine")
    predictor_lr_mult = float(_cfg_get(optim_cfg, "predictor_lr_mult", 1.0))

    if iters_per_epoch <= 0 or epochs <= 0:
        raise ValueError(f"iters_per_epoch and epochs must be positive, got {iters_per_epoch} and {epochs}.")
    if not 0 <= warmup_epochs <= epochs:
        raise ValueError(f"optim.warmup_epochs must lie in [0, epochs={epochs}], got {warmup_epochs}.")
    if momentum < 0 or weight_decay < 0:
        raise ValueError(f"optim.momentum and optim.weight_decay must be non-negative, got {momentum} and {weight_decay}.")
    if nesterov and momentum <= 0:
        raise ValueError("optim.nesterov needs optim.momentum > 0, as in torch.optim.SGD.")

    if schedule == "warmup_cosine":
        def lr_at(n):
            return warmup_cosine_lr(n, base_lr, warmup_epochs, epochs, iters_per_epoch, eta_min)
    elif schedule == "stepwise_cosine":
        if eta_min != 0.0:
            raise ValueError("optim.schedule='stepwise_cosine' (official propos_cifar20_r34) has no eta_min; set optim.eta_min=0.")

        def lr_at(n):
            return stepwise_cosine_lr(n, base_lr, warmup_epochs, epochs, iters_per_epoch)
    elif schedule == "constant":  # C2BIN Table 5: Constant(0.2); linear warm-up first if warmup_epochs > 0
        warmup_iters = float(warmup_epochs) * float(iters_per_epoch)

        def lr_at(n):
            xp, n = _backend(n)
            return _finish(xp, base_lr * xp.minimum(1.0, n / warmup_iters) if warmup_iters > 0 else base_lr + 0.0 * n)
    else:
        raise ValueError(f"optim.schedule must be one of {_SCHEDULES}, got {schedule!r}.")

    def lr_fn(step):
        # optax counts from 0; the official loop calls the schedule with n = 1 before the first step.
        return lr_at(step + 1)

    if name == "sgd":
        parts = [
            # torch SGD weight_decay is coupled (added to the gradient) and hits ALL params, incl. BN and
            # biases (official byol.py: one param group per parameter, no exclusions).
            optax.add_decayed_weights(weight_decay),
            # torch: buf = m buf + g (buf = g at step 1, equal to m*0 + g); nesterov: g + m buf.
            optax.trace(decay=momentum, nesterov=nesterov),
        ]
    elif name == "adam":  # torch.optim.Adam: coupled L2 weight decay, betas (momentum, 0.999), eps 1e-8
        parts = [optax.add_decayed_weights(weight_decay), optax.scale_by_adam(b1=momentum, b2=0.999, eps=1e-8)]
    else:  # lars, SimCLR/BYOL convention: biases and BN (ndim <= 1) get neither weight decay nor trust ratio
        def matrices(params):
            return jax.tree.map(lambda p: p.ndim > 1, params)

        parts = [
            optax.add_decayed_weights(weight_decay, mask=matrices),
            optax.masked(optax.scale_by_trust_ratio(trust_coefficient=LARS_TRUST_COEFFICIENT), matrices),
            optax.trace(decay=momentum, nesterov=nesterov),
        ]
    parts.append(optax.scale_by_schedule(lambda count: -lr_fn(count)))
    if predictor_lr_mult != 1.0:
        # official byol.py: predictor group lr = lr * lambda_predictor_lr.
        parts.append(_scale_top_level({"predictor": predictor_lr_mult}))
    return optax.chain(*parts), lr_fn
