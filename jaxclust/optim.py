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
``shared/fixtures/propos_official/schedules.npz``; ``warmup_cosine_to_end``: ``shared/reference/seed_secu.md``
(official SeCu main.py ``adjust_learning_rate``).

The options of the ``optim`` section mean the same for every method (``make_optimizer``): ``schedule``,
``eta_min``, ``warmup_epochs`` and ``frozen_epochs`` shape the learning rate of every parameter a method
does not give a learning rate of its own; ``lr_batch_scaling`` says whether ``lr`` grows with the batch;
``predictor_lr_mult`` multiplies it for the top-level parameter group ``"predictor"``. A method gives a
top-level group a constant learning rate (SeCu's centres) or leaves it untrained by the optimiser
(SeCu-CF's centres) with ``make_optimizer``'s ``constant_lr`` and ``untrained`` arguments.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxclust.config import ConfigError

__all__ = [
    "warmup_cosine_lr",
    "stepwise_cosine_lr",
    "warmup_cosine_to_end_lr",
    "ema_momentum",
    "scaled_base_lr",
    "make_optimizer",
    "validate",
]

_SCHEDULES = ("warmup_cosine", "stepwise_cosine", "constant", "warmup_cosine_to_end")
_LR_BATCH_SCALINGS = ("linear", "none")
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


def warmup_cosine_to_end_lr(n, base_lr, warmup_epochs, epochs, iters_per_epoch, eta_min=0.0):
    """SeCu's LR (official idstcv/SeCu main.py ``adjust_learning_rate``; its initialisation epoch at lr 0
    is ``optim.frozen_epochs``, see ``make_optimizer``): linear warm-up, then a cosine over the remaining
    iterations that reaches ``eta_min`` at the end of training.

    With c = n - 1 (the 0-based step), I = iters_per_epoch, W warm-up and E total epochs:
      * c < W I: ``base_lr * max(1, c) / (W I)`` (the first two steps share base_lr / (W I));
      * otherwise: ``eta_min + (base_lr - eta_min) (1 + cos(pi (c - W I) / (E I - W I))) / 2``.

    Unlike ``warmup_cosine_lr`` the cosine spans the post-warm-up iterations only (``eta_min`` at
    c = E I, the step after the last). Computed as the official formula (plain ``1 + cos``, which the
    SeCu results were produced with), so the float32 values are SeCu's own.
    """
    xp, n = _backend(n)
    c = n - 1.0
    i = float(iters_per_epoch)
    warm = float(warmup_epochs) * i
    total = float(epochs) * i
    lr_warm = base_lr * xp.maximum(1.0, c) / max(warm, 1.0)
    cosine = (base_lr - eta_min) * 0.5 * (1.0 + xp.cos(math.pi * (c - warm) / max(total - warm, 1.0)))
    if eta_min:
        cosine = eta_min + cosine
    return _finish(xp, xp.where(c < warm, lr_warm, cosine))


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


def _per_top_level_group(default: Callable[[], optax.GradientTransformation],
                         special: Mapping[str, optax.GradientTransformation]) -> optax.GradientTransformation:
    """``optax.multi_transform`` with one group per top-level key of the params: the keys of ``special``
    get their transformation, every other key its own instance of ``default()``. The groups are read
    from the params at init and update, so the optimiser needs no list of them beforehand."""

    def build(tree):
        if not isinstance(tree, Mapping):
            raise TypeError("per-group learning rates need the params to be a dict keyed by sub-network name.")
        missing = sorted(set(special) - set(tree))
        if missing:
            raise ValueError(f"parameter group(s) {missing} given a learning rate of their own are not top-level "
                             f"keys of the params ({sorted(tree)}).")
        transforms = {key: special[key] if key in special else default() for key in tree}
        return optax.multi_transform(transforms, lambda p: {k: jax.tree.map(lambda _, k=k: k, sub) for k, sub in p.items()})

    def init_fn(params):
        return build(params).init(params)

    def update_fn(updates, state, params=None):
        return build(updates).update(updates, state, params)

    return optax.GradientTransformation(init_fn, update_fn)


def validate(cfg) -> None:
    """ConfigError for an `optim.*` value that cannot work (part of `jaxclust.trainer.check_config`)."""
    check(cfg.optim, cfg.train.epochs)


def require_no_predictor(cfg) -> None:
    """ConfigError unless optim.predictor_lr_mult is 1, for a method whose networks have no predictor
    (the multiplier would otherwise be silently ignored)."""
    if cfg.optim.predictor_lr_mult != 1.0:
        raise ConfigError(f"optim.predictor_lr_mult ({cfg.optim.predictor_lr_mult}) scales the lr of a predictor, "
                          f"which {cfg.method.name} has not; set --config.optim.predictor_lr_mult=1.")


def check(optim_cfg, epochs) -> None:
    """The checks of `validate` on an optim section and the run's epochs (also run by make_optimizer)."""
    name = _cfg_get(optim_cfg, "name", required=True)
    if name not in _OPTIMIZERS:
        raise ConfigError(f"optim.name must be one of {', '.join(map(repr, _OPTIMIZERS))}; got {name!r}.")
    schedule = _cfg_get(optim_cfg, "schedule", "warmup_cosine")
    if schedule not in _SCHEDULES:
        raise ConfigError(f"optim.schedule must be one of {', '.join(map(repr, _SCHEDULES))}; got {schedule!r}.")
    lr = _cfg_get(optim_cfg, "lr", required=True)
    if not lr > 0:
        raise ConfigError(f"optim.lr must be positive, got {lr!r}.")
    if not isinstance(epochs, int) or epochs <= 0:
        raise ConfigError(f"train.epochs must be a positive integer, got {epochs!r}.")
    frozen_epochs = _cfg_get(optim_cfg, "frozen_epochs", 0)
    if not isinstance(frozen_epochs, int) or not 0 <= frozen_epochs < epochs:
        raise ConfigError(f"optim.frozen_epochs (epochs at lr 0 before the schedule) must be an integer in "
                          f"[0, train.epochs = {epochs}), got {frozen_epochs!r}.")
    warmup_epochs = _cfg_get(optim_cfg, "warmup_epochs", required=True)
    if not 0 <= warmup_epochs <= epochs - frozen_epochs:
        raise ConfigError(f"optim.warmup_epochs ({warmup_epochs}) must lie between 0 and train.epochs ({epochs}) "
                          f"less optim.frozen_epochs ({frozen_epochs}); for a shorter run also give "
                          "--config.optim.warmup_epochs=N.")
    if schedule == "warmup_cosine_to_end" and not warmup_epochs < epochs - frozen_epochs:
        raise ConfigError(
            f"train.epochs ({epochs}) must exceed optim.frozen_epochs plus optim.warmup_epochs ({frozen_epochs} + "
            f"{warmup_epochs}): optim.schedule='warmup_cosine_to_end' needs an epoch for its cosine; official SeCu "
            "CIFAR-10 uses 401 = 1 + 400 with 10 warm-up epochs.")
    scaling = _cfg_get(optim_cfg, "lr_batch_scaling", "linear")
    if scaling not in _LR_BATCH_SCALINGS:
        raise ConfigError(f"optim.lr_batch_scaling must be one of {', '.join(map(repr, _LR_BATCH_SCALINGS))}; "
                          f"got {scaling!r}.")
    momentum = float(_cfg_get(optim_cfg, "momentum", required=True))
    weight_decay = float(_cfg_get(optim_cfg, "weight_decay", required=True))
    if not 0 <= momentum < 1:  # 1 or more: the velocity never decays (Adam: its bias correction divides by 0)
        raise ConfigError(f"optim.momentum (SGD's momentum, Adam's beta1) must lie in [0, 1), got {momentum}.")
    if weight_decay < 0:
        raise ConfigError(f"optim.weight_decay must be >= 0, got {weight_decay}.")
    if _cfg_get(optim_cfg, "nesterov", False) and momentum <= 0:
        raise ConfigError("optim.nesterov needs optim.momentum > 0, as in torch.optim.SGD.")
    eta_min = float(_cfg_get(optim_cfg, "eta_min", 0.0))
    if schedule == "stepwise_cosine" and eta_min != 0.0:
        raise ConfigError("optim.schedule='stepwise_cosine' (official propos_cifar20_r34) has no eta_min; "
                          "set optim.eta_min=0.")
    if schedule == "constant" and eta_min != 0.0:
        raise ConfigError("optim.schedule='constant' never decays, so optim.eta_min would be ignored; set "
                          "optim.eta_min=0 or a decaying optim.schedule.")
    if eta_min < 0:
        raise ConfigError(f"optim.eta_min must be non-negative, got {eta_min!r}.")
    if float(_cfg_get(optim_cfg, "predictor_lr_mult", 1.0)) < 0:
        raise ConfigError("optim.predictor_lr_mult must be non-negative.")


def make_optimizer(optim_cfg, iters_per_epoch, epochs, batch_size, constant_lr: Mapping[str, float] | None = None,
                   untrained: Sequence[str] = ()):
    """Builds the official ProPos optimiser: ``torch.optim.SGD`` under a per-iteration LR schedule.

    Args:
      optim_cfg: ConfigDict (or mapping) with ``name`` ("sgd" | "adam" | "lars"), ``lr`` (base LR before the batch
        scaling), ``momentum``, ``weight_decay``, ``warmup_epochs``, and optionally ``nesterov``
        (False), ``eta_min`` (0.), ``schedule`` (default "warmup_cosine"; "stepwise_cosine";
        "constant": linear warm-up then flat; "warmup_cosine_to_end": SeCu's, ``warmup_cosine_to_end_lr``),
        ``frozen_epochs`` (0: epochs at lr 0 before the schedule, which then runs over the remaining
        ``epochs - frozen_epochs``), ``lr_batch_scaling`` ("linear": ``lr * batch_size / 256``, default;
        "none": ``lr`` as given) and ``predictor_lr_mult`` (1.; ProPos uses 10). "adam" is torch Adam (L2
        weight decay, beta1 = momentum); "lars" excludes parameters with ndim <= 1 from weight decay and
        the trust ratio (coefficient LARS_TRUST_COEFFICIENT).
      iters_per_epoch: optimiser steps per epoch.
      epochs: total number of epochs.
      batch_size: global batch size, for the linear LR scaling (x batch / 256).
      constant_lr: {top-level params key: lr}: those groups are stepped by the same optimiser (weight
        decay, momentum) at that constant, unscaled LR from the first step on (no schedule, frozen epochs,
        batch scaling or multiplier); SeCu's centres.
      untrained: top-level params keys whose update is zero (no weight decay either): parameters the
        method sets itself (SeCu-CF's centres).

    Returns:
      ``(tx, lr_fn)``. ``tx`` reproduces SGD(momentum, weight_decay) exactly: coupled weight decay on
      all parameters (g <- g + wd p), buf <- m buf + g (buf = g on the first step), p <- p - lr_n buf,
      with lr_n the schedule at n = count + 1. Parameters under the top-level key ``"predictor"`` get
      ``lr_n * predictor_lr_mult``. ``lr_fn(step)`` takes the **0-based** step (optax's count, the
      train state's step) and returns the backbone LR used at that step, i.e. the schedule at
      ``n = step + 1`` (``n = step + 1 - frozen_epochs * iters_per_epoch`` after the frozen epochs, 0 in them).
      With ``constant_lr`` or ``untrained``, ``tx`` is an ``optax.multi_transform`` with one group per
      top-level key of the params.
    """
    check(optim_cfg, epochs)
    name = _cfg_get(optim_cfg, "name", required=True)
    lr = _cfg_get(optim_cfg, "lr", required=True)
    scaling = _cfg_get(optim_cfg, "lr_batch_scaling", "linear")
    base_lr = scaled_base_lr(lr, batch_size) if scaling == "linear" else float(lr)
    momentum = float(_cfg_get(optim_cfg, "momentum", required=True))
    weight_decay = float(_cfg_get(optim_cfg, "weight_decay", required=True))
    warmup_epochs = _cfg_get(optim_cfg, "warmup_epochs", required=True)
    frozen_epochs = _cfg_get(optim_cfg, "frozen_epochs", 0)
    nesterov = bool(_cfg_get(optim_cfg, "nesterov", False))
    eta_min = float(_cfg_get(optim_cfg, "eta_min", 0.0))
    schedule = _cfg_get(optim_cfg, "schedule", "warmup_cosine")
    predictor_lr_mult = float(_cfg_get(optim_cfg, "predictor_lr_mult", 1.0))
    constant_lr = dict(constant_lr or {})
    if iters_per_epoch <= 0:
        raise ValueError(f"iters_per_epoch must be positive, got {iters_per_epoch}.")
    if set(constant_lr) & set(untrained):
        raise ValueError(f"a parameter group is either trained at a constant lr or untrained, not both: "
                         f"{sorted(set(constant_lr) & set(untrained))}.")
    scheduled_epochs = epochs - frozen_epochs  # the schedule starts after the frozen epochs

    if schedule == "warmup_cosine":
        def lr_at(n):
            return warmup_cosine_lr(n, base_lr, warmup_epochs, scheduled_epochs, iters_per_epoch, eta_min)
    elif schedule == "stepwise_cosine":
        def lr_at(n):
            return stepwise_cosine_lr(n, base_lr, warmup_epochs, scheduled_epochs, iters_per_epoch)
    elif schedule == "warmup_cosine_to_end":
        def lr_at(n):
            return warmup_cosine_to_end_lr(n, base_lr, warmup_epochs, scheduled_epochs, iters_per_epoch, eta_min)
    elif schedule == "constant":  # C2BIN Table 5: Constant(0.2); linear warm-up first if warmup_epochs > 0
        warmup_iters = float(warmup_epochs) * float(iters_per_epoch)

        def lr_at(n):
            xp, n = _backend(n)
            return _finish(xp, base_lr * xp.minimum(1.0, n / warmup_iters) if warmup_iters > 0 else base_lr + 0.0 * n)

    frozen_iters = int(frozen_epochs) * int(iters_per_epoch)

    def lr_fn(step):
        # optax counts from 0; the official loop calls the schedule with n = 1 before the first step.
        if not frozen_iters:
            return lr_at(step + 1)
        xp = jnp if isinstance(step, jax.Array) else np
        return _finish(xp, xp.where(step < frozen_iters, 0.0, lr_at(step - frozen_iters + 1)))

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
    scheduled = parts + [optax.scale_by_schedule(lambda count: -lr_fn(count))]
    if predictor_lr_mult != 1.0:
        # official byol.py: predictor group lr = lr * lambda_predictor_lr.
        scheduled.append(_scale_top_level({"predictor": predictor_lr_mult}))
    if not constant_lr and not untrained:
        return optax.chain(*scheduled), lr_fn

    def constant(value):  # torch: a param group with its own lr and no scheduler
        return optax.chain(*parts, optax.scale_by_schedule(lambda count: -value))

    special = {key: constant(float(value)) for key, value in constant_lr.items()}
    special.update({key: optax.set_to_zero() for key in untrained})
    return _per_top_level_group(lambda: optax.chain(*scheduled), special), lr_fn
