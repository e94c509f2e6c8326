"""LR / EMA schedules against the official ProPos values (schedules.npz), and SGD against torch's rule."""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from fixtures import load_official
from jaxclust import optim
from jaxclust.config import ConfigError


@pytest.fixture(scope="module")
def sched():
    return load_official("schedules.npz")


def _r18_args(d):
    return dict(
        base_lr=float(d["base_lr_scaled"]),
        warmup_epochs=int(d["warmup_epochs"]),
        epochs=int(d["epochs"]),
        iters_per_epoch=int(d["iter_per_epoch"]),
        eta_min=float(d["eta_min"]),
    )


def _r34_args(d):
    # cifar20_r34_propos.yml shares warmup 50 / 1000 epochs with the R18 config (fixture README Sec. 5).
    return dict(
        base_lr=float(d["r34_base_lr_scaled"]),
        warmup_epochs=int(d["warmup_epochs"]),
        epochs=int(d["epochs"]),
        iters_per_epoch=int(d["r34_iter_per_epoch"]),
    )


def _cases(d):
    """(name, n array, fn(n) -> value, expected) for every array of schedules.npz."""
    r18, r34 = _r18_args(d), _r34_args(d)
    mult = float(d["lambda_predictor_lr"])
    base_m = float(d["momentum_base"])
    t18 = r18["epochs"] * r18["iters_per_epoch"]
    t34 = r34["epochs"] * r34["iters_per_epoch"]
    n18, n34 = d["n_iter"], d["r34_n_iter"]
    return [
        ("lr", n18, lambda n: optim.warmup_cosine_lr(n, **r18), d["lr"]),
        ("predictor_lr", n18, lambda n: mult * optim.warmup_cosine_lr(n, **r18), d["predictor_lr"]),
        ("ema_momentum_increase", n18, lambda n: optim.ema_momentum(n, base_m, t18, True), d["ema_momentum_increase"]),
        ("ema_momentum_constant", n18, lambda n: optim.ema_momentum(n, base_m, t18, False), d["ema_momentum_constant"]),
        ("r34_lr", n34, lambda n: optim.stepwise_cosine_lr(n, **r34), d["r34_lr"]),
        ("r34_predictor_lr", n34, lambda n: mult * optim.stepwise_cosine_lr(n, **r34), d["r34_predictor_lr"]),
        ("r34_ema_momentum", n34, lambda n: optim.ema_momentum(n, base_m, t34, True), d["r34_ema_momentum"]),
    ]


CASE_NAMES = ["lr", "predictor_lr", "ema_momentum_increase", "ema_momentum_constant", "r34_lr", "r34_predictor_lr", "r34_ema_momentum"]


def _case(d, name):
    return next(c for c in _cases(d) if c[0] == name)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_schedule_float64_matches_official(sched, name):
    _, n, fn, expected = _case(sched, name)
    vectorised = np.asarray(fn(n))
    assert vectorised.dtype == np.float64
    np.testing.assert_allclose(vectorised, expected, rtol=0, atol=1e-12)
    # one Python int at a time gives the same numbers
    scalars = np.array([fn(int(i)) for i in n])
    np.testing.assert_allclose(scalars, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_schedule_float32_under_jit_matches_official(sched, name):
    _, n, fn, expected = _case(sched, name)
    # the train step passes n = step + 1 from an int32 counter
    got = jax.jit(jax.vmap(lambda step: fn(step + 1)))(jnp.asarray(n - 1, dtype=jnp.int32))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), expected, rtol=1e-6, atol=0)


