"""Every loss of jaxclust, as pure functions of arrays.

Each function is written close to its paper's equation (numbered in the comment) and, where the
official code differs, to what the official code computes; the difference is named.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

# torch.nn.functional.normalize's eps: the norm is clamped from below by it.
NORMALIZE_EPS = 1e-12
# torch.nn.functional.cosine_similarity's eps.
COSINE_EPS = 1e-8
# Official ProPos: logit given to every column of a cluster absent from the batch.
ABSENT_CLUSTER_LOGIT = -10.0


def l2_normalize(x: jax.Array, axis: int = -1, eps: float = NORMALIZE_EPS) -> jax.Array:
    """x / max(||x||, eps), as torch's F.normalize, with a finite gradient at x = 0.

    Clamping the squared norm (not the norm) keeps sqrt away from 0, so a zero row (the prototype of
    an absent cluster) gets a zero gradient instead of NaN.
    """
    sq = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(sq, eps * eps))


def cosine_similarity(a: jax.Array, b: jax.Array, eps: float = COSINE_EPS) -> jax.Array:
    """Row-wise cosine, as torch's F.cosine_similarity(a, b, dim=-1)."""
    dot = jnp.sum(a * b, axis=-1)
    sq = jnp.sum(jnp.square(a), axis=-1) * jnp.sum(jnp.square(b), axis=-1)
    return dot * jax.lax.rsqrt(jnp.maximum(sq, eps * eps))


def byol_alignment_loss(prediction: jax.Array, target: jax.Array, form: str = "v1") -> jax.Array:
    """BYOL / PSA alignment: ||g(f(x)+sigma*eps) - f'(x+)||^2 of normalised vectors (ProPos Eq. 10).

    form "v1" is official `forward_loss`: -2 mean cos; "v2" is official `forward_v2`: mean(2 - 2 cos).
    They differ by the constant 2 and have identical gradients.
    """
    cos = cosine_similarity(prediction, target)
    if form == "v1":
        return -2.0 * jnp.mean(cos)
    if form == "v2":
        return jnp.mean(2.0 - 2.0 * cos)
    raise ValueError(f"byol_alignment_loss form must be 'v1' or 'v2', got {form!r}.")


def cluster_prototypes(features: jax.Array, labels: jax.Array, num_clusters: int) -> jax.Array:
    """l2-normalised mean of the features of each cluster (ProPos Eq. 6; official `compute_centers`).

    The row of a cluster with no member is exactly zero.
    """
    one_hot = jax.nn.one_hot(labels, num_clusters, dtype=features.dtype)  # (B, K)
    counts = jnp.sum(one_hot, axis=0)[:, None]
    means = (one_hot.T @ features) / jnp.maximum(counts, NORMALIZE_EPS)  # official: L1-normalised weights
    return l2_normalize(means)


def cluster_presence(labels: jax.Array, num_clusters: int) -> jax.Array:
    """(K,) bool: which cluster ids occur in `labels`."""
    return jnp.zeros((num_clusters,), bool).at[labels].set(True)


def prototype_scattering_loss(
    online: jax.Array,
    target: jax.Array,
    labels: jax.Array,
    num_clusters: int,
    temperature: float = 0.5,
    terms: str = "both",
    present: jax.Array | None = None,
) -> jax.Array:
    """Prototype scattering loss, PSL (ProPos Eq. 4, as the official `compute_cluster_loss`).

    online: (B, D) raw (un-normalised) online projector outputs; they are l2-normalised here.
    target: (B, D) l2-normalised target projector outputs of the other view (no gradient wanted).
    labels: (B,) hard pseudo-labels in [0, K).
    present: optional (K,) mask of clusters counted as present; by default the ones in `labels`
      (the official code decides presence from its per-GPU batch, see `cluster_presence`).

    Row k is InfoNCE over prototypes: positive <mu_k, mu'_k>/tau (online vs target), negatives
    <mu_k, mu_j>/tau (online vs online). Columns of absent clusters get the constant logit -10,
    rows of absent clusters are dropped and the sum is divided by the number of present clusters.

    terms: "both" (Eq. 4), or one half of its split (Eq. 5): "alignment" = -<mu_k, mu'_k>/tau,
    "uniformity" = log sum_{j != k} exp(<mu_k, mu_j>/tau).
    """
    if terms not in ("both", "alignment", "uniformity"):
        raise ValueError(f"PSL terms must be 'both', 'alignment' or 'uniformity', got {terms!r}.")
    k = num_clusters
    mu = cluster_prototypes(l2_normalize(online), labels, k)
    mu_target = cluster_prototypes(target, labels, k)
    if present is None:
        present = cluster_presence(labels, k)
    positive = jnp.sum(mu * mu_target, axis=-1) / temperature
    logits = (mu @ mu.T) / temperature
    diagonal = jnp.eye(k, dtype=bool)
    logits = jnp.where(diagonal, positive[:, None], logits)
    logits = jnp.where(present[None, :], logits, ABSENT_CLUSTER_LOGIT)
    positive = jnp.diagonal(logits)
    if terms == "both":
        rows = jax.nn.logsumexp(logits, axis=1) - positive
    elif terms == "alignment":
        rows = -positive
    else:
        rows = jax.nn.logsumexp(jnp.where(diagonal, -jnp.inf, logits), axis=1)
    rows = jnp.where(present, rows, 0.0)
    return jnp.sum(rows) / jnp.maximum(jnp.sum(present), 1)
