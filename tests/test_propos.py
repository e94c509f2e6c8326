"""ProPos train step: warm-up gating of PSL, finite gradients with absent clusters, EMA timing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust.config import base_config
from jaxclust.methods import propos
from jaxclust.state import ema_update

N, B, STEPS_PER_EPOCH = 64, 8, 8


def tiny_config(**method):
    c = base_config()
    c.model.backbone = "convnet"
    c.model.convnet_widths = (4, 8)
    c.model.projector_hidden, c.model.projector_dim, c.model.predictor_hidden = 16, 8, 16
    c.train.epochs, c.train.batch_size = 4, B
    c.optim.warmup_epochs = 1
    c.kmeans.num_clusters = 20  # more clusters than a batch holds: most are absent from every batch
    c.method.update(method)
    return c


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_config()
    method = propos.build(cfg, N, STEPS_PER_EPOCH)
    views = jax.random.normal(jax.random.key(0), (2, B, 8, 8, 1))
    state = method.init(jax.random.key(1), views[0])
    labels = jnp.arange(N, dtype=jnp.int32) % 20
    state = state.replace(extra={**state.extra, "pseudo_labels": labels})
    return cfg, jax.jit(method.train_step), state, views


def test_psl_off_during_warmup_then_weighted(setup):
    cfg, step, state, (v1, v2) = setup
    idx = jnp.arange(B)
    _, m = step(state, v1, v2, idx, jax.random.key(2))
    np.testing.assert_allclose(m["loss"], m["align_loss"], rtol=1e-6)  # epoch 1 is warm-up
    assert m["psl_loss"] > 0
    after = state.replace(step=jnp.asarray(STEPS_PER_EPOCH, jnp.int32))  # first step of epoch 2
    _, m = step(after, v1, v2, idx, jax.random.key(2))
    np.testing.assert_allclose(m["loss"], m["align_loss"] + cfg.method.psl_weight * m["psl_loss"], rtol=1e-5)


def test_step_is_finite_with_absent_clusters(setup):
    _, step, state, (v1, v2) = setup
    for s in (0, STEPS_PER_EPOCH):  # psl weight 0 (warm-up) and > 0
        new, m = step(state.replace(step=jnp.asarray(s, jnp.int32)), v1, v2, jnp.arange(B), jax.random.key(3))
        assert np.isfinite(float(m["loss"]))
        for leaf in jax.tree.leaves((new.params, new.batch_stats, new.target_params)):
            assert np.all(np.isfinite(np.asarray(leaf)))


def test_target_is_exactly_the_ema_of_the_pre_update_online_weights(setup):
    cfg, step, state, (v1, v2) = setup
    # make the target differ from the online network so the EMA is visible
    state = state.replace(target_params=jax.tree.map(lambda p: p + 1.0, state.target_params))
    new, m = step(state, v1, v2, jnp.arange(B), jax.random.key(4))
    expected = ema_update(state.target_params, state.params["net"], m["ema_momentum"])
    for got, want in zip(jax.tree.leaves(new.target_params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert float(m["ema_momentum"]) == pytest.approx(cfg.method.ema_momentum)


def test_ema_update_formula():
    target, online = {"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, -2.0])}
    out = ema_update(target, online, 0.75)
    np.testing.assert_allclose(out["w"], 0.75 * np.array([1.0, 2.0]) + 0.25 * np.array([3.0, -2.0]))


def test_predictor_is_trained(setup):
    _, step, state, (v1, v2) = setup
    new, _ = step(state, v1, v2, jnp.arange(B), jax.random.key(5))
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new.params["predictor"], state.params["predictor"])
    assert any(jax.tree.leaves(changed))


def test_official_per_gpu_options_train(setup):
    """Ghost BN over 2 groups with a shuffled target batch, and the 2-process PSL: a finite step whose
    BatchNorm statistics differ from the global-batch ones."""
    _, _, state, (v1, v2) = setup
    cfg = tiny_config()
    cfg.model.bn_groups = 2
    cfg.method.psl_processes = 2
    step = jax.jit(propos.build(cfg, N, STEPS_PER_EPOCH).train_step)
    state = state.replace(step=jnp.asarray(STEPS_PER_EPOCH, jnp.int32))
    new, m = step(state, v1, v2, jnp.arange(B), jax.random.key(6))
    assert np.isfinite(float(m["loss"])) and m["psl_loss"] > 0
    _, plain = setup[1](state, v1, v2, jnp.arange(B), jax.random.key(6))
    assert abs(float(m["align_loss"]) - float(plain["align_loss"])) > 1e-6