def test_spot_values_follow_from_the_fixture_config(sched):
    """Landmarks of the schedules, from the fixture's config scalars by closed forms (float64); where a
    landmark is one of the stored n, the official value equals it too."""
    r18, r34 = _r18_args(sched), _r34_args(sched)
    base, warmup, epochs, ipe, eta_min = (r18[k] for k in ("base_lr", "warmup_epochs", "epochs", "iters_per_epoch", "eta_min"))
    total, m0 = epochs * ipe, float(sched["momentum_base"])
    last = eta_min + 0.5 * (base - eta_min) * (1 + math.cos(math.pi * (epochs - warmup) / epochs))
    assert last > eta_min  # the cosine runs over all epochs, so it ends above eta_min
    r34_peak = r34["base_lr"] * (1 + math.cos(math.pi * r34["warmup_epochs"] / r34["epochs"])) / 2
    r34_warmup_iters = r34["warmup_epochs"] * r34["iters_per_epoch"]
    landmarks = [  # (stored array, its n array, n, closed form, our value)
        ("lr", "n_iter", 1, base / (warmup * ipe), optim.warmup_cosine_lr(1, **r18)),  # first warm-up step
        ("lr", "n_iter", warmup * ipe, base, optim.warmup_cosine_lr(warmup * ipe, **r18)),  # end of warm-up: the peak
        ("lr", "n_iter", total, last, optim.warmup_cosine_lr(total, **r18)),
        ("ema_momentum_increase", "n_iter", total, 1.0, optim.ema_momentum(total, m0, total, True)),
        ("ema_momentum_constant", "n_iter", total, m0, optim.ema_momentum(total, m0, total, False)),
        # r34: per-iteration warm-up to the cosine value of epoch `warmup`, then constant per epoch
        ("r34_lr", "r34_n_iter", r34_warmup_iters, r34_peak, optim.stepwise_cosine_lr(r34_warmup_iters, **r34)),
        ("r34_lr", "r34_n_iter", r34_warmup_iters + 1, r34_peak, optim.stepwise_cosine_lr(r34_warmup_iters + 1, **r34)),
    ]
    for name, n_name, n, want, ours in landmarks:
        assert ours == pytest.approx(want, rel=1e-12, abs=1e-15), (name, n)
        stored = sched[name][sched[n_name] == n]
        if stored.size:
            assert stored[0] == pytest.approx(want, rel=1e-12, abs=1e-15), (name, n)
    # halfway through the increasing EMA: (1 + cos(pi / 2)) / 2 = 1/2 of the way from m0 to 1
    assert optim.ema_momentum(total / 2, m0, total, True) == pytest.approx(1 - (1 - m0) / 2, rel=1e-12)


def test_scaled_base_lr_matches_official_configs():
    assert optim.scaled_base_lr(0.05, 128 * 4) == pytest.approx(0.1)  # cifar10_r18_propos.yml
    assert optim.scaled_base_lr(0.05, 64 * 4) == pytest.approx(0.05)  # cifar20_r34_propos.yml


# --- optimiser ------------------------------------------------------------------------------


def _official_lr(n, base, warmup, epochs, ipe, eta_min):
    """Official TrainTask.cosine_annealing_LR, written as in the official code (float64)."""
    e = n / ipe
    if e < warmup:
        return base * e / warmup
    return eta_min + 0.5 * (base - eta_min) * (1 + math.cos((e - warmup) * math.pi / epochs))


def _torch_sgd_reference(params, grads_seq, lrs, momentum, wd, nesterov, mult):
    """torch.optim.SGD(momentum, weight_decay, nesterov) in numpy float64, per-group lr."""
    params = {g: {k: v.astype(np.float64) for k, v in sub.items()} for g, sub in params.items()}
    bufs = {}
    history = []
    for step, (grads, lr) in enumerate(zip(grads_seq, lrs)):
        for g, sub in params.items():
            group_lr = lr * (mult if g == "predictor" else 1.0)
            for k, p in sub.items():
                d_p = grads[g][k].astype(np.float64) + wd * p  # coupled weight decay
                if step == 0:
                    bufs[g, k] = d_p.copy()  # torch: buf = clone(d_p) on the first step
                else:
                    bufs[g, k] = momentum * bufs[g, k] + d_p  # dampening 0
                d_p = d_p + momentum * bufs[g, k] if nesterov else bufs[g, k]
                sub[k] = p - group_lr * d_p
        history.append({g: {k: v.copy() for k, v in sub.items()} for g, sub in params.items()})
    return history


