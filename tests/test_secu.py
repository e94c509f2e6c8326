"""SeCu: golden values of seed_secu.md §13, the constrained assignments, the schedule and the step."""
import itertools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tiny

from jaxclust import losses, optim
from jaxclust.checkpoint import Checkpointer
from jaxclust.config import ConfigError, load_config_file
from jaxclust.methods import secu
from jaxclust.trainer import check_config, train_and_evaluate

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


def test_closed_form_centre_is_hardness_aware():
    # §13.7: Eq. 4 moves centre 0 toward the hard point (0.6, 0.8); k-means (Eq. 5) takes the plain mean
    cf = losses.secu_closed_form_centers(X, W, Y, 1.0)
    np.testing.assert_allclose(cf, [[0.805945, 0.591991], [0.0, 1.0]], atol=1e-6)
    km = losses.l2_normalize(jnp.array([[0.8, 0.4], [0.0, 1.0]]))
    np.testing.assert_allclose(km[0], [0.894427, 0.447214], atol=1e-6)
    sums, weights = losses.secu_closed_form_statistics(X, W, Y, 1.0)
    np.testing.assert_allclose(weights, [0.268941 + 0.549834, 0.268941], atol=1e-6)
    np.testing.assert_allclose(sums[0], 0.268941 * X[0] + 0.549834 * X[1], atol=1e-6)


