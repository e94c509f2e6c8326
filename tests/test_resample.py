"""Cluster-balanced resampling draws every cluster equally often (weights 1 / cluster size)."""
import jax
import numpy as np

from jaxclust.data.feeder import epoch_batches


def test_plain_epoch_is_a_permutation():
    batches = epoch_batches(jax.random.key(0), 3, 103, 10)
    assert batches.shape == (10, 10) and len(np.unique(batches)) == 100


def test_resampling_frequencies_follow_inverse_cluster_size():
    sizes = np.array([50, 150, 300, 500])
    labels = np.repeat(np.arange(4), sizes)
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]
    draws = np.concatenate([epoch_batches(jax.random.key(1), e, len(labels), 100, labels).ravel() for e in range(20)])
    per_cluster = np.bincount(labels[draws], minlength=4) / len(draws)
    # each cluster has total weight 1/4; 20,000 draws give a standard error of about 0.003
    np.testing.assert_allclose(per_cluster, 0.25, atol=0.015)
    # within a cluster every example is equally likely: the smallest cluster's examples all appear
    small = np.flatnonzero(labels == 0)
    counts = np.bincount(draws, minlength=len(labels))[small]
    assert counts.min() > 0 and abs(counts.mean() - len(draws) / 4 / 50) < 10
    # the same epoch and key give the same order (resume reproduces it)
    np.testing.assert_array_equal(epoch_batches(jax.random.key(1), 7, len(labels), 100, labels),
                                  epoch_batches(jax.random.key(1), 7, len(labels), 100, labels))