def _sgd_cfg(**overrides):
    cfg = ml_collections.ConfigDict(
        dict(
            name="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=False,
            warmup_epochs=1, eta_min=0.0, schedule="warmup_cosine", predictor_lr_mult=10.0,
        )
    )
    cfg.update(overrides)
    return cfg


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_three_steps_match_torch_rule(nesterov):
    rng = np.random.default_rng(0)
    params = {
        "net": {"w": rng.standard_normal((3, 4)).astype(np.float32), "b": rng.standard_normal(4).astype(np.float32)},
        "predictor": {"w": rng.standard_normal((4, 2)).astype(np.float32)},
    }
    grads_seq = [jax.tree.map(lambda p: rng.standard_normal(p.shape).astype(np.float32), params) for _ in range(3)]
    # iters_per_epoch 2, warm-up 1 epoch: steps at n = 1 (warm-up), 2 (peak), 3 (cosine).
    ipe, epochs, batch = 2, 3, 512
    cfg = _sgd_cfg(nesterov=nesterov, weight_decay=0.05)  # large wd so its coupling is visible
    tx, lr_fn = optim.make_optimizer(cfg, iters_per_epoch=ipe, epochs=epochs, batch_size=batch)
    base = 0.05 * batch / 256
    lrs = [_official_lr(n, base, 1, epochs, ipe, 0.0) for n in (1, 2, 3)]
    np.testing.assert_allclose([float(lr_fn(s)) for s in range(3)], lrs, rtol=1e-12)
    np.testing.assert_allclose([float(lr_fn(jnp.int32(s))) for s in range(3)], lrs, rtol=1e-6)

    expected = _torch_sgd_reference(params, grads_seq, lrs, 0.9, 0.05, nesterov, mult=10.0)

    @jax.jit
    def step(p, state, g):
        updates, state = tx.update(g, state, p)
        return jax.tree.map(lambda a, b: a + b, p, updates), state

    p = jax.tree.map(jnp.asarray, params)
    state = tx.init(p)
    for i in range(3):
        p, state = step(p, state, grads_seq[i])
        for g in ("net", "predictor"):
            for k in params[g]:
                np.testing.assert_allclose(np.asarray(p[g][k]), expected[i][g][k], rtol=1e-6, atol=1e-6, err_msg=f"step {i} {g}/{k}")


def test_predictor_gets_ten_times_the_lr():
    cfg = _sgd_cfg(momentum=0.0, weight_decay=0.0)
    tx, lr_fn = optim.make_optimizer(cfg, iters_per_epoch=10, epochs=100, batch_size=256)
    params = {"net": {"w": jnp.zeros(3)}, "predictor": {"w": jnp.zeros(3)}}
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    lr0 = float(lr_fn(0))
    np.testing.assert_allclose(updates["net"]["w"], -lr0, rtol=1e-6)
    np.testing.assert_allclose(updates["predictor"]["w"], -10.0 * lr0, rtol=1e-6)


def test_stepwise_schedule_is_selectable():
    cfg = _sgd_cfg(schedule="stepwise_cosine", warmup_epochs=50)
    _, lr_fn = optim.make_optimizer(cfg, iters_per_epoch=234, epochs=1000, batch_size=256)
    for step in (0, 11699, 117000 - 1):
        assert lr_fn(step) == optim.stepwise_cosine_lr(step + 1, 0.05, 50, 1000, 234)


@pytest.mark.parametrize(
    "overrides", [dict(name="rmsprop"), dict(schedule="linear"), dict(warmup_epochs=20), dict(schedule="stepwise_cosine", eta_min=1e-3)]
)
def test_make_optimizer_rejects_bad_config(overrides):
    with pytest.raises(ValueError):
        optim.make_optimizer(_sgd_cfg(**overrides), iters_per_epoch=10, epochs=10, batch_size=256)


# ------------------------------------------------------------------------------------------------
# The generic options SeCu brought: schedule warmup_cosine_to_end, frozen_epochs, lr_batch_scaling,
# constant-lr and untrained parameter groups


def _official_secu_lr(c, base, warmup, epochs, ipe, init_epoch):
    """Official idstcv/SeCu main.py adjust_learning_rate at the 0-based iteration c, float64."""
    o = ipe if init_epoch else 0
    if c < o:
        return 0.0
    if c < o + warmup * ipe:
        return base * max(1, c - o) / (warmup * ipe)
    return base * 0.5 * (1.0 + math.cos(math.pi * (c - o - warmup * ipe) / (epochs * ipe - o - warmup * ipe)))


@pytest.mark.parametrize("frozen", [0, 1])
def test_warmup_cosine_to_end_with_frozen_epochs_is_secus_schedule(frozen):
    ipe, epochs = 7, 12
    cfg = _sgd_cfg(lr=0.2, warmup_epochs=3, schedule="warmup_cosine_to_end", frozen_epochs=frozen,
                   lr_batch_scaling="none")
    _, lr_fn = optim.make_optimizer(cfg, iters_per_epoch=ipe, epochs=epochs, batch_size=512)
    for c in range(epochs * ipe):
        assert lr_fn(c) == pytest.approx(_official_secu_lr(c, 0.2, 3, epochs, ipe, frozen), rel=1e-12, abs=1e-15)
        # float32, with the official 1 + cos (cancellation near the end): a few ulps of the peak lr
        assert float(lr_fn(jnp.int32(c))) == pytest.approx(_official_secu_lr(c, 0.2, 3, epochs, ipe, frozen),
                                                           rel=1e-6, abs=0.2 * 4e-7)
    # eta_min is honoured: the cosine ends at it
    cfg.eta_min = 0.01
    _, lr_fn = optim.make_optimizer(cfg, iters_per_epoch=ipe, epochs=epochs, batch_size=512)
    assert lr_fn(epochs * ipe) == pytest.approx(0.01) and lr_fn((frozen + 3) * ipe) == pytest.approx(0.2)