def test_closed_form_centre_tends_to_kmeans():
    # §13.8: lambda -> infinity, p -> 1/K, Eq. 4 -> the normalised cluster mean (Eq. 5)
    np.testing.assert_allclose(losses.secu_closed_form_centers(X, W, Y, 1e6), [[0.894427, 0.447214], [0.0, 1.0]],
                               atol=1e-6)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(24, 5))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.normal(size=(4, 5))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    y = rng.integers(0, 3, size=24)  # cluster 3 has no positive: it keeps its centre
    cf = np.asarray(losses.secu_closed_form_centers(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32),
                                                    jnp.asarray(y), 1e6))
    mean = np.stack([x[y == j].mean(0) for j in range(3)])
    np.testing.assert_allclose(cf[:3], mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(cf[3], w[3], atol=1e-7)


def test_closed_form_update_damping_and_empty_clusters():
    centers = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    sums, weights = jnp.array([[0.0, 2.0], [3.0, 0.0], [0.0, 0.0]]), jnp.array([1.5, 0.5, 0.0])
    np.testing.assert_allclose(secu.closed_form_centers(centers, sums, weights), [[0, 1], [1, 0], [0.6, 0.8]])
    damped = np.asarray(secu.closed_form_centers(centers, sums, weights, 0.9))
    expected = np.array([[0.9, 0.1], [0.1, 0.9]]) / np.hypot(0.9, 0.1)
    np.testing.assert_allclose(damped[:2], expected, atol=1e-6)
    np.testing.assert_allclose(damped[2], [0.6, 0.8])


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


def secu_optimizer(cfg, steps_per_epoch):
    """The optimiser and encoder lr SeCu builds from its config (optim.make_optimizer, centres constant)."""
    return optim.make_optimizer(cfg.optim, steps_per_epoch, cfg.train.epochs, cfg.train.batch_size,
                                constant_lr={"centers": cfg.method.centers_lr})


def official_secu_lr(step, base_lr, warmup_epochs, epochs, steps_per_epoch, init_epoch):
    """SeCu's encoder lr as jaxclust computed it before it became optim's (float32, official adjust_learning_rate)."""
    c = jnp.asarray(step, jnp.float32)
    i = float(steps_per_epoch)
    o = i if init_epoch else 0.0
    warm = float(warmup_epochs) * i
    total = float(epochs) * i
    lr_warm = base_lr * jnp.maximum(1.0, c - o) / max(warm, 1.0)
    lr_cos = base_lr * 0.5 * (1.0 + jnp.cos(math.pi * (c - o - warm) / max(total - o - warm, 1.0)))
    return jnp.where(c < o, 0.0, jnp.where(c < o + warm, lr_warm, lr_cos))


def test_learning_rate_schedule():
    i, e = 391, 401  # official CIFAR-10: 391 iterations, --epochs 401
    cfg = load_config("secu_cifar10")
    _, lr_fn = secu_optimizer(cfg, i)
    lr = lambda c: float(lr_fn(c))  # noqa: E731
    assert lr(0) == 0.0 and lr(i - 1) == 0.0  # initialisation epoch
    assert lr(i) == pytest.approx(0.2 / (10 * i))  # epoch 1, iteration 0
    assert lr(11 * i) == pytest.approx(0.2)  # start of epoch 11
    assert lr(e * i - 1) == pytest.approx(0.0, abs=1e-8)
    # in float32, bit for bit SeCu's former own schedule (both jitted, as in the step: XLA's compiled
    # arithmetic may differ from the eager one by an ulp), with and without the initialisation epoch
    steps = jnp.arange(e * i, dtype=jnp.int32)
    for init_epoch in (True, False):
        cfg.optim.frozen_epochs = int(init_epoch)
        _, lr_fn = secu_optimizer(cfg, i)
        former = jax.jit(lambda n: official_secu_lr(n, 0.2, 10, e, i, init_epoch))  # noqa: B023
        np.testing.assert_array_equal(jax.jit(lr_fn)(steps), former(steps))


def test_optimizer_is_secus_two_sgd_groups():
    """SeCu's former optimiser (two torch SGD groups: encoder under the schedule, centres at a constant lr),
    written out with optax: the same state structure and bit-identical updates, across the initialisation epoch."""
    cfg, spe = tiny_config(), 2
    o = cfg.optim

    def sgd(lr):
        return optax.chain(optax.add_decayed_weights(o.weight_decay), optax.trace(o.momentum, nesterov=o.nesterov),
                           optax.scale_by_schedule(lambda n: -lr(n)))

    former = optax.multi_transform(
        {"net": sgd(lambda n: official_secu_lr(n, o.lr, o.warmup_epochs, cfg.train.epochs, spe, True)),
         "centers": sgd(lambda n: cfg.method.centers_lr)},
        lambda params: {name: jax.tree.map(lambda _: name, sub) for name, sub in params.items()})
    tx, _ = secu_optimizer(cfg, spe)
    rng = np.random.default_rng(3)
    params = {"net": {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32), "b": jnp.zeros(4)},
              "centers": {"head00": jnp.asarray(rng.normal(size=(3, 8)), jnp.float32)}}
    states = [tx.init(params), former.init(params)]
    assert jax.tree.structure(states[0]) == jax.tree.structure(states[1])  # old checkpoints restore
    step = jax.jit(lambda t, g, st, p: t.update(g, st, p), static_argnums=0)
    for n in range(3 * spe):
        grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
        (new, states[0]), (old, states[1]) = step(tx, grads, states[0], params), step(former, grads, states[1], params)
        for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(old)):
            np.testing.assert_array_equal(a, b)
        assert n >= spe or not np.any(np.asarray(new["net"]["w"]))  # the initialisation epoch: encoder lr 0
        params = optax.apply_updates(params, new)


# ------------------------------------------------------------------------------------------------
# The method's step on a tiny network

N, B, SPE = 32, 8, 4


def tiny_config(**method):
    c = tiny.tiny_config("secu", B, **{"num_heads": 2, **method})
    c.optim.lr, c.optim.weight_decay, c.optim.warmup_epochs = 0.2, 1e-4, 1
    c.optim.lr_batch_scaling, c.optim.frozen_epochs, c.optim.schedule = "none", 1, "warmup_cosine_to_end"
    c.optim.predictor_lr_mult = 1.0
    c.cluster.num_clusters = 3
    return c


