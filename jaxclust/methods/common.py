"""What every method file builds: the `Method` record, and the k-means E-step most of them use."""
from __future__ import annotations

from typing import Callable, NamedTuple

from jaxclust import kmeans


class Method(NamedTuple):
    """The pure functions the training loop needs from a method; it knows nothing else about it.

    init(key, sample_images) -> TrainState
    train_step(state, view1, view2, indices, key) -> (state, metrics dict of scalars incl. "loss", "lr")
    embed(state, images) -> (B, D) features of un-augmented images, the ones `cluster` groups
    cluster(state, features, key) -> (state, labels (N,), info dict): the E-step over the whole
      data set; it stores what the method needs (pseudo-labels, centroids) in `state.extra`, and
      `labels` are the cluster assignments scored against the ground truth.
    """

    name: str
    init: Callable
    train_step: Callable
    embed: Callable
    cluster: Callable


def kmeans_cluster(kmeans_cfg) -> Callable:
    """E-step of ProPos and its kin: spherical k-means; labels -> extra.pseudo_labels, centres -> extra.centroids."""

    def cluster(state, features, key):
        result = kmeans.spherical_kmeans(
            key, features, kmeans_cfg.num_clusters, n_init=kmeans_cfg.n_init,
            max_iter=kmeans_cfg.max_iter, tol=kmeans_cfg.tol, chunk_size=kmeans_cfg.chunk_size,
        )
        extra = {**state.extra, "pseudo_labels": result.labels, "centroids": result.centers}
        return state.replace(extra=extra), result.labels, {"kmeans_inertia": float(result.inertia)}

    return cluster
