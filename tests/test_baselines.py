"""BYOL, MoCo v2 and PCL: golden values (shared/reference/seed_pcl.md §6), queue, sampler, E-step, configs.

The golden numbers were computed by a float64 numpy reference written from the official code
(seed_pcl.md §6.1-6.2). Train steps use one tiny network per method, built and compiled once per module.
"""
import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust import losses
from jaxclust.config import ConfigError, load_config_file
from jaxclust.trainer import check_config
from jaxclust.methods import byol, moco, pcl

ROOT = Path(__file__).resolve().parents[1]


def load_config(name):
    return load_config_file(ROOT / "configs" / f"{name}.py")


def unit(rows):
    x = np.asarray(rows, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------
# Golden values, seed_pcl.md §6.2: tau 0.1, D 2, N 3, r 3, k 4; positives [0, 0, 2] (a duplicate).

Q = unit([[1, 0], [0.6, 0.8], [0, 1]])
K = unit([[0.8, 0.6], [0, 1], [-0.6, 0.8]])
QUEUE = unit([[-1, 0], [0, -1], [0.7071, 0.7071]])
PROTOS = unit([[1, 0.2], [-1, 0], [0.1, 1], [0, -1]])
PHI = np.array([0.05, 0.1, 0.15, 0.1], np.float32)
POS = jnp.array([0, 0, 2])
L_INST, L_PROTO = 0.9017272687675781, 0.5040972038720737


def test_info_nce_golden():
    np.testing.assert_allclose(losses.info_nce_loss(Q, K, QUEUE, 0.1), L_INST, rtol=1e-6)


@pytest.mark.parametrize("negatives", [[1, 3], [3, 1]])
def test_protonce_golden_and_order_of_negatives(negatives):
    proto = losses.protonce_loss(Q, PROTOS, PHI, POS, jnp.array(negatives))
    np.testing.assert_allclose(proto, L_PROTO, rtol=1e-6)
    np.testing.assert_allclose(losses.info_nce_loss(Q, K, QUEUE, 0.1) + proto, 1.4058244726396518, rtol=1e-6)


def test_protonce_rows_permuted_with_their_targets():
    perm = jnp.array([2, 0, 1])
    a = losses.protonce_loss(Q, PROTOS, PHI, POS, jnp.array([1, 3]))
    b = losses.protonce_loss(Q[perm], PROTOS, PHI, POS[perm], jnp.array([1, 3]))
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_protonce_duplicated_positive_bounds_the_loss_by_log_d():
    # every row's positive duplicated d = 3 times among the columns, negatives far away: loss -> log 3
    q = unit([[1, 0]] * 3)
    protos = unit([[1, 0], [-1, 0]])
    loss = losses.protonce_loss(q, protos, jnp.full((2,), 0.01), jnp.zeros(3, int), jnp.array([1]))
    np.testing.assert_allclose(loss, np.log(3.0), atol=1e-5)  # float32 logits of +-100


def test_protonce_with_keys_as_prototypes_is_infonce():
    """InfoNCE is ProtoNCE with prototypes = [keys; queue] and phi = tau (PCL §3.2)."""
    tau, n, r = 0.1, len(Q), len(QUEUE)
    prototypes = jnp.concatenate([K, QUEUE])
    phi = jnp.full((n + r,), tau)
    info = losses.info_nce_loss(Q, K, QUEUE, tau)
    own, queue_ids = jnp.arange(n), n + jnp.arange(r)
    # ProPos layout: row i = [own key, queue], target 0 -- exactly InfoNCE for any batch
    np.testing.assert_allclose(
        losses.protonce_loss(Q, prototypes, phi, own, queue_ids, layout="propos"), info, rtol=1e-6)
    # official layout: the other rows' keys are columns too, so only a single row matches
    np.testing.assert_allclose(
        losses.protonce_loss(Q[:1], prototypes, phi, own[:1], queue_ids),
        losses.info_nce_loss(Q[:1], K[:1], QUEUE, tau), rtol=1e-6)


def test_protonce_invalid_negatives_are_left_out():
    full = losses.protonce_loss(Q, PROTOS, PHI, POS, jnp.array([1, 3]))
    masked = losses.protonce_loss(Q, PROTOS, PHI, POS, jnp.array([1, 3, 0]), jnp.array([True, True, False]))
    np.testing.assert_allclose(masked, full, rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# Concentration phi, seed_pcl.md §6.1: 2-D clusters, raw centroids, alpha 10, tau 0.1.

CLUSTERS = [
    [(1, 0), (0, 1), (-1, 0), (0, -1)],
    [(10, 10), (10, 12)],
    [(20, 0), (20, 4), (24, 0), (24, 4)],
    [(-10, -10)],  # a singleton -> the largest phi
    [(0, 30), (0, 30.2), (0, 29.8)],
]
PHI_GOLDEN = [0.0609666844, 0.0647487403, 0.172439824, 0.172439824, 0.0294049273]


def phi_data():
    x = np.array([p for c in CLUSTERS for p in c], np.float32)
    y = np.array([i for i, c in enumerate(CLUSTERS) for _ in c], np.int32)
    centers = np.stack([np.mean(c, axis=0) for c in CLUSTERS]).astype(np.float32)
    return x, y, centers


def test_concentration_golden():
    x, y, centers = phi_data()
    phi = losses.pcl_concentration(x, y, centers, 0.1)
    np.testing.assert_allclose(phi, PHI_GOLDEN, rtol=1e-6)
    np.testing.assert_allclose(jnp.mean(phi), 0.1, rtol=1e-6)
    # invariant to the order of the data
    perm = np.random.default_rng(0).permutation(len(x))
    np.testing.assert_allclose(losses.pcl_concentration(x[perm], y[perm], centers, 0.1), phi, rtol=1e-6)
    # measured to the raw centroids: normalised ones give other values
    assert not np.allclose(losses.pcl_concentration(x, y, np.asarray(losses.l2_normalize(centers)), 0.1), phi)


def test_concentration_empty_and_singleton_clusters_stay_finite():
    x = unit(np.random.default_rng(1).normal(size=(12, 4)))
    y = np.array([0] * 6 + [1, 2, 3, 4, 5, 6], np.int32)  # one real cluster, six singletons, one empty
    centers = np.zeros((8, 4), np.float32)
    centers[: 7] = [x[y == j].mean(0) for j in range(7)]
    phi = losses.pcl_concentration(x, y, centers, 0.2)
    assert np.all(np.isfinite(phi)) and np.allclose(phi, 0.2)  # all clip to one value, mean tau
    # every cluster degenerate (all singletons): tau everywhere instead of 0/0
    phi = losses.pcl_concentration(x[:3], np.arange(3, dtype=np.int32), x[:3], 0.2)
    np.testing.assert_allclose(phi, 0.2)


# ------------------------------------------------------------------------------------------------
# Negative prototypes and the queue.


def test_negatives_without_replacement_are_distinct_candidates():
    positives = jnp.array([0, 3, 3, 7])
    for seed in range(20):
        ids, valid = pcl.sample_negative_prototypes(jax.random.key(seed), positives, 12, 8, "without_replacement")
        ids = np.asarray(ids)
        assert len(set(ids)) == 8 and not set(ids) & {0, 3, 7} and np.all(valid)
    # every candidate is about equally frequent
    draws = jax.vmap(lambda k: pcl.sample_negative_prototypes(k, positives, 12, 2, "without_replacement")[0])(
        jax.random.split(jax.random.key(0), 4000))
    counts = np.bincount(np.asarray(draws).ravel(), minlength=12)
    assert np.all(counts[[0, 3, 7]] == 0)
    freq = counts[[1, 2, 4, 5, 6, 8, 9, 10, 11]] / 8000
    assert np.all(np.abs(freq - 1 / 9) < 0.02)


def test_negatives_with_replacement_and_all():
    positives = jnp.array([1, 2])
    ids, valid = pcl.sample_negative_prototypes(jax.random.key(0), positives, 4, 50, "with_replacement")
    assert set(np.asarray(ids)) == {0, 3} and np.all(valid)
    ids, valid = pcl.sample_negative_prototypes(jax.random.key(0), positives, 4, 50, "all")
    np.testing.assert_array_equal(ids, np.arange(4))
    np.testing.assert_array_equal(valid, [True, False, False, True])


def test_queue_is_first_in_first_out():
    queue, ptr = jnp.zeros((8, 2)), jnp.zeros((), jnp.int32)
    for step in range(5):
        keys = jnp.full((2, 2), step + 1.0).at[1].add(0.5)
        queue, ptr = moco.enqueue(queue, ptr, keys)
        assert int(ptr) == (2 * (step + 1)) % 8
    # step 5 overwrote the rows of step 1; the rest keep steps 2-4 in order
    np.testing.assert_array_equal(queue[:, 0], [5, 5.5, 2, 2.5, 3, 3.5, 4, 4.5])


# ------------------------------------------------------------------------------------------------
# Train steps and E-steps on a tiny network.

BATCH, STEPS_PER_EPOCH, N = 8, 2, 64


def tiny(cfg):
    cfg.model.convnet_widths = (4,)
    cfg.model.convnet_blocks_per_stage = 1
    cfg.model.projector_hidden = 8
    cfg.model.projector_dim = 8
    cfg.model.predictor_hidden = 8
    cfg.train.batch_size = BATCH
    cfg.train.epochs = 4
    cfg.optim.warmup_epochs = 1
    cfg.cluster.num_clusters = 4
    cfg.cluster.every = 1
    cfg.kmeans.n_init = 2
    cfg.kmeans.max_iter = 10
    return cfg


def tiny_pcl_config(framework="moco"):
    cfg = load_config("pcl_digits")
    if framework == "byol":
        cfg.method = pcl.method_config("propos_byol")
        cfg.method.negatives = "all"
    cfg = tiny(cfg)
    # the first is the scored one; BYOL's "propos" layout needs clusters outside a batch's positives
    cfg.method.num_clusters = (4, 6) if framework == "moco" else (4, 32)
    cfg.method.proto_warmup_epochs = 1
    cfg.method.kmeans_n_init = 2
    if framework == "moco":
        cfg.method.queue_size = 32
    check_config(cfg)
    return cfg


class Tiny:
    def __init__(self, cfg):
        self.cfg = cfg
        self.method = pcl.build(cfg, N, STEPS_PER_EPOCH)
        rng = np.random.default_rng(0)
        self.views = [jnp.asarray(rng.normal(size=(BATCH, 8, 8, 1)), jnp.float32) for _ in range(2)]
        self.indices = jnp.arange(BATCH)
        self.features = losses.l2_normalize(jnp.asarray(rng.normal(size=(N, 8)), jnp.float32))
        self.state = jax.jit(self.method.init)(jax.random.key(0), self.views[0][:2])
        self.step = jax.jit(self.method.train_step)

    def run(self, state):
        return self.step(state, *self.views, self.indices, jax.random.key(1))


@pytest.fixture(scope="module")
def tiny_moco_pcl():
    return Tiny(tiny_pcl_config("moco"))


def test_warmup_loss_is_infonce_and_queue_takes_the_keys(tiny_moco_pcl):
    t = tiny_moco_pcl
    state, metrics = t.run(t.state)
    assert float(metrics["proto_loss"]) == 0.0
    assert float(metrics["loss"]) == float(metrics["info_nce_loss"])
    # symmetric: 2B keys enqueued at rows 0..2B-1, [k(view1), k(view2)], from the updated key encoder
    assert int(state.extra["queue_ptr"]) == 2 * BATCH
    net = moco.Encoder(t.cfg.model, t.cfg.method.head)

    def key_of(x):  # train-mode BN uses batch statistics, so the running ones do not matter
        z, _ = net.apply({"params": state.target_params, "batch_stats": t.state.target_batch_stats}, x,
                         train=True, mutable=["batch_stats"])
        return losses.l2_normalize(z)

    queue = state.extra["queue"]
    np.testing.assert_allclose(queue[:BATCH], key_of(t.views[0]), atol=1e-5)
    np.testing.assert_allclose(queue[BATCH:2 * BATCH], key_of(t.views[1]), atol=1e-5)
    np.testing.assert_array_equal(queue[2 * BATCH:], t.state.extra["queue"][2 * BATCH:])
    state, _ = t.run(state)
    assert int(state.extra["queue_ptr"]) == 0  # 32 rows = 2 steps of 16 keys: wrapped around


def test_e_step_levels_shapes_determinism_and_scored_labels(tiny_moco_pcl):
    t = tiny_moco_pcl
    # after 1 epoch the next epoch uses ProtoNCE: the E-step fills every granularity
    state = t.state.replace(step=jnp.int32(STEPS_PER_EPOCH))
    key = jax.random.key(3)
    a, labels, info = t.method.cluster(state, t.features, key)
    b, labels_b, _ = t.method.cluster(state, t.features, key)
    for m, k in enumerate((4, 6)):
        level = a.extra["pcl"][pcl.level_name(m)]
        assert level["labels"].shape == (N,) and level["prototypes"].shape == (k, 8)
        assert level["concentration"].shape == (k,)
        np.testing.assert_allclose(jnp.mean(level["concentration"]), t.cfg.method.temperature, rtol=1e-5)
        norms = np.linalg.norm(level["prototypes"], axis=1)
        assert np.all((np.abs(norms - 1) < 1e-5) | (norms == 0))
        for name in ("labels", "prototypes", "concentration"):
            np.testing.assert_array_equal(level[name], b.extra["pcl"][pcl.level_name(m)][name])
        assert f"kmeans_inertia_k{k}" in info
    # scored labels: the granularity equal to cluster.num_clusters (4), stored as pseudo-labels
    np.testing.assert_array_equal(labels, a.extra["pcl"]["level0"]["labels"])
    np.testing.assert_array_equal(labels, a.extra["pseudo_labels"])
    np.testing.assert_array_equal(labels, labels_b)
    # before the warm-up ends the granularities are left alone; the scored k-means still runs
    early, early_labels, _ = t.method.cluster(t.state, t.features, key)
    assert early.extra["pcl"] is t.state.extra["pcl"] and early_labels.shape == (N,)


def test_prototype_term_after_warmup(tiny_moco_pcl):
    t = tiny_moco_pcl
    state = t.state.replace(step=jnp.int32(STEPS_PER_EPOCH))
    state, _, _ = t.method.cluster(state, t.features, jax.random.key(3))
    _, metrics = t.run(state)
    proto, info = float(metrics["proto_loss"]), float(metrics["info_nce_loss"])
    assert np.isfinite(proto) and proto > 0
    np.testing.assert_allclose(float(metrics["loss"]), info + t.cfg.method.proto_weight * proto, rtol=1e-5)


def test_byol_plus_pcl_step():
    t = Tiny(tiny_pcl_config("byol"))
    state, metrics = t.run(t.state)
    assert float(metrics["proto_loss"]) == 0.0  # warm-up: plain BYOL
    state = state.replace(step=jnp.int32(STEPS_PER_EPOCH))
    state, _, _ = t.method.cluster(state, t.features, jax.random.key(3))
    _, metrics = t.run(state)
    assert np.isfinite(float(metrics["loss"])) and float(metrics["proto_loss"]) > 0
    assert set(state.extra) >= {"pcl", "pseudo_labels", "centroids"}


# ------------------------------------------------------------------------------------------------
# Configs.

CONFIGS = ["byol_digits", "moco_digits", "pcl_digits", "moco_cifar10", "moco_cifar20", "pcl_cifar10",
           "pcl_cifar20", "pcl_byol_cifar10", "pcl_byol_cifar20", "pcl_imagenet"]


@pytest.mark.parametrize("name", CONFIGS)
def test_configs_validate(name):
    cfg = load_config(name)
    check_config(cfg)
    assert cfg.method.name == name.split("_")[0]


def test_digits_baselines_share_propos_budget():
    ref = load_config("propos_digits")
    for name in ("byol_digits", "moco_digits", "pcl_digits"):
        cfg = load_config(name)
        for key in ("data", "augment", "train"):
            assert cfg[key].to_dict() == ref[key].to_dict(), (name, key)
        assert cfg.model.backbone == ref.model.backbone and cfg.model.convnet_widths == ref.model.convnet_widths


def test_byol_is_propos_without_psl_and_noise():
    view = byol.propos_view(load_config("byol_digits")).method
    assert view.psl_weight == 0 and view.sigma == 0 and view.ema_increase
    cfg = load_config("byol_digits")
    with cfg.unlocked():
        cfg.method.psl_weight = 0.1
    with pytest.raises(ConfigError, match="BYOL has no PSL"):
        check_config(cfg)


@pytest.mark.parametrize("key, value, message", [
    ("queue_size", 1000, "multiple of the keys enqueued per step"),
    ("negatives", "without_replacement", "more than the smallest granularity"),
    ("num_clusters", (25, 1), "tuple of integers >= 2"),
    ("layout", "mine", "method.layout must be one of"),
    ("proto_warmup_epochs", 1000, "proto_warmup_epochs"),
])
def test_bad_pcl_values_are_refused(key, value, message):
    cfg = load_config("pcl_digits")
    cfg.method[key] = value
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)


# ------------------------------------------------------------------------------------------------
# End to end: PCL (the method with the most state) trains, writes its records and resumes exactly.

TIMING_KEYS = {"wall_seconds", "session_seconds", "e_step_seconds"}


def tiny_pcl_run_config():
    cfg = load_config("pcl_digits")
    cfg.model.convnet_widths = (4,)
    cfg.model.convnet_blocks_per_stage = 1
    cfg.model.projector_hidden = 8
    cfg.model.projector_dim = 8
    cfg.train.epochs = 2
    cfg.train.batch_size = 256
    cfg.train.checkpoint_every_epochs = 1
    cfg.optim.warmup_epochs = 1
    cfg.method.queue_size = 512
    cfg.method.proto_warmup_epochs = 1  # ProtoNCE in epoch 2
    cfg.method.num_clusters = (10, 20)
    cfg.method.kmeans_n_init = 1
    cfg.method.kmeans_max_iter = 10
    cfg.kmeans.n_init = 1
    cfg.kmeans.max_iter = 10
    return cfg


def records(path):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in path.read_text().splitlines()]