@pytest.fixture(scope="module", params=["size", "entropy"])
def setup(request):
    cfg = tiny_config(constraint=request.param)
    check_config(cfg)
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
        # unit rows, jitted against eager: entries near 0 need an absolute bound, a few float32 ulps of 1
        np.testing.assert_allclose(a, losses.l2_normalize(c), rtol=1e-6, atol=4 * np.finfo(np.float32).eps)


def test_cluster_predicts_with_the_first_head(setup):
    _, method, _, state, (v1, _) = setup
    feats = method.embed(state, v1)
    _, labels, info = method.cluster(state, feats, jax.random.key(0))
    w = losses.l2_normalize(state.params["centers"]["head00"])
    np.testing.assert_array_equal(labels, np.argmax(np.asarray(feats @ w.T), axis=1))
    assert "stored_agreement" in info


def _np_closed_form_stats(x, w, y, temperature):
    """numpy: S_j = sum_{y_i = j} (1 - p_ij) x_i, Z_j = sum_{y_i = j} (1 - p_ij) (Eq. 4)."""
    logits = x @ w.T / temperature
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    hard = 1.0 - p[np.arange(len(y)), y]
    sums, weights = np.zeros_like(w), np.zeros(len(w))
    np.add.at(sums, y, hard[:, None] * x)
    np.add.at(weights, y, hard)
    return sums, weights


@pytest.fixture(scope="module")
def closed_form_setup():
    cfg = tiny_config(center_update="closed_form")
    check_config(cfg)
    method = secu.build(cfg, N, SPE)
    views = jax.random.normal(jax.random.key(5), (4, B, 8, 8, 1))
    state = method.init(jax.random.key(6), views[0])
    return cfg, jax.jit(method.train_step), state, views


def test_closed_form_step_sets_the_centres_from_the_epoch_sums(closed_form_setup):
    cfg, step, state, views = closed_form_setup
    encoder = secu.Encoder(cfg.model)
    lam = cfg.method.center_temperature

    def features(st, v):
        z, _ = encoder.apply({"params": st.params["net"], "batch_stats": st.batch_stats}, v, train=True,
                             mutable=["batch_stats"])
        return np.asarray(losses.l2_normalize(z), np.float64)

    def expected(st, v1, v2, idx, new, previous):
        """numpy: the labels of the size constraint, then Eq. 4 on the sums of this epoch."""
        x1, x2 = features(st, v1), features(st, v2)
        for h, name in enumerate(("head00", "head01")):
            w = np.asarray(losses.l2_normalize(st.params["centers"][name]), np.float64)
            y = np.argmax(0.5 * (x1 @ w.T + x2 @ w.T) + np.asarray(st.extra["duals"][name])[None], axis=1)
            np.testing.assert_array_equal(new.extra["labels"][h, idx], y)
            s1, z1 = _np_closed_form_stats(x1, w, y, lam)
            s2, z2 = _np_closed_form_stats(x2, w, y, lam)
            sums, weights = previous[name][0] + s1 + s2, previous[name][1] + z1 + z2
            np.testing.assert_allclose(new.extra["cf_sums"][name], sums, atol=1e-5)
            np.testing.assert_allclose(new.extra["cf_weights"][name], weights, atol=1e-5)
            norm = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-30)
            cf = np.where(weights[:, None] > 0, sums / norm, w)
            assert 0 < np.sum(weights > 0) and np.any(np.abs(cf - w) > 1e-3)  # the centres did move
            np.testing.assert_allclose(new.params["centers"][name], cf, atol=1e-5)  # not an SGD step
        return {name: (np.asarray(new.extra["cf_sums"][name]), np.asarray(new.extra["cf_weights"][name]))
                for name in ("head00", "head01")}

    zero = {name: (0.0, 0.0) for name in ("head00", "head01")}
    first, idx1 = step(state, views[0], views[1], jnp.arange(B), jax.random.key(0))[0], np.arange(B)
    acc = expected(state, views[0], views[1], idx1, first, zero)  # step 0 opens the epoch: sums restart
    idx2 = np.arange(B, 2 * B)
    second = step(first, views[2], views[3], jnp.asarray(idx2), jax.random.key(0))[0]
    expected(first, views[2], views[3], idx2, second, acc)  # same epoch: the sums accumulate
    opening = second.replace(step=jnp.asarray(SPE, jnp.int32))
    third = step(opening, views[0], views[1], jnp.arange(B), jax.random.key(0))[0]
    expected(opening, views[0], views[1], idx1, third, zero)  # next epoch: reset


