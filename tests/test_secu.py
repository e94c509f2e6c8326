"""SeCu: golden values of seed_secu.md §13, the constrained assignments, the schedule and the step."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust import losses
from jaxclust.config import ConfigError, base_config, validate_config
from jaxclust.methods import secu

# seed_secu.md §13.1-2: three points, two centres, labels (0, 0, 1), lambda = 1
X = jnp.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
W = jnp.array([[1.0, 0.0], [0.0, 1.0]])
Y = jnp.array([0, 0, 1])


def test_center_loss_value_is_cross_entropy():
    for stable in (True, False):
        assert float(losses.secu_center_loss(X, W, Y, 1.0, stable)) == pytest.approx(0.474887, abs=1e-6)


def test_center_gradient_reaches_positives_only():
    grad = jax.grad(lambda w: losses.secu_center_loss(X, w, Y, 1.0, True))(W)
    np.testing.assert_allclose(grad, [[-0.199614, -0.146622], [0.0, -0.089647]], atol=1e-6)
    plain = jax.grad(lambda w: losses.secu_center_loss(X, w, Y, 1.0, False))(W)
    np.testing.assert_allclose(plain, [[-0.199614, -0.056975], [0.199614, 0.056975]], atol=1e-6)
    # a centre with no positive in the batch gets exactly zero gradient; the features none at all
    three = jnp.concatenate([W, jnp.array([[0.6, -0.8]])])
    assert np.all(np.asarray(jax.grad(lambda w: losses.secu_center_loss(X, w, Y, 0.05))(three))[2] == 0.0)
    assert np.all(np.asarray(jax.grad(lambda x: losses.secu_center_loss(x, W, Y, 0.05))(X)) == 0.0)


def test_hardness_aware_closed_form_weights():
    # §13.7: p_{., y} of cluster 0 are (0.731059, 0.450166)
    p = jax.nn.softmax(X @ W.T, axis=1)
    np.testing.assert_allclose(p[jnp.arange(3), Y][:2], [0.731059, 0.450166], atol=1e-6)


def test_soft_label_loss():
    key1, key2 = jax.random.split(jax.random.key(0))
    l1, l2 = jax.random.normal(key1, (5, 4)), jax.random.normal(key2, (5, 4))
    prev = jnp.array([0, 1, 2, 3, 0])
    # tau = 1: one-hot cross-entropy of each view
    ce = lambda logits: jnp.mean(jax.nn.logsumexp(logits, 1) - logits[jnp.arange(5), prev])  # noqa: E731
    assert float(losses.secu_soft_label_loss(l1, l2, prev, 1.0)) == pytest.approx(0.5 * float(ce(l1) + ce(l2)), rel=1e-6)
    # the targets carry no gradient: d/dl1 = (softmax(l1) - target1) / (2 B)
    target1 = 0.2 * jax.nn.one_hot(prev, 4) + 0.8 * jax.nn.softmax(l2, axis=1)
    grad = jax.grad(lambda a: losses.secu_soft_label_loss(a, l2, prev, 0.2))(l1)
    np.testing.assert_allclose(grad, (jax.nn.softmax(l1, axis=1) - target1) / 10, atol=1e-7)


def _neg_entropy(counts):
    q = np.asarray(counts, np.float64) / np.sum(counts)
    return float(np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1)), 0)))


def test_entropy_change_golden_and_brute_force():
    delta = secu.entropy_change(jnp.array([5.0, 3.0, 2.0]), jnp.array([0]))
    np.testing.assert_allclose(delta[0], [0.0, -0.0252672, -0.0592470], atol=1e-6)
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 40, size=7).astype(np.float32)
    current = rng.integers(0, 7, size=20)
    delta = np.asarray(secu.entropy_change(jnp.asarray(counts), jnp.asarray(current)))
    for i, j in itertools.product(range(20), range(7)):
        moved = counts.copy()
        moved[current[i]] -= 1
        moved[j] += 1
        assert delta[i, j] == pytest.approx(_neg_entropy(moved) - _neg_entropy(counts), abs=2e-6)


def test_entropy_change_of_a_new_instance():
    counts = np.array([4.0, 0.0, 7.0, 1.0], np.float32)
    delta = np.asarray(secu.entropy_change(jnp.asarray(counts), jnp.full((1,), secu.UNASSIGNED)))[0]
    brute = []
    for j in range(4):
        added = counts.copy()
        added[j] += 1
        brute.append(_neg_entropy(added))
    # the same for every j up to a constant: differences equal the brute-force differences (§13.11)
    np.testing.assert_allclose(delta - delta[0], np.array(brute) - brute[0], atol=1e-6)
    # the first batch (no counts yet) is greedy
    assert np.all(np.asarray(secu.entropy_change(jnp.zeros(4), jnp.full((3,), secu.UNASSIGNED))) == 0.0)


def test_entropy_assignment_keeps_the_counts_and_follows_alpha():
    n, k, b = 96, 6, 16
    labels, counts = jnp.full((n,), secu.UNASSIGNED), jnp.zeros((k,))
    scores = jax.random.normal(jax.random.key(1), (n, k)) * 0.1 + jnp.array([0.5, 0, 0, 0, 0, 0])
    for epoch in range(3):
        for start in range(0, n, b):
            idx = jnp.arange(start, start + b)
            new = secu.entropy_constrained_assign(scores[idx], counts, labels[idx], 0.12 * n)
            counts = secu.count_update(counts, new, labels[idx])
            labels = labels.at[idx].set(new)
            assigned = labels[labels >= 0]
            np.testing.assert_array_equal(counts, jnp.bincount(assigned, length=k))  # §13.12
    assert float(counts.sum()) == n and int(counts.min()) > 0
    # alpha = 0 is greedy: everything in the preferred cluster (Table 4)
    greedy = secu.entropy_constrained_assign(scores, counts, labels, 0.0)
    np.testing.assert_array_equal(greedy, jnp.argmax(scores, axis=1))


def test_assignment_is_permutation_equivariant():
    scores = jax.random.normal(jax.random.key(2), (10, 5))
    counts, current = jnp.array([3.0, 1.0, 4.0, 1.0, 5.0]), jnp.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    perm = jnp.array([3, 0, 4, 1, 2])
    inverse = jnp.argsort(perm)
    base = secu.entropy_constrained_assign(scores, counts, current, 2.0)
    permuted = secu.entropy_constrained_assign(scores[:, perm], counts[perm], inverse[current], 2.0)
    np.testing.assert_array_equal(perm[permuted], base)
    duals = jnp.array([0.1, 0.0, 0.3, 0.2, 0.0])
    np.testing.assert_array_equal(perm[secu.size_constrained_assign(scores[:, perm], duals[perm])],
                                  secu.size_constrained_assign(scores, duals))


def test_dual_ascent():
    rho = secu.dual_ascent(jnp.zeros(3), jnp.array([0, 0, 0, 1]), 0.1, 0.9)  # §13.15
    np.testing.assert_allclose(rho, [0.0, 0.005, 0.03], atol=1e-7)
    # gamma = 1: an equality constraint, balanced labels leave the free duals unchanged
    rho = jnp.array([-0.2, 0.1, 0.3])
    np.testing.assert_allclose(secu.dual_ascent(rho, jnp.array([0, 0, 1, 1, 2, 2]), 0.1, 1.0), rho, atol=1e-7)


def test_size_constraint_raises_the_smallest_cluster():
    # §13.16: every instance prefers cluster 0; the lower bound is approached, not met exactly
    n, k, b, gamma = 5000, 10, 125, 0.9
    scores = jax.random.uniform(jax.random.key(3), (n, k)) * 0.1 + jnp.eye(k)[0] * 0.2

    def epoch(duals, _):
        def step(d, s):
            y = secu.size_constrained_assign(s, d)
            return secu.dual_ascent(d, y, 0.1, gamma), y
        duals, labels = jax.lax.scan(step, duals, scores.reshape(n // b, b, k))
        return duals, jnp.bincount(labels.reshape(-1), length=k)

    _, sizes = jax.lax.scan(epoch, jnp.zeros(k), None, length=5)
    assert int(sizes[0].min()) < int(sizes[-1].min())
    assert int(sizes[-1].min()) >= 0.8 * gamma * n / k


def test_learning_rate_schedule():
    i, e = 391, 401  # official CIFAR-10: 391 iterations, --epochs 401
    lr = lambda c: float(secu.learning_rate(c, 0.2, 10, e, i, True))  # noqa: E731
    assert lr(0) == 0.0 and lr(i - 1) == 0.0  # initialisation epoch
    assert lr(i) == pytest.approx(0.2 / (10 * i))  # epoch 1, iteration 0
    assert lr(11 * i) == pytest.approx(0.2)  # start of epoch 11
    assert lr(e * i - 1) == pytest.approx(0.0, abs=1e-8)


# ------------------------------------------------------------------------------------------------
# The method's step on a tiny network

N, B, SPE = 32, 8, 4


def tiny_config(**method):
    c = base_config()
    c.model.backbone = "convnet"
    c.model.convnet_widths = (4, 8)
    c.model.projector_hidden, c.model.projector_dim = 16, 8
    c.method = secu.method_config()
    c.method.num_heads = 2
    c.method.update(method)
    c.optim.lr, c.optim.weight_decay, c.optim.warmup_epochs = 0.2, 1e-4, 1
    c.train.epochs, c.train.batch_size = 4, B
    c.kmeans.num_clusters = 3
    return c


@pytest.fixture(scope="module", params=["size", "entropy"])
def setup(request):
    cfg = tiny_config(constraint=request.param)
    validate_config(cfg)
    method = secu.build(cfg, N, SPE)
    views = jax.random.normal(jax.random.key(0), (2, B, 8, 8, 1))
    state = method.init(jax.random.key(1), views[0])
    return cfg, method, jax.jit(method.train_step), state, views


def test_initialisation_epoch_trains_the_centres_only_and_stores_labels(setup):
    cfg, _, step, state, (v1, v2) = setup
    idx = jnp.arange(B)
    new, m = step(state, v1, v2, idx, jax.random.key(2))
    assert float(m["lr"]) == 0.0 and np.isfinite(float(m["loss"]))
    for a, b in zip(jax.tree.leaves(new.params["net"]), jax.tree.leaves(state.params["net"])):
        np.testing.assert_array_equal(a, b)
    assert any(bool(jnp.any(a != b)) for a, b in
               zip(jax.tree.leaves(new.params["centers"]), jax.tree.leaves(state.params["centers"])))
    labels = np.asarray(new.extra["labels"])
    assert labels.shape == (2, N) and np.all(labels[:, :B] >= 0) and np.all(labels[:, B:] == secu.UNASSIGNED)
    assert labels[1, :B].max() < 6  # head 2 has 2K = 6 centres
    if cfg.method.constraint == "entropy":
        for h, name in enumerate(("head00", "head01")):
            np.testing.assert_array_equal(new.extra["counts"][name], np.bincount(labels[h, :B], minlength=3 * (h + 1)))


def test_centres_are_frozen_at_epoch_starts_only(setup):
    _, _, step, state, (v1, v2) = setup
    shifted = state.replace(params={**state.params, "centers": jax.tree.map(lambda c: 2.0 * c + 0.1, state.params["centers"])})
    mid, _ = step(shifted.replace(step=jnp.asarray(1, jnp.int32)), v1, v2, jnp.arange(B), jax.random.key(3))
    for a, b in zip(jax.tree.leaves(mid.extra["frozen_centers"]), jax.tree.leaves(state.extra["frozen_centers"])):
        np.testing.assert_array_equal(a, b)
    opening, _ = step(shifted.replace(step=jnp.asarray(SPE, jnp.int32)), v1, v2, jnp.arange(B), jax.random.key(3))
    for a, c in zip(jax.tree.leaves(opening.extra["frozen_centers"]), jax.tree.leaves(shifted.params["centers"])):
        np.testing.assert_allclose(a, losses.l2_normalize(c), rtol=1e-6)


def test_cluster_predicts_with_the_first_head(setup):
    _, method, _, state, (v1, _) = setup
    feats = method.embed(state, v1)
    _, labels, info = method.cluster(state, feats, jax.random.key(0))
    w = losses.l2_normalize(state.params["centers"]["head00"])
    np.testing.assert_array_equal(labels, np.argmax(np.asarray(feats @ w.T), axis=1))
    assert "stored_agreement" in info


def test_validate_rejects_bad_values():
    for key, value in (("constraint", "both"), ("size_gamma", 0.0), ("label_weight", 1.5)):
        with pytest.raises(ConfigError, match=key):
            validate_config(tiny_config(**{key: value}))
    cfg = tiny_config()
    cfg.train.epochs = 2  # 1 initialisation + 1 warm-up epoch leave nothing for the cosine
    with pytest.raises(ConfigError, match="train.epochs"):
        validate_config(cfg)
