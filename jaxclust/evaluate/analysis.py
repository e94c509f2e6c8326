"""Numpy analysis of features and cluster labels for the report: kNN accuracy, matched confusion.

Every function takes host arrays: features (N, D) float, labels (N,) int. Rows whose true label is
-1 (unlabelled) are left out of anything scored against the ground truth, as in `jaxclust.metrics`.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

# official ProPos TrainTask.test: knn_monitor(knn_k=20, knn_t=0.07) on l2-normalised features
KNN_K = 20
KNN_T = 0.07


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@functools.partial(jax.jit, static_argnames=("k", "exclude_self"))
def _neighbours(query, bank, start, k: int, exclude_self: bool):
    """Top-k cosine similarities (q, k) and bank indices of l2-normalised rows, on the device."""
    sim = jnp.matmul(query, bank.T, precision=jax.lax.Precision.HIGHEST)
    if exclude_self:  # query row i is bank row start + i
        rows = jnp.arange(query.shape[0])[:, None]
        sim = jnp.where(jnp.arange(bank.shape[0])[None, :] == start + rows, -jnp.inf, sim)
    return jax.lax.top_k(sim, k)


def knn_predict(
    query: np.ndarray,
    bank: np.ndarray,
    bank_labels: np.ndarray,
    num_classes: int,
    k: int = KNN_K,
    temperature: float = KNN_T,
    query_offset: int | None = None,
    chunk: int = 1024,
) -> np.ndarray:
    """Weighted kNN vote (InstDisc; official ProPos `knn_predict`): (Q,) predicted classes.

    Cosine similarity of l2-normalised rows (on the device, in chunks of queries); each of the k
    nearest bank rows votes for its class with weight exp(sim / temperature). `query_offset=j`
    says that the queries are bank rows j, j+1, ...: each is left out of its own neighbours, which
    gives a leave-one-out accuracy on a single bank.
    """
    query, bank = _l2_normalize(np.asarray(query, np.float32)), _l2_normalize(np.asarray(bank, np.float32))
    exclude_self = query_offset is not None
    k = min(k, len(bank) - (1 if exclude_self else 0))
    if k < 1:
        raise ValueError("kNN needs at least two labelled points.")
    bank_dev, preds = jnp.asarray(bank), []
    for start in range(0, len(query), chunk):
        q = query[start : start + chunk]
        pad = chunk - len(q) if len(query) > chunk else 0  # one compiled shape for every chunk
        sim, idx = _neighbours(jnp.asarray(np.pad(q, ((0, pad), (0, 0)))), bank_dev,
                               (query_offset or 0) + start, k, exclude_self)
        sim, idx = np.asarray(sim)[: len(q)], np.asarray(idx)[: len(q)]
        votes = np.zeros((len(q), num_classes))
        np.add.at(votes, (np.arange(len(q))[:, None], bank_labels[idx]), np.exp(sim / temperature))
        preds.append(votes.argmax(axis=1))
    return np.concatenate(preds)


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = KNN_K, temperature: float = KNN_T,
                 max_queries: int = 0, seed: int = 0) -> float:
    """Leave-one-out weighted-kNN accuracy of `features` against `labels` on one data set.

    The official monitor (k=20, t=0.07) predicts a test split from a train bank; here the bank is
    the whole data set and every point is predicted from all the others. `max_queries > 0`
    estimates it from that many random points (the bank stays whole).
    """
    keep = labels != -1
    features, labels = features[keep], labels[keep]
    _, y = np.unique(labels, return_inverse=True)
    n = len(y)
    if max_queries and n > max_queries:
        order = np.random.default_rng(seed).permutation(n)  # move the queries to the front
        features, y = features[order], y[order]
        n_queries = max_queries
    else:
        n_queries = n
    pred = knn_predict(features[:n_queries], features, y, int(y.max()) + 1, k, temperature, query_offset=0)
    return float(np.mean(pred == y[:n_queries]))


def matched_confusion(labels_true: np.ndarray, labels_pred: np.ndarray, num_clusters: int, num_classes: int):
    """The confusion matrix with clusters reordered by the Hungarian matching to classes.

    Returns (matrix (C, K) counts, cluster order (K,), matched class of each cluster (K,), -1 when
    unmatched). Column j of the matrix is cluster `order[j]`; the first min(C, K) columns are the
    matched clusters in class order, so correct assignments lie on the diagonal; unmatched clusters
    (K > C) come last, largest first.
    """
    keep = labels_true != -1
    t, p = labels_true[keep], labels_pred[keep]
    table = np.zeros((num_classes, num_clusters), np.int64)
    np.add.at(table, (t, p), 1)
    rows, cols = scipy.optimize.linear_sum_assignment(table, maximize=True)
    match = np.full(num_clusters, -1)
    match[cols] = rows
    matched = [int(c) for _, c in sorted(zip(rows, cols))]
    rest = sorted(set(range(num_clusters)) - set(matched), key=lambda c: -table[:, c].sum())
    order = np.array(matched + rest, dtype=int)
    return table[:, order], order, match


def cluster_composition(labels_true: np.ndarray, labels_pred: np.ndarray, num_clusters: int, class_names) -> list[dict]:
    """Per cluster: size, majority class and its share (purity), over the labelled points."""
    out = []
    for c in range(num_clusters):
        members = labels_true[(labels_pred == c) & (labels_true != -1)]
        entry = {"cluster": c, "size": int(np.sum(labels_pred == c))}
        if members.size:
            counts = np.bincount(members, minlength=len(class_names))
            top = int(counts.argmax())
            entry.update(majority_class=str(class_names[top]), purity=round(float(counts[top] / members.size), 4))
        out.append(entry)
    return out


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): each class split at random in the given proportion."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}.")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels[labels != -1]):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = max(1, int(round(test_fraction * len(idx)))) if len(idx) > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