def test_validate_rejects_bad_values():
    for key, value in (("constraint", "both"), ("size_gamma", 0.0), ("label_weight", 1.5),
                       ("center_update", "adam"), ("center_damping", 1.0), ("center_damping", -0.1)):
        with pytest.raises(ConfigError, match=key):
            check_config(tiny_config(**{key: value}))
    with pytest.raises(ConfigError, match="center_loss"):
        check_config(tiny_config(center_update="closed_form", center_loss="ce"))
    cfg = tiny_config()
    cfg.train.epochs = 2  # 1 initialisation + 1 warm-up epoch leave nothing for the cosine
    with pytest.raises(ConfigError, match="train.epochs"):
        check_config(cfg)
    cfg = tiny_config()
    cfg.optim.predictor_lr_mult = 10.0  # SeCu has no predictor: refused, not ignored
    with pytest.raises(ConfigError, match=r"optim\.predictor_lr_mult=1"):
        check_config(cfg)


# ------------------------------------------------------------------------------------------------
# method.init_from: STL-10's stage 2 (App. C.1) warm-starts from stage 1's checkpoint, one head kept

ROOT = Path(__file__).resolve().parents[1]
DIGITS = 1797


def load_config(name):
    return load_config_file(ROOT / "configs" / f"{name}.py")


