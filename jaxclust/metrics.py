"""Clustering metrics: NMI, ARI, AMI, ACC, feature uniformity, cluster imbalance, and the NMI between two
partitions (how much the clusters changed from one E-step to the next).

These run on the host, in numpy, on the E-step labels (``uniformity`` also accepts jax arrays and
can be jitted). The conventions follow the official ProPos evaluation,
``torch_clustering.evaluate_clustering`` (see ``shared/reference/propos_official.md`` Sec. 2.6):

* rows whose ground-truth label is -1 are dropped before anything is computed;
* NMI is sklearn's ``normalized_mutual_info_score`` with the arithmetic mean, ARI is sklearn's
  ``adjusted_rand_score``;
* ACC is the Hungarian-matched accuracy. The official code reports ACC = 0.0 whenever the number
  of distinct predictions differs from the number of distinct labels; ``acc_rule="official"``
  reproduces that, while the default ``"hungarian"`` matches each cluster to at most one class and
  is defined for any number of clusters.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from sklearn import metrics as sk_metrics

__all__ = [
    "cluster_metrics",
    "partition_nmi",
    "hungarian_accuracy",
    "uniformity",
    "cluster_sizes",
    "imbalance",
]

_ACC_RULES = ("hungarian", "official")


def _as_label_vector(x, name: str) -> np.ndarray:
    """Returns ``x`` as a 1-D integer numpy array, or raises a one-sentence error."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integer labels, got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}; cast it with .astype(int).")
    return arr


def _confusion(labels_true: np.ndarray, labels_pred: np.ndarray) -> np.ndarray:
    """Contingency table: rows = distinct true classes, columns = distinct predicted clusters.

    Only ids that occur are kept, so arbitrary (large, sparse) ids cost nothing; the zero rows and
    columns that sklearn's ``confusion_matrix`` adds for the union of ids never change the best
    matching.
    """
    _, t = np.unique(labels_true, return_inverse=True)
    _, p = np.unique(labels_pred, return_inverse=True)
    table = np.zeros((t.max() + 1, p.max() + 1), dtype=np.int64)
    np.add.at(table, (t, p), 1)
    return table


def hungarian_accuracy(labels_true, labels_pred) -> float:
    """Best accuracy over one-to-one matchings of predicted clusters to true classes.

    The confusion matrix may be rectangular (K clusters, C classes, K != C): every cluster is matched
    to at most one class and every class to at most one cluster, and the points of unmatched clusters
    count as errors. Equivalent to the official munkres solution when K == C.
    """
    labels_true = _as_label_vector(labels_true, "labels_true")
    labels_pred = _as_label_vector(labels_pred, "labels_pred")
    if labels_true.shape != labels_pred.shape:
        raise ValueError(
            f"labels_true and labels_pred must have the same length, got {labels_true.size} and {labels_pred.size}."
        )
    if labels_true.size == 0:
        raise ValueError("hungarian_accuracy needs at least one labelled point.")
    table = _confusion(labels_true, labels_pred)
    rows, cols = scipy.optimize.linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum()) / labels_true.size


def partition_nmi(labels_a, labels_b) -> float:
    """NMI (sklearn, arithmetic mean) between two labellings of the same points: symmetric, 1 when they
    are the same partition up to the clusters' numbering. Between consecutive E-steps it says how much
    the clusters changed, with no ground truth (DeepCluster's "NMI t-1/t")."""
    labels_a, labels_b = _as_label_vector(labels_a, "labels_a"), _as_label_vector(labels_b, "labels_b")
    if labels_a.shape != labels_b.shape:
        raise ValueError(f"the two labellings must have the same length, got {labels_a.size} and {labels_b.size}.")
    return float(sk_metrics.normalized_mutual_info_score(labels_a, labels_b, average_method="arithmetic"))


def cluster_metrics(labels_true, labels_pred, acc_rule: str = "hungarian") -> dict:
    """NMI, ARI, AMI and ACC of predicted clusters against ground-truth classes.

    Args:
      labels_true: (N,) integer ground-truth classes; rows equal to -1 are ignored (official).
      labels_pred: (N,) integer cluster ids.
      acc_rule: ``"hungarian"`` (ACC defined for any number of clusters) or ``"official"``
        (ACC = 0.0 when the number of distinct predictions differs from the number of distinct
        labels, as ``torch_clustering.evaluate_clustering`` does).

    Returns:
      ``{"nmi": float, "ari": float, "ami": float, "acc": float}``.
    """
    if acc_rule not in _ACC_RULES:
        raise ValueError(f"acc_rule must be one of {_ACC_RULES}, got {acc_rule!r}.")
    labels_true = _as_label_vector(labels_true, "labels_true")
    labels_pred = _as_label_vector(labels_pred, "labels_pred")
    if labels_true.shape != labels_pred.shape:
        raise ValueError(
            f"labels_true and labels_pred must have the same length, got {labels_true.size} and {labels_pred.size}."
        )
    # official torch_clustering.evaluate_clustering: unlabelled rows (-1) are dropped first.
    keep = labels_true != -1
    labels_true, labels_pred = labels_true[keep], labels_pred[keep]
    if labels_true.size == 0:
        raise ValueError("cluster_metrics needs at least one point whose true label is not -1.")

    nmi = partition_nmi(labels_true, labels_pred)
    ari = sk_metrics.adjusted_rand_score(labels_true, labels_pred)
    ami = sk_metrics.adjusted_mutual_info_score(labels_true, labels_pred, average_method="arithmetic")
    if acc_rule == "official" and np.unique(labels_pred).size != np.unique(labels_true).size:
        # official evaluate_clustering: ACC is reported as 0.0 (with a warning) unless the number of
        # distinct predictions equals the number of distinct labels.
        acc = 0.0
    else:
        acc = hungarian_accuracy(labels_true, labels_pred)
    return {"nmi": float(nmi), "ari": float(ari), "ami": float(ami), "acc": float(acc)}


def uniformity(features):
    """Mean over dimensions of the unbiased per-dimension std of ``features`` (N, D).

    This is the official ``global_std`` that ProPos logs next to each k-means (paper Fig. 3a). For
    points uniform on the unit sphere in D dimensions it tends to 1/sqrt(D); a collapsed
    representation gives values near 0. Numpy in, numpy scalar out; jax in, jax scalar out (jittable).
    """
    if isinstance(features, jax.Array):  # includes tracers, so this works under jit
        xp = jnp
    else:
        xp = np
        features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D (N, D) array, got shape {features.shape}.")
    if features.shape[0] < 2:
        raise ValueError(f"uniformity needs at least 2 points for an unbiased std, got {features.shape[0]}.")
    # official: features.std(dim=0).mean(); torch's std is unbiased (ddof=1) by default.
    return xp.mean(xp.std(features, axis=0, ddof=1))


def cluster_sizes(labels, k: int) -> np.ndarray:
    """Number of points in each of the ``k`` clusters, as an int64 array of length ``k``."""
    labels = _as_label_vector(labels, "labels")
    if k < 1:
        raise ValueError(f"k must be a positive number of clusters, got {k}.")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"cluster labels must lie in [0, {k}), got values in [{labels.min()}, {labels.max()}].")
    return np.bincount(labels, minlength=k).astype(np.int64)


def imbalance(labels, k: int) -> float:
    """Smallest over largest cluster size among the ``k`` clusters, in [0, 1].

    1.0 means perfectly balanced clusters; 0.0 means at least one of the ``k`` clusters is empty.
    """
    sizes = cluster_sizes(labels, k)
    largest = sizes.max()
    if largest == 0:
        return 0.0
    return float(sizes.min()) / float(largest)
