"""ProPos train step: warm-up gating of PSL, finite gradients with absent clusters, EMA timing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tiny
from jaxclust.methods import propos
from jaxclust.state import ema_update

N, B, STEPS_PER_EPOCH = 64, 8, 8


def tiny_config(**method):
    c = tiny.tiny_config("propos", B, **method)
    c.optim.warmup_epochs = 1
    c.cluster.num_clusters = 20  # more clusters than a batch holds: most are absent from every batch
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


def test_psl_start_epoch_delays_psl_past_the_warmup(setup):
    _, _, state, (v1, v2) = setup
    cfg = tiny_config(psl_start_epoch=2)  # warm-up is epoch 0 only; PSL from epoch 2 (0-based)
    step = jax.jit(propos.build(cfg, N, STEPS_PER_EPOCH).train_step)
    idx = jnp.arange(B)
    for epoch, psl_on in ((1, False), (2, True)):
        _, m = step(state.replace(step=jnp.asarray(epoch * STEPS_PER_EPOCH, jnp.int32)), v1, v2, idx,
                    jax.random.key(2))
        want = m["align_loss"] + (cfg.method.psl_weight * m["psl_loss"] if psl_on else 0.0)
        np.testing.assert_allclose(m["loss"], want, rtol=1e-5)
    assert m["psl_loss"] > 0


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


def test_v2_forward_is_v1_plus_two_with_the_same_batch_statistics(setup):
    """Official forward_v2 (both views in one pass, loss mean(2 - 2cos) over 2B rows) equals v1 plus
    the constant 2 when BatchNorm sees the same batches: two ghost groups, one per view, unshuffled."""
    _, _, state, (v1, v2) = setup
    results = {}
    for form, groups in (("v1", 1), ("v2", 2)):
        cfg = tiny_config(forward=form, sigma=0.0, shuffle_bn=False)
        cfg.model.bn_groups = groups
        step = jax.jit(propos.build(cfg, N, STEPS_PER_EPOCH).train_step)
        after_warmup = state.replace(step=jnp.asarray(STEPS_PER_EPOCH, jnp.int32))
        results[form] = step(after_warmup, v1, v2, jnp.arange(B), jax.random.key(7))
    (s1, m1), (s2, m2) = results["v1"], results["v2"]
    np.testing.assert_allclose(m2["align_loss"], m1["align_loss"] + 2.0, rtol=1e-6)
    np.testing.assert_allclose(m2["psl_loss"], m1["psl_loss"], rtol=1e-5)
    np.testing.assert_allclose(m2["loss"], m1["loss"] + 2.0, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params)):  # the same gradient step
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_enqueue_is_fifo():
    extra = {"psl_queue": jnp.zeros((8, 2)), "psl_queue_index": jnp.zeros(8, jnp.int32),
             "psl_queue_ptr": jnp.asarray(0, jnp.int32)}
    for start in (0, 4, 8):
        feats = jnp.arange(start, start + 4, dtype=jnp.float32)[:, None] * jnp.ones((1, 2))
        extra = propos.enqueue(extra, feats, jnp.arange(start, start + 4) + 100)
    # the third batch overwrote the oldest rows 0-3
    np.testing.assert_array_equal(extra["psl_queue_index"], [108, 109, 110, 111, 104, 105, 106, 107])
    np.testing.assert_array_equal(extra["psl_queue"][:, 0], [8, 9, 10, 11, 4, 5, 6, 7])
    assert int(extra["psl_queue_ptr"]) == 4


def test_psl_with_queue_equals_psl_of_batch_and_queue_rows():
    q = jax.random.normal(jax.random.key(0), (4, 3))
    k = jax.random.normal(jax.random.key(1), (4, 3))
    k = k / jnp.linalg.norm(k, axis=1, keepdims=True)
    qf = jax.random.normal(jax.random.key(2), (6, 3))
    y, qy = jnp.array([0, 0, 1, 1]), jnp.array([1, 2, 2, 3, 3, 3])
    from jaxclust import losses
    got = losses.prototype_scattering_loss(q, k, y, 5, 0.5, queue=(qf, qy))
    qn = q / jnp.linalg.norm(q, axis=1, keepdims=True)
    # by hand: the queued rows join both sides un-normalised; cluster 4 is absent everywhere
    mu = losses.cluster_prototypes(jnp.concatenate([qn, qf]), jnp.concatenate([y, qy]), 5)
    mu_t = losses.cluster_prototypes(jnp.concatenate([k, qf]), jnp.concatenate([y, qy]), 5)
    present = np.array([1, 1, 1, 1, 0], bool)
    logits = np.asarray(mu @ mu.T) / 0.5
    np.fill_diagonal(logits, np.sum(np.asarray(mu * mu_t), 1) / 0.5)
    logits[:, ~present] = -10.0
    rows = np.log(np.exp(logits).sum(1)) - np.diag(logits)
    np.testing.assert_allclose(got, rows[present].mean(), rtol=1e-5)


def test_queue_labels_are_re_read_from_current_pseudo_labels():
    cfg = tiny_config(psl_queue_size=4 * B)
    method = propos.build(cfg, N, STEPS_PER_EPOCH)
    views = jax.random.normal(jax.random.key(0), (2, B, 8, 8, 1))
    state = method.init(jax.random.key(1), views[0])
    queued = jnp.arange(N - 4 * B, N, dtype=jnp.int32)  # examples not in the batch below
    extra = {**state.extra, "pseudo_labels": jnp.arange(N, dtype=jnp.int32) % 20,
             "psl_queue": losses_unit(jax.random.normal(jax.random.key(2), (4 * B, 8))), "psl_queue_index": queued}
    state = state.replace(step=jnp.asarray(STEPS_PER_EPOCH, jnp.int32), extra=extra)
    step = jax.jit(method.train_step)
    idx = jnp.arange(B)
    _, base = step(state, views[0], views[1], idx, jax.random.key(3))
    relabel = lambda where: state.replace(extra={**extra, "pseudo_labels": extra["pseudo_labels"].at[where].set(19)})
    _, moved = step(relabel(queued[:5]), views[0], views[1], idx, jax.random.key(3))
    _, untouched = step(relabel(jnp.arange(B, 2 * B)), views[0], views[1], idx, jax.random.key(3))
    assert abs(float(moved["psl_loss"]) - float(base["psl_loss"])) > 1e-4  # queued labels changed
    np.testing.assert_allclose(untouched["psl_loss"], base["psl_loss"], rtol=1e-6)  # neither batch nor queue
    new, _ = step(state, views[0], views[1], idx, jax.random.key(3))
    np.testing.assert_array_equal(new.extra["psl_queue_index"][: 2 * B], jnp.concatenate([idx, idx]))
    np.testing.assert_allclose(jnp.linalg.norm(new.extra["psl_queue"][: 2 * B], axis=1), 1.0, rtol=1e-5)
    assert int(new.extra["psl_queue_ptr"]) == 2 * B


def losses_unit(x):
    return x / jnp.linalg.norm(x, axis=1, keepdims=True)