def tiny_digits(num_heads, **method):
    c = load_config("secu_digits")
    c.model.convnet_widths = (4, 8)
    c.model.projector_hidden, c.model.projector_dim = 16, 8
    c.method.num_heads = num_heads
    c.optim.frozen_epochs = 0  # one epoch that trains the encoder
    c.method.update(method)
    c.optim.warmup_epochs = 0
    c.train.epochs, c.train.batch_size, c.train.embed_batch_size = 1, 256, 512
    c.train.checkpoint_every_epochs = c.train.log_every_epochs = c.cluster.every = 1
    return c


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """A 1-epoch SeCu run on digits with 3 heads (10, 20, 30 centres) and its final checkpoint."""
    workdir = tmp_path_factory.mktemp("stage1")
    cfg = tiny_digits(3)
    train_and_evaluate(cfg, workdir)
    like = jax.eval_shape(secu.build(cfg, DIGITS, DIGITS // 256).init, jax.random.key(0), jnp.zeros((2, 8, 8, 1)))
    checkpointer = Checkpointer(workdir)
    epoch = checkpointer.latest_epoch()
    final, _ = checkpointer.restore(epoch, like)
    checkpointer.close()
    assert epoch == 1 and int(final.step) == DIGITS // 256
    return workdir, final


def test_stage2_starts_from_stage1_encoder_and_kept_head(stage1, tmp_path):
    workdir, final = stage1
    cfg = tiny_digits(1, init_from=str(workdir))  # stage 2: head K = 10 only
    cfg.train.epochs = 2
    check_config(cfg)
    method = secu.build(cfg, 500, 2)
    state = jax.jit(method.init)(jax.random.key(7), jnp.zeros((2, 8, 8, 1)))
    for got, want in ((state.params["net"], final.params["net"]), (state.batch_stats, final.batch_stats)):
        assert jax.tree.structure(got) == jax.tree.structure(want)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_array_equal(a, b)  # exactly stage 1's
    # the kept head is stage 1's head of K = 10 centres, as stored; the 20- and 30-centre heads are dropped
    assert sorted(state.params["centers"]) == ["head00"] and sorted(final.params["centers"]) == ["head00", "head01", "head02"]
    np.testing.assert_array_equal(state.params["centers"]["head00"], final.params["centers"]["head00"])
    assert list(state.extra["duals"]) == list(state.extra["counts"]) == list(state.extra["frozen_centers"]) == ["head00"]
    # everything else starts fresh: step, labels of the new data set, duals / counts, optimiser state
    assert int(state.step) == 0 and state.extra["labels"].shape == (1, 500)
    assert np.all(np.asarray(state.extra["labels"]) == secu.UNASSIGNED)
    assert not np.any(np.asarray(state.extra["duals"]["head00"])) and not np.any(np.asarray(state.extra["counts"]["head00"]))
    assert all(not np.any(np.asarray(leaf)) for leaf in jax.tree.leaves(state.opt_state))
    assert any(np.any(np.asarray(leaf)) for leaf in jax.tree.leaves(final.opt_state))  # stage 1's was not
    # a head of another size keeps stage 1's head of that size: K = 20 -> stage 1's head01
    cfg20 = tiny_digits(1, init_from=str(workdir))
    cfg20.cluster.num_clusters = 20
    other = secu.build(cfg20, 500, 2).init(jax.random.key(7), jnp.zeros((2, 8, 8, 1)))
    np.testing.assert_array_equal(other.params["centers"]["head00"], final.params["centers"]["head01"])
    # the warm state trains: one step assigns the batch with the kept head and moves the encoder
    views = jax.random.normal(jax.random.key(8), (2, 16, 8, 8, 1))
    new, metrics = jax.jit(method.train_step)(state, views[0], views[1], jnp.arange(16), jax.random.key(9))
    assert np.isfinite(float(metrics["loss"])) and np.all(np.asarray(new.extra["labels"][0, :16]) >= 0)
    assert any(np.any(a != b) for a, b in zip(jax.tree.leaves(new.params["net"]), jax.tree.leaves(state.params["net"])))


def test_init_from_errors_name_the_key(stage1, tmp_path):
    workdir, _ = stage1
    missing = tmp_path / "no_such_run"
    for path in (missing, tmp_path):  # no directory; a directory without checkpoints
        with pytest.raises(ConfigError, match=r"method\.init_from .* has no checkpoint"):
            check_config(tiny_digits(1, init_from=str(path)))
        with pytest.raises(ConfigError, match=r"method\.init_from .* has no checkpoint"):
            secu.build(tiny_digits(1, init_from=str(path)), 500, 2)
    assert not missing.exists() and not (tmp_path / "checkpoints").exists()  # nothing created
    wider = tiny_digits(1, init_from=str(workdir))
    wider.model.convnet_widths = (4, 16)
    with pytest.raises(ConfigError, match=r"method\.init_from .* another architecture"):
        secu.build(wider, 500, 2)
    no_head = tiny_digits(1, init_from=str(workdir))
    no_head.cluster.num_clusters = 40
    with pytest.raises(ConfigError, match=r"method\.init_from .* no head of 40 centres"):
        secu.build(no_head, 500, 2)


def test_stl10_stage2_config():
    one, two = load_config("secu_stl10"), load_config("secu_stl10_stage2")
    assert (two.data.name, two.data.split, two.data.unlabelled) == ("stl10", "train", False)
    assert (two.method.num_heads, two.cluster.num_clusters, two.method.init_from) == (1, 10, "")
    assert (two.optim.lr, two.method.entropy_alpha, two.train.epochs) == (0.002, 600.0, 101)
    changed = {"data.unlabelled", "method.num_heads", "optim.lr", "method.entropy_alpha", "train.epochs"}
    flat = lambda c: {f"{s}.{k}": v for s, sec in c.to_dict().items() if isinstance(sec, dict) for k, v in sec.items()}  # noqa: E731
    assert {k for k, v in flat(one).items() if flat(two)[k] != v} == changed  # the rest as stage 1 (App. C.1)
    assert two.method.center_temperature == 1.0  # seed_secu.md §12.5
    check_config(two)