@pytest.mark.parametrize("schedule", ["warmup_cosine", "stepwise_cosine", "constant"])
def test_frozen_epochs_delay_every_schedule(schedule):
    ipe, epochs, frozen = 5, 10, 2
    shifted = _sgd_cfg(schedule=schedule, warmup_epochs=2, frozen_epochs=frozen)
    _, lr_fn = optim.make_optimizer(shifted, iters_per_epoch=ipe, epochs=epochs, batch_size=256)
    _, plain = optim.make_optimizer(_sgd_cfg(schedule=schedule, warmup_epochs=2), iters_per_epoch=ipe,
                                    epochs=epochs - frozen, batch_size=256)
    assert all(lr_fn(c) == 0.0 for c in range(frozen * ipe))
    for c in range(frozen * ipe, epochs * ipe):
        assert lr_fn(c) == plain(c - frozen * ipe)
        assert float(lr_fn(jnp.int32(c))) == float(plain(jnp.int32(c - frozen * ipe)))


def test_lr_batch_scaling():
    _, linear = optim.make_optimizer(_sgd_cfg(lr=0.1, warmup_epochs=0), iters_per_epoch=4, epochs=5, batch_size=1024)
    _, none = optim.make_optimizer(_sgd_cfg(lr=0.1, warmup_epochs=0, lr_batch_scaling="none"), iters_per_epoch=4,
                                   epochs=5, batch_size=1024)
    assert linear(0) == pytest.approx(4 * none(0)) and none(0) == pytest.approx(optim.warmup_cosine_lr(1, 0.1, 0, 5, 4))


def test_constant_lr_and_untrained_groups():
    cfg = _sgd_cfg(momentum=0.9, weight_decay=0.1, warmup_epochs=0, frozen_epochs=1, predictor_lr_mult=1.0)
    params = {"net": {"w": jnp.ones(3)}, "centers": {"c": jnp.full(2, 2.0)}, "fixed": {"f": jnp.ones(2)}}
    grads = jax.tree.map(jnp.ones_like, params)
    tx, lr_fn = optim.make_optimizer(cfg, iters_per_epoch=2, epochs=4, batch_size=256, constant_lr={"centers": 1.5},
                                     untrained=("fixed",))
    state = tx.init(params)
    assert sorted(state.inner_states) == ["centers", "fixed", "net"]  # one group per top-level key
    for step in range(3):
        updates, state = tx.update(grads, state, params)
        # net: the schedule (lr 0 in the frozen epoch); centres: 1.5 from the first step; fixed: nothing
        buf = sum(0.9 ** k for k in range(step + 1))  # momentum buffer of the constant gradient g + wd p
        np.testing.assert_allclose(updates["net"]["w"], -float(lr_fn(step)) * buf * 1.1, rtol=1e-6)
        np.testing.assert_allclose(updates["centers"]["c"], -1.5 * buf * 1.2, rtol=1e-6)
        assert not np.any(np.asarray(updates["fixed"]["f"]))
    assert float(lr_fn(0)) == 0.0 and float(lr_fn(2)) > 0
    tx, _ = optim.make_optimizer(cfg, iters_per_epoch=2, epochs=4, batch_size=256, constant_lr={"centres": 1.0})
    with pytest.raises(ValueError, match="centres"):
        tx.init(params)


@pytest.mark.parametrize("overrides, match", [
    (dict(frozen_epochs=10), "optim.frozen_epochs"), (dict(frozen_epochs=-1), "optim.frozen_epochs"),
    (dict(frozen_epochs=4, warmup_epochs=7), "optim.warmup_epochs"),
    (dict(schedule="warmup_cosine_to_end", frozen_epochs=1, warmup_epochs=9), "train.epochs"),
    (dict(lr_batch_scaling="sqrt"), "optim.lr_batch_scaling"),
    (dict(schedule="constant", eta_min=0.1), "optim.eta_min"), (dict(eta_min=-0.1), "optim.eta_min"),
])
def test_check_names_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match):
        optim.check(_sgd_cfg(**overrides), 10)
