"""The contract between a method and the rest of jaxclust, and the pieces several methods share.

A method is one module of this package (see `jaxclust/methods/__init__.py` for the module's side of
the contract); `build` returns the `Method` record below, and the training loop, the tools and the
report use nothing else of it.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxclust import kmeans


def backbone_variables(state, network: str = "target") -> dict:
    """{"params", "batch_stats"} of the backbone of the target (EMA) or online network, for a state
    whose networks keep the backbone under "backbone" (inside "net" where there are several networks):
    the features a report or a linear probe reads before the method's heads. ValueError otherwise."""
    if network == "target" and isinstance(state.target_params, dict) and "backbone" in state.target_params:
        return {"params": state.target_params["backbone"], "batch_stats": state.target_batch_stats["backbone"]}
    params, stats = state.params, state.batch_stats
    if isinstance(params, dict) and "net" in params:
        params, stats = params["net"], stats["net"] if "net" in stats else stats
    if not isinstance(params, dict) or "backbone" not in params:
        raise ValueError("this method's state has no 'backbone' subtree; use report.features=embed.")
    return {"params": params["backbone"], "batch_stats": stats.get("backbone", {})}


class Method(NamedTuple):
    """The pure functions the training loop needs from a method; it knows nothing else about it.

    init(key, sample_images) -> TrainState
    train_step(state, view1, view2, indices, key) -> (state, metrics dict of scalars incl. "loss", "lr")
    embed(state, images) -> (B, D) features of un-augmented images, the ones `cluster` groups
    cluster(state, features, key) -> (state, labels (N,), info dict): the E-step over the whole data
      set; it stores in the state what the method trains on, and `labels` are the cluster
      assignments scored against the ground truth.
    pseudo_labels(state) -> (N,) int labels the next epochs train with (cluster-balanced resampling
      draws by them, `train.resample`); None: the method keeps none.
    centroids(state) -> (K, D) centres in `embed`'s space; a held-out image belongs to the nearest
      (`eval.split`); None: the method has none.
    backbone(state, network) -> {"params", "batch_stats"} of the backbone of the "target" or "online"
      network (the target falls back to the online one where there is none): what a report's
      backbone features and a linear probe read.
    assign(state, features) -> (labels (B,), scores (B,)): the cluster of new images from their
      `embed` features, in the numbering of `cluster`'s labels (for the training images, the
      labels of the last E-step), with the method's confidence (cosine to the centroid, a head's
      probability); None: the method cannot assign new images.
    """

    name: str
    init: Callable
    train_step: Callable
    embed: Callable
    cluster: Callable
    pseudo_labels: Callable | None = None
    centroids: Callable | None = None
    backbone: Callable = backbone_variables
    assign: Callable | None = None


class Pair(NamedTuple):
    """What a composed loss term sees of one forward pair (one view through the online network, the
    other through the target) of a train step: see `LossTerm`."""

    state: Any  # the TrainState before the step
    online: jax.Array  # raw (un-normalised) online projector output / MoCo query, (rows, D)
    prediction: jax.Array | None  # predictor output after the PSA noise (BYOL family), else None
    target: jax.Array  # the l2-normalised target features the pair aligns to (rows, D)
    rows: jax.Array  # data-set index of each row
    key: jax.Array  # this pair's random key
    epoch: jax.Array  # 0-based epoch of the step


class LossTerm(NamedTuple):
    """An extra term a method adds to the loss of the method it builds on (PCL's ProtoNCE on MoCo or
    BYOL, HaDis' HSD on ProPos).

    loss(pair: Pair) -> (loss, metrics dict): the term of one forward pair, weighted; the base method
      reduces it over the pairs as it reduces its own loss (ProPos: mean, MoCo: sum) and adds it.
    state() -> dict merged into `state.extra` at init (what the term reads), or None.
    """

    loss: Callable
    state: Callable | None = None


def extra_state(terms) -> dict:
    """The `state.extra` entries the loss terms keep."""
    return {k: v for term in terms if term.state is not None for k, v in term.state().items()}


def apply_train(module, params, stats, x):
    """A flax module in train mode: (output, its updated BatchNorm statistics; {} when it has none)."""
    out, updates = module.apply({"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
    return out, updates.get("batch_stats", {})


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


def kmeans_method(cfg, name: str, init, train_step, embed, cluster=None) -> Method:
    """A method whose E-step is spherical k-means on `embed`'s features (by default `kmeans_cluster`),
    keeping its labels and centres in `state.extra` ("pseudo_labels", "centroids")."""
    return Method(name, init, train_step, embed, cluster or kmeans_cluster(cfg),
                  pseudo_labels=lambda state: state.extra["pseudo_labels"],
                  centroids=lambda state: state.extra["centroids"],
                  assign=lambda state, features: nearest_centroid(features, state.extra["centroids"]))


def nearest_centroid(features, centroids):
    """(labels, cosine similarity) of each row's nearest centroid: the k-means E-step's own rule."""
    labels, distance = kmeans.assign(features, centroids)
    return labels, 1.0 - distance


def most_probable(probabilities):
    """(argmax, max) of each row of a head's class probabilities."""
    return jnp.argmax(probabilities, axis=1).astype(jnp.int32), jnp.max(probabilities, axis=1)


def kmeans_state(num_examples: int, num_clusters: int, dim: int) -> dict:
    """The `state.extra` entries of `kmeans_method`, before the first E-step."""
    return {"pseudo_labels": jnp.zeros((num_examples,), jnp.int32),
            "centroids": jnp.zeros((num_clusters, dim), jnp.float32)}
