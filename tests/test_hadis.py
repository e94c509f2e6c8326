"""HaDis: golden values of seed_hadis.md §7 for HSD and the PSL negatives, and the step on ProPos."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tiny
from jaxclust import losses
from jaxclust.config import ConfigError
from jaxclust.trainer import check_config
from jaxclust.methods import hadis

hsd = losses.hardness_aware_self_distillation_loss


def brute_force_hsd(t, s, tau=0.5, partition="code"):
    """Eq. 4-7 anchor by anchor in python, on the library's distance matrices (whose near-zero entries
    carry float32 rounding of sqrt(max(|a|^2 + |b|^2 - 2ab, 1e-12)), as the official code's do)."""
    tn = losses.l2_normalize(jnp.asarray(t))
    d_tt = np.asarray(losses._pairwise_distance(tn, tn), np.float64)
    d_ts = np.asarray(losses._pairwise_distance(tn, losses.l2_normalize(jnp.asarray(s))), np.float64)
    b = len(t)
    total = 0.0
    for i in range(b):
        if partition == "code":
            negative = [d_tt[i, j] > d_ts[i, i] for j in range(b)]
        else:
            negative = [d_tt[i, j] >= d_ts[i, j] for j in range(b)]
        positives = [j for j in range(b) if not negative[j]]
        negatives = [j for j in range(b) if negative[j]]
        jh = max(positives, key=lambda j: d_ts[i, j])
        nu_p, w_p = d_ts[i, jh], max(d_ts[i, jh] - d_tt[i, jh], 0.0)
        if negatives:
            mh = min(negatives, key=lambda j: d_ts[i, j])
            nu_n, w_n = d_ts[i, mh], max(d_tt[i, mh] - d_ts[i, mh], 0.0)
        else:
            nu_n, w_n = 1e5, 0.0
        total += np.logaddexp(0.0, (w_p * nu_p - w_n * nu_n) / tau)
    return total / b


def test_pairwise_distance():
    a, c = jax.random.normal(jax.random.key(0), (5, 3)), jax.random.normal(jax.random.key(1), (4, 3))
    want = np.linalg.norm(np.asarray(a, np.float64)[:, None] - np.asarray(c, np.float64)[None], axis=-1)
    np.testing.assert_allclose(losses._pairwise_distance(a, c), want, rtol=1e-5, atol=1e-3)


def test_identical_student_and_teacher_give_log2_and_no_gradient():
    t = jax.random.normal(jax.random.key(0), (16, 8))
    loss, grad = jax.value_and_grad(lambda s: hsd(t, s))(t)
    # every anchor's softplus argument is exactly 0: the mean of 16 float32 log 2. Its summation order is
    # XLA's choice, so allow the float32 bound of a 16-term sum, 16 eps log 2 (1.3e-6), not equality.
    tol = 16 * float(np.finfo(np.float32).eps) * math.log(2.0)
    assert float(loss) == pytest.approx(float(jnp.mean(jax.nn.softplus(jnp.zeros(16)))), abs=tol)
    assert float(loss) == pytest.approx(math.log(2.0), abs=tol)
    assert np.all(np.asarray(grad) == 0.0)


@pytest.mark.parametrize("partition", ["code", "paper"])
def test_matches_brute_force(partition):
    for seed in range(3):
        k1, k2 = jax.random.split(jax.random.key(seed))
        t = jax.random.normal(k1, (12, 6))
        s = t + 0.7 * jax.random.normal(k2, (12, 6))  # close enough for real positives and negatives
        want = brute_force_hsd(t, s, 0.5, partition)
        assert float(hsd(t, s, 0.5, partition)) == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_bounds_scale_and_permutation():
    k1, k2 = jax.random.split(jax.random.key(5))
    t, s = jax.random.normal(k1, (10, 4)), jax.random.normal(k2, (10, 4))
    loss = float(hsd(t, s))
    assert 0.0 < loss <= math.log1p(math.exp(4 / 0.5)) + 1e-6
    assert float(hsd(3.0 * t, 0.5 * s)) == pytest.approx(loss, rel=1e-5)
    perm = jax.random.permutation(k1, 10)
    assert float(hsd(t[perm], s[perm])) == pytest.approx(loss, rel=1e-5)


def test_gradient_flows_through_the_selected_pairs_only():
    k1, k2 = jax.random.split(jax.random.key(6))
    t = jax.random.normal(k1, (8, 5))
    s = t + 0.7 * jax.random.normal(k2, (8, 5))
    assert np.all(np.asarray(jax.grad(lambda a: hsd(a, s))(t)) == 0.0)  # the teacher is stop-gradient
    # anchor by anchor, indexing the hardest positive and negative: anchor i's gradient reaches
    # student rows j^h_i and m^h_i only, and the batch gradient is the mean of those
    per_anchor = jax.vmap(lambda j: jax.grad(lambda b: _anchor_term(t, b, j))(s))(jnp.arange(8))
    assert all(np.flatnonzero(np.any(np.asarray(g) != 0, axis=1)).size <= 2 for g in per_anchor)
    np.testing.assert_allclose(jax.grad(lambda b: hsd(t, b))(s), jnp.mean(per_anchor, axis=0), atol=1e-6)


