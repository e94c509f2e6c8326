"""C2BIN: golden values of seed_c2bin.md §6 for the BCA contrast and the entropy, and the step."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tiny
from jaxclust import losses
from jaxclust.config import ConfigError
from jaxclust.trainer import check_config
from jaxclust.methods import c2bin
from jaxclust.state import ema_update


def bca(q1, q2, tau, excl=False, normalize=True):
    return float(losses.batch_cluster_assignment_loss(q1, q2, tau, normalize=normalize, exclude_positive=excl))


@pytest.mark.parametrize("k, incl, excl", [(32, 3.465736, 3.433987), (10, 2.302585, 2.197225), (128, 4.852030, 4.844187)])
def test_uniform_assignments(k, incl, excl):
    q = jnp.full((64, k), 1.0 / k)
    assert bca(q, q, 0.5) == pytest.approx(incl, abs=1e-5)
    assert bca(q, q, 0.5, excl=True) == pytest.approx(excl, abs=1e-5)


@pytest.mark.parametrize("k, tau, incl, excl", [
    (32, 0.5, 1.647772, 1.433987), (64, 0.5, 2.254038, 2.143135), (128, 0.5, 2.900739, 2.844187),
    (10, 1.0, 1.461150, 1.197225), (20, 1.0, 2.078154, 1.944439), (40, 1.0, 2.730939, 2.663562),
    (160, 1.0, 4.085856, 4.068904),
])
def test_perfect_balanced_assignments(k, tau, incl, excl):
    q = jax.nn.one_hot(jnp.arange(2 * k) % k, k)  # n a multiple of K, both views identical
    assert bca(q, q, tau) == pytest.approx(incl, abs=1e-5)
    assert bca(q, q, tau, excl=True) == pytest.approx(excl, abs=1e-5)
    # the global minimum: any other non-negative assignment is above it, the uniform one strictly
    noisy = jax.nn.softmax(jax.random.normal(jax.random.key(k), (2 * k, k)), axis=1)
    assert bca(noisy, noisy, tau) >= incl - 1e-6
    assert bca(jnp.full((2 * k, k), 1.0 / k), jnp.full((2 * k, k), 1.0 / k), tau) > incl


def test_invariances_and_asymmetry():
    k1, k2 = jax.random.split(jax.random.key(0))
    q1 = jax.nn.softmax(jax.random.normal(k1, (16, 8)), axis=1)
    q2 = jax.nn.softmax(jax.random.normal(k2, (16, 8)), axis=1)
    base = bca(q1, q2, 0.5)
    rows, cols = jax.random.permutation(k1, 16), jax.random.permutation(k2, 8)
    assert bca(q1[rows], q2[rows], 0.5) == pytest.approx(base, rel=1e-5)
    assert bca(q1[:, cols], q2[:, cols], 0.5) == pytest.approx(base, rel=1e-5)
    assert bca(q1[:, cols], q2, 0.5) != pytest.approx(base, rel=1e-3)  # positives move
    assert abs(bca(q2, q1, 0.5) - base) > 1e-5  # anchored on view 1: not symmetric in the views ...
    assert bca(q1, q1 + 0.0, 0.5) == pytest.approx(bca(q1 + 0.0, q1, 0.5), rel=1e-6)  # ... unless S is
    assert bca(3.0 * q1, q2, 0.5) == pytest.approx(base, rel=1e-5)  # cosine BCAs
    assert bca(3.0 * q1, q2, 0.5, normalize=False) != pytest.approx(bca(q1, q2, 0.5, normalize=False), rel=1e-3)
    h = float(losses.marginal_entropy(q1))
    assert h == pytest.approx(float(losses.marginal_entropy(q1[rows][:, cols])), rel=1e-6)
    assert 0.0 <= h <= math.log(8)


def test_empty_clusters_are_finite():
    q = jax.nn.one_hot(jnp.arange(256) % 200, 512)  # K > n: most columns are zero
    loss, grad = jax.value_and_grad(lambda a: losses.batch_cluster_assignment_loss(a, a, 0.2))(q)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(grad)))
    g = jax.grad(losses.marginal_entropy)(jax.nn.softmax(jax.random.normal(jax.random.key(0), (8, 16)), axis=1))
    assert np.all(np.isfinite(np.asarray(g)))


def test_marginal_entropy_limits():
    for k in (10, 32, 160):
        assert float(losses.marginal_entropy(jnp.full((5, k), 1.0 / k))) == pytest.approx(math.log(k), abs=1e-5)
        assert float(losses.marginal_entropy(jax.nn.one_hot(jnp.arange(3 * k) % k, k))) == pytest.approx(math.log(k), abs=1e-5)
    assert float(losses.marginal_entropy(jax.nn.one_hot(jnp.zeros(7, int), 10))) == 0.0


def test_cosine_distance_loss():
    p = jax.random.normal(jax.random.key(0), (4, 6))
    assert float(losses.cosine_distance_loss(p, 2.5 * p)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.cosine_distance_loss(p, -p)) == pytest.approx(2.0, abs=1e-6)
    z = jax.random.normal(jax.random.key(1), (4, 6))
    half_sq = 0.5 * jnp.mean(jnp.sum(jnp.square(losses.l2_normalize(p) - losses.l2_normalize(z)), axis=1))
    assert float(losses.cosine_distance_loss(p, z)) == pytest.approx(float(half_sq), rel=1e-5)


# ------------------------------------------------------------------------------------------------
# The method's step on a tiny network

N, B, SPE = 32, 8, 4


def tiny_config(**method):
    c = tiny.tiny_config("c2bin", B, **{"cluster_heads": (3, 5), **method})
    c.optim.name, c.optim.lr, c.optim.weight_decay, c.optim.warmup_epochs = "adam", 1e-3, 0.0, 0
    c.cluster.num_clusters = 3
    return c


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_config()
    check_config(cfg)
    method = c2bin.build(cfg, N, SPE)
    views = jax.random.normal(jax.random.key(0), (2, B, 8, 8, 1))
    state = method.init(jax.random.key(1), views[0])
    return cfg, method, jax.jit(method.train_step), state, views


def test_step_and_follower_ema_after_the_update(setup):
    cfg, _, step, state, (v1, v2) = setup
    state = state.replace(target_params=jax.tree.map(lambda p: p + 1.0, state.target_params))
    new, m = step(state, v1, v2, jnp.arange(B), jax.random.key(2))
    assert np.isfinite(float(m["loss"]))
    total = m["align_loss"] + cfg.method.clust_weight * (m["bca_loss"] - cfg.method.entropy_weight * m["entropy"])
    np.testing.assert_allclose(m["loss"], total, rtol=1e-5)
    expected = ema_update(state.target_params, new.params["net"], 0.995)  # Eq. 8 with the updated runner
    for got, want in zip(jax.tree.leaves(new.target_params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    changed = [bool(jnp.any(a != b)) for a, b in zip(jax.tree.leaves(new.params["heads"]), jax.tree.leaves(state.params["heads"]))]
    assert all(changed)


def test_labels_are_the_argmax_of_the_matching_head(setup):
    _, method, _, state, (v1, _) = setup
    assignments = method.embed(state, v1)
    assert assignments.shape == (B, 3)
    np.testing.assert_allclose(jnp.sum(assignments, axis=1), 1.0, rtol=1e-6)
    _, labels, info = method.cluster(state, assignments, jax.random.key(0))
    np.testing.assert_array_equal(labels, np.argmax(np.asarray(assignments), axis=1))
    assert 0.0 < info["mean_confidence"] <= 1.0


def test_kmeans_labels_and_validation():
    cfg = tiny_config(labels="kmeans")
    cfg.cluster.num_clusters = 4  # no head has 4 clusters: k-means on the runner's r
    check_config(cfg)
    method = c2bin.build(cfg, N, SPE)
    x = jax.random.normal(jax.random.key(0), (N, 8, 8, 1))
    state = method.init(jax.random.key(1), x[:2])
    feats = method.embed(state, x)
    np.testing.assert_allclose(jnp.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    _, labels, _ = method.cluster(state, feats, jax.random.key(0))
    assert labels.shape == (N,) and labels.max() < 4
    with pytest.raises(ConfigError, match="cluster.num_clusters"):
        check_config(tiny_config(labels="head", cluster_heads=(4, 5)))


def test_c2bin_optimisers():
    """optim.name adam / lars and the constant schedule (C2BIN Tables 5 and 10)."""
    from jaxclust import optim

    params = {"w": jnp.full((3, 3), 2.0), "b": jnp.ones(3)}
    grads = {"w": jnp.full((3, 3), 0.5), "b": jnp.full(3, 0.5)}
    cfg = dict(name="lars", lr=0.2, momentum=0.9, weight_decay=1e-6, warmup_epochs=0, schedule="constant")
    tx, lr = optim.make_optimizer(cfg, 10, 5, 256)
    assert float(lr(0)) == float(lr(49)) == pytest.approx(0.2)
    u, _ = tx.update(grads, tx.init(params), params)
    # matrices: lr * eta * ||p|| / ||g + wd p|| * (g + wd p); vectors (biases, BN): plain SGD
    g = 0.5 + 1e-6 * 2.0
    np.testing.assert_allclose(u["w"], -0.2 * 1e-3 * (6.0 / (3 * g)) * g, rtol=1e-5)
    np.testing.assert_allclose(u["b"], -0.2 * 0.5, rtol=1e-6)
    tx, lr = optim.make_optimizer({**cfg, "name": "adam", "schedule": "warmup_cosine", "lr": 3e-4}, 10, 5, 256)
    u, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(u["b"], -3e-4 * float(lr(0)) / 3e-4, rtol=1e-4)  # Adam's first step: lr * sign
    assert float(lr(49)) == pytest.approx(0.0, abs=1e-9)


def test_paper_settings():
    """The configs carry the paper's values: Table 10 (CIFAR-20) and Table 5 (representation learning)."""
    from pathlib import Path

    from jaxclust.config import load_config_file

    configs = Path(__file__).resolve().parents[1] / "configs"
    c = load_config_file(configs / "c2bin_cifar20.py")
    assert tuple(c.method.cluster_heads) == (20, 40, 160) and c.optim.name == "adam" and c.train.epochs == 300
    c = load_config_file(configs / "c2bin_cifar10_rep.py")
    assert tuple(c.method.cluster_heads) == (32, 64, 128) and (c.method.clust_weight, c.method.temperature) == (2.0, 0.5)