def test_pcl_trains_and_resumes_exactly(tmp_path):
    from jaxclust.trainer import train_and_evaluate

    first = tmp_path / "first"
    summary = train_and_evaluate(tiny_pcl_run_config(), first)
    lines = records(first / "metrics.jsonl")
    assert [r["epoch"] for r in lines] == [0, 1, 2] and summary["method"] == "pcl"
    assert all(np.isfinite(r["loss"]) for r in lines[1:])
    assert "kmeans_inertia_k20" in lines[1]  # the granularities ran from the end of epoch 1 on
    resumed = tmp_path / "resumed"
    shutil.copytree(first, resumed)
    shutil.rmtree(resumed / "checkpoints" / "2")  # killed after epoch 1's checkpoint
    (resumed / "summary.json").unlink()
    (resumed / "metrics.jsonl").write_text("\n".join((first / "metrics.jsonl").read_text().splitlines()[:-1]) + "\n")
    train_and_evaluate(tiny_pcl_run_config(), resumed)
    assert records(resumed / "metrics.jsonl") == lines


def test_a_method_section_of_another_method_is_refused():
    cfg = load_config("propos_digits")
    cfg.method.name = "moco"  # as --config.method.name=moco would
    with pytest.raises(ConfigError, match="needs method.queue_size"):
        check_config(cfg)
