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


SPREAD_MAX_BYTES = 1 << 30  # restarts_over_devices=auto: largest whole copy of the features per device


def kmeans_options(kmeans_cfg, features, n_init: int) -> dict:
    """The `spherical_kmeans` keywords the `kmeans.*` config sets besides K, for `n_init` restarts.

    `restart_mesh` follows `kmeans.restarts_over_devices` and the mesh `features` are sharded on:
    spreading restarts removes every per-iteration collective and gives the one-device result, but
    costs a whole copy of the features per device and idles devices when their count does not divide
    n_init, hence the auto rule.
    """
    mesh = getattr(features.sharding, "mesh", None)
    mode = kmeans_cfg.restarts_over_devices
    if mesh is None or mesh.size == 1 or mode == "never":
        mesh = None
    elif mode == "auto" and (n_init % mesh.size or features.size * features.dtype.itemsize > SPREAD_MAX_BYTES):
        mesh = None
    return dict(n_init=n_init, max_iter=kmeans_cfg.max_iter, tol=kmeans_cfg.tol, chunk_size=kmeans_cfg.chunk_size,
                n_local_trials=kmeans_cfg.n_local_trials or None, restart_mesh=mesh)


def kmeans_cluster(cfg) -> Callable:
    """E-step of ProPos and its kin: spherical k-means with cluster.num_clusters centres and the solver
    options of `kmeans.*`; labels -> extra.pseudo_labels, centres -> extra.centroids."""

    def cluster(state, features, key):
        result = kmeans.spherical_kmeans(key, features, cfg.cluster.num_clusters,
                                         **kmeans_options(cfg.kmeans, features, cfg.kmeans.n_init))
        extra = {**state.extra, "pseudo_labels": result.labels, "centroids": result.centers}
        return state.replace(extra=extra), result.labels, {"kmeans_inertia": float(result.inertia)}

    return cluster
