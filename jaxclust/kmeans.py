"""Spherical (cosine) k-means on device, faithful to the official ProPos E-step.

ProPos clusters its l2-normalised target features with ``torch_clustering.PyTorchKMeans``
(``metric='cosine'``, ``init='k-means++'``, ``n_init=10``, ``max_iter=300``, ``tol=1e-4``); see
``shared/reference/propos_official.md`` §2.5 and ``shared/fixtures/propos_official/README.md`` §3.
This module reproduces that algorithm in JAX:

* distance ``d(x, c) = 1 - <x/|x|, c/|c|>`` with torch ``F.normalize`` semantics (eps 1e-12, so a
  zero centre is at distance exactly 1 from every point); inertia = sum of per-point minimum distances;
* centres are **plain means** of the assigned rows (``segment_sum / (count + 1e-6)``), not
  re-normalised; an empty cluster gets the zero vector and is never re-seeded;
* loop: step 0 assigns to the init centres (not a candidate for "best"); each Lloyd iteration
  recomputes centres, reassigns, keeps the iteration if its inertia is strictly lower than the best
  so far, then stops if the labels did not change ("strict" convergence, checked first) or if
  ``sum_k (1 - cos(old_k, new_k)) <= tol * mean(var(X, ddof=1))``; at most ``max_iter`` iterations;
* k-means++ seeding with the *plain* cosine distance as potential (D-sampling, not D^2) and
  ``2 + int(log K)`` greedy candidates per centre;
* ``n_init`` restarts; the result is the minimum-inertia solution over every iteration of every
  restart.

Random numbers come from ``jax.random`` (bit parity with torch's generator is impossible), so only
``kmeans_from_init`` is comparable bit-for-bit-in-labels with the official code.

Memory: the (N, K) distance matrix is never built at once. Rows are processed in chunks of at most
``chunk_size`` rows with ``lax.map``. The chunk layout is *strided* (chunk j holds rows
``j, j + n_chunks, j + 2 n_chunks, ...``), so if ``x`` is sharded on its row axis over a ('data',)
mesh, every chunk stays spread over all devices instead of living on one of them.

Shapes: ``x`` (N, D) float; centres (K, D); labels (N,) int32; per-point distances (N,).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

__all__ = [
    "KMeansResult",
    "assign",
    "update_centers",
    "tolerance_value",
    "kmeans_from_init",
    "kmeans_plusplus",
    "spherical_kmeans",
]

DEFAULT_CHUNK_SIZE = 16384  # rows per block; (16384, K) distances at a time. Official `predict` uses 4096.
_NORM_EPS = 1e-12  # torch F.normalize default
_COUNT_EPS = 1e-6  # official: counts = zeros(K) + 1e-6, so an empty centre is 0 / 1e-6 = 0
# The parity fixtures need full float32 matmuls; reduced-precision modes (TF32/bf16 passes on
# GPU/TPU) flip assignments whose best/second-best gap is ~3e-5.
_PRECISION = lax.Precision.HIGHEST


class KMeansResult(NamedTuple):
    """Output of k-means.

    Attributes:
      labels: (N,) int32 cluster id of every point, of the returned (best) solution.
      centers: (K, D) plain-mean centres of the returned solution (not unit norm; empty -> 0).
      inertia: () sum over points of the cosine distance to the assigned centre, returned solution.
      n_iter: () int32 Lloyd iterations performed by the run that produced the solution.
      best_iter: () int32 0-based Lloyd iteration at which the returned solution was found.
      converged: () bool, that run stopped by a convergence rule (not by max_iter).
      converged_strict: () bool, that run stopped because the labels did not change.
    """

    labels: jax.Array
    centers: jax.Array
    inertia: jax.Array
    n_iter: jax.Array
    best_iter: jax.Array
    converged: jax.Array
    converged_strict: jax.Array


# ----------------------------------------------------------------------------------------------
# Input validation (outside jit; shapes are static even for tracers).


def _check_x(x) -> tuple[int, int]:
    shape = jnp.shape(x)
    if len(shape) != 2:
        raise ValueError(f"x must be a 2-D (N, D) feature array, got shape {tuple(shape)}; reshape it to (N, D).")
    n, d = shape
    if n < 1 or d < 1:
        raise ValueError(f"x must have at least one row and one column, got shape {tuple(shape)}.")
    return n, d


def _check_k(k, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        try:
            k = int(k)  # numpy ints
        except TypeError:
            raise TypeError(f"k must be a Python int, got {type(k).__name__}.") from None
    if k < 1 or k > n:
        raise ValueError(f"k must satisfy 1 <= k <= N = {n}, got k = {k}; choose fewer clusters or give more points.")
    return k


def _check_positive(name: str, value) -> int:
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}.")
    return value


def _check_tol(tol) -> None:
    if not isinstance(tol, jax.Array) and not (float(tol) >= 0.0):
        raise ValueError(f"tol must be a non-negative number, got {tol}.")


def _float_dtype(x):
    # Never accumulate centre sums in bf16/f16: compute in at least float32.
    return jnp.promote_types(jnp.result_type(x), jnp.float32)


# ----------------------------------------------------------------------------------------------
# Chunked row layout.


def _chunk_geometry(n: int, chunk_size: int) -> tuple[int, int]:
    """(n_chunks, chunk) with chunk <= chunk_size and as little padding as possible (< n_chunks rows)."""
    n_chunks = -(-n // chunk_size)
    chunk = -(-n // n_chunks)
    return n_chunks, chunk


def _to_chunks(a, n_chunks: int, chunk: int):
    """(N, ...) -> (n_chunks, chunk, ...), strided: row r goes to chunk r % n_chunks, slot r // n_chunks.

    Rows are zero-padded up to n_chunks * chunk; a contiguous row sharding of `a` maps onto the
    `chunk` axis, so each lax.map step still spans all devices.
    """
    n = a.shape[0]
    pad = n_chunks * chunk - n
    if pad:
        a = jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
    a = a.reshape((chunk, n_chunks) + a.shape[1:])
    return jnp.swapaxes(a, 0, 1)


def _from_chunks(a, n: int):
    """Inverse of `_to_chunks`: (n_chunks, chunk, ...) -> (N, ...)."""
    a = jnp.swapaxes(a, 0, 1)
    a = a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])
    return a[:n]


def _valid_mask(n: int, n_chunks: int, chunk: int):
    return _to_chunks(jnp.ones((n,), bool), n_chunks, chunk)


def _normalize(v):
    # torch F.normalize(p=2, eps=1e-12): v / max(|v|, eps)
    norm = jnp.sqrt(jnp.sum(v * v, axis=-1, keepdims=True))
    return v / jnp.maximum(norm, _NORM_EPS)


def _cosine_distance(xb, cn):
    """(B, D) raw rows vs (M, D) already-normalised centres -> (B, M) distances 1 - cos."""
    # official pairwise_cosine: 1 - normalize(x1) @ normalize(x2).T
    return 1.0 - jnp.matmul(_normalize(xb), cn.T, precision=_PRECISION)


# ----------------------------------------------------------------------------------------------
# Building blocks on the chunked layout (used inside the jitted loops).


def _argmin_min(dist):
    """(argmin (int32), min) over the last axis; equal to jnp.argmin / jnp.min, NaN and ties included.

    Two plain reductions (the min, then the smallest index holding it) instead of XLA's variadic
    (value, index) argmin reduce: on CPU that one is not vectorised and cost more than the
    (chunk, D) x (D, K) product itself (K = 200: assignment 2x faster; bench/kmeans.py).
    """
    md = jnp.min(dist, axis=-1)  # NaN if the row has a NaN
    iota = lax.broadcasted_iota(jnp.int32, dist.shape, dist.ndim - 1)
    hit = (dist == md[..., None]) | jnp.isnan(dist)  # argmin returns the first NaN of a row with one
    return jnp.min(jnp.where(hit, iota, dist.shape[-1]), axis=-1), md


def _assign_chunks(xc, valid, centers):
    """Assignment on the chunked layout.

    xc: (n_chunks, chunk, D); valid: (n_chunks, chunk) bool; centers: (K, D).
    Returns labels (n_chunks, chunk) int32 with padding rows = K (dropped by segment_sum), and
    min distances (n_chunks, chunk) with padding rows = 0 (no inertia contribution).
    """
    k = centers.shape[0]
    cn = _normalize(centers)

    def one_chunk(args):
        xb, vb = args
        dist = _cosine_distance(xb, cn)  # (chunk, K): the only N x K piece alive at a time
        lab, md = _argmin_min(dist)  # first index on ties, like torch.min
        return jnp.where(vb, lab, k), jnp.where(vb, md, 0.0)

    return lax.map(one_chunk, (xc, valid))


def _centers_from_labels(x_rows, labels_rows, k: int):
    """x_rows (M, D), labels_rows (M,) with out-of-range ids ignored -> (K, D) plain means."""
    # official: state.index_add_(0, labels, X); counts = 1e-6 + bincount; state / counts
    sums = jax.ops.segment_sum(x_rows, labels_rows, num_segments=k)
    counts = jax.ops.segment_sum(jnp.ones(labels_rows.shape, x_rows.dtype), labels_rows, num_segments=k)
    return sums / (counts + _COUNT_EPS)[:, None]


def _lloyd(xc, valid, init, max_iter: int, tol_value, early_stop: bool = True):
    """Official Lloyd loop from `init` on the chunked layout; returns (labels_c, centers, inertia, ...).

    early_stop=False runs exactly `max_iter` iterations (the convergence flags then only record
    whether a rule held at the last iteration); benchmarks use it to compare equal work.
    """
    k = init.shape[0]
    d = xc.shape[-1]

    # Step 0: assign to the init centres. Not a candidate for "best" (official min_inertia starts
    # at +inf and is only compared after an update step).
    init = init.astype(xc.dtype)
    labels0, _ = _assign_chunks(xc, valid, init)

    def cond(s):
        if not early_stop:
            return s["it"] < max_iter
        return (s["it"] < max_iter) & ~s["done"]

    def body(s):
        old_centers = s["centers"]
        # The (N, D) row view is taken inside the loop (a free bitcast): captured outside, next to
        # `xc`, it would be a second loop operand and XLA would give it its own copy of x.
        centers = _centers_from_labels(xc.reshape(-1, d), s["labels"].reshape(-1), k)
        labels, md = _assign_chunks(xc, valid, centers)
        inertia = jnp.sum(md)
        # official torch_clustering: best over every iteration (strict <, so the earliest wins ties)
        better = inertia < s["best_inertia"]
        strict = jnp.all(labels == s["labels"])
        # official center_shift: per-cluster 1 - cos(old, new); an empty cluster contributes 1 - <0,0> = 1
        shift = jnp.sum(1.0 - jnp.sum(_normalize(old_centers) * _normalize(centers), axis=-1))
        return dict(
            it=s["it"] + 1,
            centers=centers,
            labels=labels,
            best_centers=jnp.where(better, centers, s["best_centers"]),
            best_labels=jnp.where(better, labels, s["best_labels"]),
            best_inertia=jnp.where(better, inertia, s["best_inertia"]),
            best_iter=jnp.where(better, s["it"], s["best_iter"]),
            # strict convergence is checked first, then the centre-shift tolerance
            done=strict | (shift <= tol_value),
            strict=strict,
        )

    state = dict(
        it=jnp.int32(0),
        centers=init,
        labels=labels0,
        best_centers=init,
        best_labels=labels0,
        best_inertia=jnp.array(jnp.inf, xc.dtype),
        best_iter=jnp.int32(-1),
        done=jnp.array(False),
        strict=jnp.array(False),
    )
    s = lax.while_loop(cond, body, state)
    return s["best_labels"], s["best_centers"], s["best_inertia"], s["it"], s["best_iter"], s["done"], s["strict"]


_SAMPLE_BLOCK = 4096


def _sample_proportional(key, weights, num: int, block: int = _SAMPLE_BLOCK):
    """`num` iid row indices with P(i) proportional to weights[i] >= 0 (weights: (N,)).

    The official code uses searchsorted into a *float64* cumsum (sklearn's stable_cumsum). A float32
    cumsum over ~1e6 rows would quantise every interval to ulp(total) ~ 0.03, so sample in two
    stages instead: a block with probability proportional to its total, then a row inside that block
    with a fresh uniform; each cumsum then spans at most `block` rows (or N / block block totals).
    """
    n = weights.shape[0]
    block = min(block, n)
    n_blocks = -(-n // block)
    w = jnp.pad(weights, (0, n_blocks * block - n)).reshape(n_blocks, block)
    key_block, key_row = jax.random.split(key)
    cum_blocks = jnp.cumsum(jnp.sum(w, axis=1))
    u = jax.random.uniform(key_block, (num,), w.dtype) * cum_blocks[-1]
    b = jnp.minimum(jnp.searchsorted(cum_blocks, u, side="left"), n_blocks - 1)
    cum_rows = jnp.cumsum(w[b], axis=1)  # (num, block)
    v = jax.random.uniform(key_row, (num,), w.dtype) * cum_rows[:, -1]
    j = jax.vmap(lambda c, x: jnp.searchsorted(c, x, side="left"))(cum_rows, v)
    return jnp.minimum(b * block + jnp.minimum(j, block - 1), n - 1)


def _kmeans_plusplus_chunks(key, xc, valid, n: int, k: int):
    """Official k-means++ port (sklearn `_kmeans_plusplus` with the plain cosine distance as potential)."""
    n_chunks, chunk, d = xc.shape
    x_rows = xc.reshape(-1, d)
    n_trials = 2 + int(math.log(k))  # official n_local_trials = 2 + int(np.log(n_clusters))

    def potentials_to(cands):
        # (T, D) raw candidate rows -> (n_chunks, chunk, T) distances, clipped at 0 (1 - cos can be
        # -1e-7 for a point equal to a centre) and 0 on padding rows (never sampled).
        cn = _normalize(cands)

        def one_chunk(args):
            xb, vb = args
            return jnp.where(vb[:, None], jnp.maximum(_cosine_distance(xb, cn), 0.0), 0.0)

        return lax.map(one_chunk, (xc, valid))

    key_first, key_rest = jax.random.split(key)
    # First centre: a uniform random row (official torch.randint(n_samples)).
    r = jax.random.randint(key_first, (), 0, n)
    first = (r % n_chunks) * chunk + r // n_chunks  # row r -> flat index in the strided layout
    centers = jnp.zeros((k, d), xc.dtype).at[0].set(x_rows[first])
    closest = potentials_to(x_rows[first][None])[..., 0]  # potential = distance, NOT squared

    def add_center(i, carry):
        centers, closest = carry
        # Candidates drawn with probability proportional to the potential, in original row order
        # (so the draw does not depend on chunk_size).
        rows = _sample_proportional(jax.random.fold_in(key_rest, i), _from_chunks(closest, n), n_trials)
        idx = (rows % n_chunks) * chunk + rows // n_chunks  # row -> flat index in the strided layout
        cands = x_rows[idx]
        # Greedy choice: the candidate that minimises the new total potential.
        new_pot = jnp.minimum(closest[..., None], potentials_to(cands))  # (n_chunks, chunk, T)
        best = jnp.argmin(jnp.sum(new_pot, axis=(0, 1)))
        return centers.at[i].set(cands[best]), new_pot[..., best]

    centers, _ = lax.fori_loop(1, k, add_center, (centers, closest))
    return centers


# ----------------------------------------------------------------------------------------------
# Jitted implementations (static: k, n_init, max_iter, chunk_size).


@functools.partial(jax.jit, static_argnames=("chunk_size",))
def _assign_jit(x, centers, chunk_size: int):
    n = x.shape[0]
    n_chunks, chunk = _chunk_geometry(n, chunk_size)
    x = x.astype(_float_dtype(x))
    labels_c, md_c = _assign_chunks(_to_chunks(x, n_chunks, chunk), _valid_mask(n, n_chunks, chunk), centers.astype(x.dtype))
    return _from_chunks(labels_c, n), _from_chunks(md_c, n)


@functools.partial(jax.jit, static_argnames=("k",))
def _update_centers_jit(x, labels, k: int):
    x = x.astype(_float_dtype(x))
    return _centers_from_labels(x, labels.astype(jnp.int32), k)


@jax.jit
def _tolerance_value_jit(x, tol):
    x = x.astype(_float_dtype(x))
    # official: tol = mean over features of the unbiased variance of X, times tol
    return jnp.mean(jnp.var(x, axis=0, ddof=1)) * jnp.asarray(tol, x.dtype)


@functools.partial(jax.jit, static_argnames=("max_iter", "chunk_size", "early_stop"))
def _kmeans_from_init_jit(x, init, tol, max_iter: int, chunk_size: int, early_stop: bool = True):
    n = x.shape[0]
    x = x.astype(_float_dtype(x))
    n_chunks, chunk = _chunk_geometry(n, chunk_size)
    xc, valid = _to_chunks(x, n_chunks, chunk), _valid_mask(n, n_chunks, chunk)
    tol_value = _tolerance_value_jit(x, tol)
    labels_c, centers, inertia, n_iter, best_iter, done, strict = _lloyd(xc, valid, init.astype(x.dtype), max_iter, tol_value, early_stop)
    return KMeansResult(_from_chunks(labels_c, n), centers, inertia, n_iter, best_iter, done, strict)


@functools.partial(jax.jit, static_argnames=("k", "chunk_size"))
def _kmeans_plusplus_jit(key, x, k: int, chunk_size: int):
    n = x.shape[0]
    x = x.astype(_float_dtype(x))
    n_chunks, chunk = _chunk_geometry(n, chunk_size)
    return _kmeans_plusplus_chunks(key, _to_chunks(x, n_chunks, chunk), _valid_mask(n, n_chunks, chunk), n, k)


@functools.partial(jax.jit, static_argnames=("k", "n_init", "max_iter", "chunk_size", "early_stop"))
def _spherical_kmeans_jit(key, x, tol, k: int, n_init: int, max_iter: int, chunk_size: int, early_stop: bool = True):
    n, d = x.shape
    x = x.astype(_float_dtype(x))
    n_chunks, chunk = _chunk_geometry(n, chunk_size)
    # Laid out once, shared by every restart and every iteration.
    xc, valid = _to_chunks(x, n_chunks, chunk), _valid_mask(n, n_chunks, chunk)
    tol_value = _tolerance_value_jit(x, tol)
    keys = jax.random.split(key, n_init)  # distinct key per restart (official seeds random_state + i)

    def restart(best, xs):
        i, key_i = xs
        init = _kmeans_plusplus_chunks(key_i, xc, valid, n, k)
        out = _lloyd(xc, valid, init, max_iter, tol_value, early_stop)
        # official: min inertia over every iteration of every init; strict < keeps the earliest init
        better = (out[2] < best[2]) | (i == 0)
        return jax.tree.map(lambda new, old: jnp.where(better, new, old), out, best), None

    # Restarts run sequentially (scan carrying only the best), so memory does not grow with n_init
    # and no restart waits for the slowest one as under vmap.
    placeholder = (
        jnp.full((n_chunks, chunk), k, jnp.int32),
        jnp.zeros((k, d), x.dtype),
        jnp.array(jnp.inf, x.dtype),
        jnp.int32(0),
        jnp.int32(-1),
        jnp.array(False),
        jnp.array(False),
    )
    best, _ = lax.scan(restart, placeholder, (jnp.arange(n_init), keys))
    labels_c, centers, inertia, n_iter, best_iter, done, strict = best
    return KMeansResult(_from_chunks(labels_c, n), centers, inertia, n_iter, best_iter, done, strict)


# ----------------------------------------------------------------------------------------------
# Public API.


def assign(x, centers, chunk_size: int = DEFAULT_CHUNK_SIZE):
    """Nearest centre under cosine distance.

    Args:
      x: (N, D) points (need not be unit norm).
      centers: (K, D) centres (need not be unit norm; a zero centre is at distance 1 from all).
      chunk_size: rows per block; at most (chunk_size, K) distances exist at once.
    Returns:
      labels (N,) int32 and min_dist (N,) = 1 - cos(x, centers[labels]).
    """
    n, d = _check_x(x)
    if jnp.ndim(centers) != 2 or jnp.shape(centers)[1] != d:
        raise ValueError(f"centers must have shape (K, {d}) to match x, got {tuple(jnp.shape(centers))}.")
    return _assign_jit(x, centers, chunk_size=_check_positive("chunk_size", chunk_size))


def update_centers(x, labels, k: int):
    """Plain per-cluster means: (N, D), (N,) int -> (K, D); an empty cluster gets the zero vector."""
    n, _ = _check_x(x)
    k = _check_k(k, n)
    if jnp.shape(labels) != (n,):
        raise ValueError(f"labels must have shape ({n},) to match x, got {tuple(jnp.shape(labels))}.")
    return _update_centers_jit(x, labels, k=k)


def tolerance_value(x, tol: float = 1e-4):
    """Absolute centre-shift tolerance of the official code: mean_j var(x[:, j], ddof=1) * tol."""
    _check_x(x)
    _check_tol(tol)
    return _tolerance_value_jit(x, tol)


def kmeans_from_init(
    x, init, max_iter: int = 300, tol: float = 1e-4, chunk_size: int = DEFAULT_CHUNK_SIZE, early_stop: bool = True
) -> KMeansResult:
    """Official cosine k-means from explicit centres (the official code then forces n_init = 1).

    Args:
      x: (N, D) features. init: (K, D) initial centres. max_iter: max Lloyd iterations (>= 1).
      tol: relative tolerance (scaled by `tolerance_value`). chunk_size: rows per assignment block.
      early_stop: False runs exactly `max_iter` iterations, ignoring both convergence rules (for
        benchmarks at equal work; not an official option).
    Returns:
      KMeansResult with labels (N,), centers (K, D) and inertia of the best iteration.
    """
    n, d = _check_x(x)
    if jnp.ndim(init) != 2 or jnp.shape(init)[1] != d:
        raise ValueError(f"init must have shape (K, {d}) to match x, got {tuple(jnp.shape(init))}.")
    _check_k(jnp.shape(init)[0], n)
    _check_tol(tol)
    return _kmeans_from_init_jit(
        x, init, tol, max_iter=_check_positive("max_iter", max_iter),
        chunk_size=_check_positive("chunk_size", chunk_size), early_stop=bool(early_stop),
    )


def kmeans_plusplus(key, x, k: int, chunk_size: int = DEFAULT_CHUNK_SIZE):
    """k-means++ seeding of the official port (cosine-distance potential, greedy local trials) -> (K, D) rows of x."""
    n, _ = _check_x(x)
    k = _check_k(k, n)
    return _kmeans_plusplus_jit(key, x, k=k, chunk_size=_check_positive("chunk_size", chunk_size))


def spherical_kmeans(
    key,
    x,
    k: int,
    n_init: int = 10,
    max_iter: int = 300,
    tol: float = 1e-4,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    early_stop: bool = True,
) -> KMeansResult:
    """ProPos E-step k-means: `n_init` k-means++ restarts, best inertia over all iterations of all restarts.

    Args:
      key: PRNG key; restart i uses the i-th key of `jax.random.split(key, n_init)`.
      x: (N, D) features (ProPos passes l2-normalised ones). k: number of clusters, 1 <= k <= N.
      n_init: restarts (official default 10 per process; 4 GPUs ran 40). max_iter, tol: as official.
      chunk_size: rows per assignment block.
      early_stop: False runs exactly `max_iter` iterations per restart, ignoring both convergence
        rules (for benchmarks at equal work; not an official option).
    Returns:
      KMeansResult; n_iter/best_iter/converged refer to the restart that produced the solution.
    """
    n, _ = _check_x(x)
    k = _check_k(k, n)
    _check_tol(tol)
    return _spherical_kmeans_jit(
        key,
        x,
        tol,
        k=k,
        n_init=_check_positive("n_init", n_init),
        max_iter=_check_positive("max_iter", max_iter),
        chunk_size=_check_positive("chunk_size", chunk_size),
        early_stop=bool(early_stop),
    )