def _anchor_term(t, s, j):
    """Anchor j's term of HSD (code partition), written for one anchor with explicit indexing."""
    tn, sn = losses.l2_normalize(jax.lax.stop_gradient(t)), losses.l2_normalize(s)
    d_tt, d_ts = losses._pairwise_distance(tn, tn)[j], losses._pairwise_distance(tn, sn)[j]
    negative = d_tt > jax.lax.stop_gradient(d_ts[j])
    jh = jnp.argmax(jnp.where(negative, 0.0, jax.lax.stop_gradient(d_ts)))
    mh = jnp.argmin(jnp.where(negative, jax.lax.stop_gradient(d_ts), 1e5))
    nu_p, nu_n = d_ts[jh], jnp.where(negative.any(), d_ts[mh], 1e5)
    w_p = jax.lax.stop_gradient(jnp.maximum(nu_p - d_tt[jh], 0.0))
    w_n = jax.lax.stop_gradient(jnp.maximum(d_tt[mh] - nu_n, 0.0))
    return jax.nn.softplus((w_p * nu_p - w_n * nu_n) / 0.5)


def test_small_batches_and_empty_negatives_are_finite():
    for b in (1, 2):
        t = jax.random.normal(jax.random.key(b), (b, 4))
        loss, grad = jax.value_and_grad(lambda s: hsd(t, s))(t + 0.3)
        assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(grad)))
    t = jnp.array([[1.0, 0.0], [0.99, 0.14]])
    s = jnp.array([[-1.0, 0.0], [-0.99, -0.14]])  # anchors far from their students: no negatives
    assert float(hsd(t, s)) == pytest.approx(brute_force_hsd(t, s), rel=1e-5)


def test_psl_negatives():
    k = 10
    mu = jnp.eye(k, 16)
    labels = jnp.arange(k)
    # u^s = u^t orthonormal: log(e^2 + K - 1) - 2 for both forms (seed_hadis.md §7.18)
    for negatives in ("online", "target"):
        loss = losses.prototype_scattering_loss(mu, mu, labels, k, 0.5, negatives=negatives)
        assert float(loss) == pytest.approx(math.log(math.e ** 2 + 9) - 2, abs=1e-5)
    online = jax.random.normal(jax.random.key(0), (20, 16))
    target = losses.l2_normalize(jax.random.normal(jax.random.key(1), (20, 16)))
    y = jnp.arange(20) % 5
    a = losses.prototype_scattering_loss(online, target, y, 5, 0.5, negatives="online")
    b = losses.prototype_scattering_loss(online, target, y, 5, 0.5, negatives="target")
    assert float(a) != pytest.approx(float(b), rel=1e-3)


# ------------------------------------------------------------------------------------------------
# The method: ProPos' step plus HSD

N, B, SPE = 32, 8, 4


def tiny_config(**method):
    c = tiny.tiny_config("hadis", B, **method)
    c.optim.warmup_epochs = 1
    c.cluster.num_clusters = 5
    return c


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_config()
    check_config(cfg)
    method = hadis.build(cfg, N, SPE)
    views = jax.random.normal(jax.random.key(0), (2, B, 8, 8, 1))
    state = method.init(jax.random.key(1), views[0])
    state = state.replace(extra={**state.extra, "pseudo_labels": jnp.arange(N, dtype=jnp.int32) % 5})
    return cfg, method, jax.jit(method.train_step), state, views


def test_hsd_is_on_in_warmup_and_psl_after(setup):
    cfg, _, step, state, (v1, v2) = setup
    _, m = step(state, v1, v2, jnp.arange(B), jax.random.key(2))  # warm-up: DSA + HSD
    assert float(m["hsd_loss"]) > 0
    np.testing.assert_allclose(m["loss"], m["align_loss"] + m["hsd_loss"], rtol=1e-5)
    after = state.replace(step=jnp.asarray(SPE, jnp.int32))
    _, m = step(after, v1, v2, jnp.arange(B), jax.random.key(2))
    np.testing.assert_allclose(m["loss"], m["align_loss"] + m["hsd_loss"] + cfg.method.psl_weight * m["psl_loss"], rtol=1e-5)


def test_validate():
    with pytest.raises(ConfigError, match="forward=v1"):
        check_config(tiny_config(forward="v2"))
    with pytest.raises(ConfigError, match="hsd_partition"):
        check_config(tiny_config(hsd_partition="both"))
