"""Clustering metrics against the official torch_clustering outputs (fixture metrics.npz)."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fixtures import load_official
from jaxclust import metrics

CASES = ("full", "fewer", "more", "masked")  # the fixture layout's case names (README §4)


@pytest.fixture(scope="module")
def metrics_npz():
    return load_official("metrics.npz")


def test_fixture_lists_the_four_cases(metrics_npz):
    assert tuple(str(c) for c in metrics_npz["cases"]) == CASES


@pytest.mark.parametrize("case", CASES)
def test_official_rule_matches_official_values(metrics_npz, case):
    got = metrics.cluster_metrics(metrics_npz[f"{case}_labels"], metrics_npz[f"{case}_preds"], acc_rule="official")
    for key in ("nmi", "ari", "acc"):
        np.testing.assert_allclose(got[key], metrics_npz[f"{case}_{key}"], rtol=0, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("case", CASES)
def test_hungarian_rule_keeps_acc_for_any_number_of_clusters(metrics_npz, case):
    got = metrics.cluster_metrics(metrics_npz[f"{case}_labels"], metrics_npz[f"{case}_preds"])
    np.testing.assert_allclose(got["acc"], metrics_npz[f"{case}_acc_hungarian"], rtol=0, atol=1e-12)
    # NMI / ARI do not depend on the ACC rule.
    np.testing.assert_allclose(got["nmi"], metrics_npz[f"{case}_nmi"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["ari"], metrics_npz[f"{case}_ari"], rtol=0, atol=1e-12)
    assert -1.0 <= got["ami"] <= got["nmi"] + 1e-12  # AMI is NMI corrected for chance


def test_masked_rows_are_dropped(metrics_npz):
    labels, preds = metrics_npz["masked_labels"], metrics_npz["masked_preds"]
    keep = labels != -1
    assert 0 < (~keep).sum() < keep.size  # the case masks some rows, not all
    assert metrics.cluster_metrics(labels, preds) == metrics.cluster_metrics(labels[keep], preds[keep])


def test_perfect_clustering_with_renamed_ids_scores_one():
    labels = np.repeat(np.arange(4), 5)
    preds = np.array([7, 3, 11, 0])[labels]  # arbitrary, sparse cluster ids
    got = metrics.cluster_metrics(labels, preds, acc_rule="official")
    for key in ("nmi", "ari", "ami", "acc"):
        assert got[key] == pytest.approx(1.0, abs=1e-12), key


def _brute_force_accuracy(labels_true, labels_pred):
    """Max accuracy over all partial one-to-one maps cluster -> class, counted on the raw points."""
    clusters, classes = np.unique(labels_pred), np.unique(labels_true)
    best = 0
    # each cluster goes to a class or to None (unmatched); matched classes must be distinct.
    for choice in itertools.product([None, *classes], repeat=len(clusters)):
        matched = [c for c in choice if c is not None]
        if len(matched) != len(set(matched)):
            continue
        mapping = dict(zip(clusters, choice))
        hits = sum(mapping[p] is not None and mapping[p] == t for t, p in zip(labels_true, labels_pred))
        best = max(best, hits)
    return best / len(labels_true)


@pytest.mark.parametrize("n_classes,n_clusters,seed", [(3, 5, 0), (4, 2, 1), (3, 3, 2)])
def test_hungarian_acc_equals_brute_force_on_non_square_confusion(n_classes, n_clusters, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=40)
    # correlated predictions so the optimum is not trivial, plus noise
    preds = np.where(rng.random(40) < 0.6, labels % n_clusters, rng.integers(0, n_clusters, size=40))
    assert np.unique(preds).size == n_clusters
    expected = _brute_force_accuracy(labels, preds)
    assert metrics.hungarian_accuracy(labels, preds) == pytest.approx(expected, abs=1e-12)
    assert metrics.cluster_metrics(labels, preds)["acc"] == pytest.approx(expected, abs=1e-12)
    official = metrics.cluster_metrics(labels, preds, acc_rule="official")["acc"]
    assert official == (pytest.approx(expected, abs=1e-12) if n_classes == n_clusters else 0.0)


@pytest.mark.parametrize(
    "labels,preds,acc_rule,error",
    [
        (np.zeros(4, int), np.zeros(5, int), "hungarian", ValueError),
        (np.zeros((2, 2), int), np.zeros((2, 2), int), "hungarian", ValueError),
        (np.zeros(4), np.zeros(4, int), "hungarian", TypeError),
        (np.zeros(4, int), np.zeros(4, int), "best", ValueError),
        (-np.ones(4, int), np.zeros(4, int), "hungarian", ValueError),
    ],
    ids=["length", "2d", "float", "rule", "all-masked"],
)
def test_cluster_metrics_rejects_bad_input(labels, preds, acc_rule, error):
    with pytest.raises(error):
        metrics.cluster_metrics(labels, preds, acc_rule=acc_rule)


def test_uniformity_matches_official_global_std():
    data = load_official("kmeans_overlap.npz")
    x, expected = data["X"], float(data["global_std"])
    assert float(metrics.uniformity(x)) == pytest.approx(expected, abs=1e-6)
    on_device = jax.jit(metrics.uniformity)(jnp.asarray(x))
    assert isinstance(on_device, jax.Array)
    assert float(on_device) == pytest.approx(expected, abs=1e-6)


def test_uniformity_of_uniform_sphere_points_is_near_inverse_sqrt_dim():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20000, 64))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert metrics.uniformity(x) == pytest.approx(1 / 8, rel=1e-2)
    assert metrics.uniformity(np.tile(x[:1], (10, 1))) == pytest.approx(0.0, abs=1e-12)  # collapse


def test_cluster_sizes_and_imbalance_hand_example():
    labels = np.array([0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(metrics.cluster_sizes(labels, 3), [3, 1, 2])
    assert metrics.imbalance(labels, 3) == pytest.approx(1 / 3)
    np.testing.assert_array_equal(metrics.cluster_sizes(labels, 4), [3, 1, 2, 0])
    assert metrics.imbalance(labels, 4) == 0.0  # cluster 3 is empty
    assert metrics.imbalance(np.array([1, 0, 1, 0]), 2) == 1.0
    with pytest.raises(ValueError):
        metrics.cluster_sizes(labels, 2)  # label 2 is outside [0, 2)


def test_partition_nmi_is_one_for_renamed_clusters_and_matches_a_hand_value():
    a = np.array([0, 0, 1, 1, 2, 2])
    assert metrics.partition_nmi(a, np.array([2, 2, 0, 0, 1, 1])) == pytest.approx(1.0, abs=1e-12)
    # one point of cluster 1 moved to cluster 0: I(A;B) and H by hand, natural log, arithmetic mean
    b = np.array([0, 0, 0, 1, 2, 2])
    h_a = np.log(3.0)
    h_b = -(0.5 * np.log(0.5) + (1 / 6) * np.log(1 / 6) + (1 / 3) * np.log(1 / 3))
    # joint cells: (0,0) 2/6, (1,0) 1/6, (1,1) 1/6, (2,2) 2/6
    joint = {(0, 0): 2 / 6, (1, 0): 1 / 6, (1, 1): 1 / 6, (2, 2): 2 / 6}
    pa, pb = {0: 1 / 3, 1: 1 / 3, 2: 1 / 3}, {0: 1 / 2, 1: 1 / 6, 2: 1 / 3}
    mi = sum(p * np.log(p / (pa[i] * pb[j])) for (i, j), p in joint.items())
    assert metrics.partition_nmi(a, b) == pytest.approx(mi / ((h_a + h_b) / 2), rel=1e-12)
    assert metrics.partition_nmi(b, a) == pytest.approx(metrics.partition_nmi(a, b), rel=1e-12)
    with pytest.raises(ValueError, match="same length"):
        metrics.partition_nmi(a, b[:5])
