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
``chunk_size`` rows in a loop (fewer for large K, so that a chunk's distances stay in cache), and an
unsharded x is never copied (chunks are slices of it). If ``x`` is sharded on its row axis over a
('data',) mesh the chunk layout is *strided* (chunk j holds rows ``j, j + n_chunks, j + 2 n_chunks,
...``), so every chunk stays spread over all devices instead of living on one of them; otherwise
chunks are contiguous. k-means++ needs only (N, restarts x candidates) distances per centre and
computes them for all rows at once, for as many restarts together as keep them under 64 MiB (one
at a time at ImageNet scale). Row norms are computed once per call.
The layout and the distance / assignment / centre building blocks on it are in `jaxclust.kmeans_rows`.

Shapes: ``x`` (N, D) float; centres (K, D); labels (N,) int32; per-point distances (N,).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh, PartitionSpec as P

from jaxclust.kmeans_rows import (_assign_chunks, _centers_from_labels, _cosine_distance, _from_chunks, _layout,
                                  _normalize, _row_sharded, _Rows)

__all__ = [
    "KMeansResult",
    "assign",
    "update_centers",
    "tolerance_value",
    "kmeans_from_init",
    "kmeans_plusplus",
    "spherical_kmeans",
]

# The most rows per assignment block (the official `predict` uses 4096): a bound on memory, (32768, K)
# distances and a 32768-row slice of x at most; large K uses fewer rows (`kmeans_rows._block_rows`).
DEFAULT_CHUNK_SIZE = 32768
_MESH_AXIS = "data"  # the mesh axis restarts are spread over (jaxclust.parallel.DATA_AXIS)


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
# Lloyd's loop and k-means++ seeding on the chunked layout (jaxclust.kmeans_rows; inside the jitted
# loops).


def _lloyd(rows: _Rows, init, max_iter: int, tol_value, early_stop: bool = True):
    """Official Lloyd loop from `init` on the chunked layout; returns (labels_c, centers, inertia, ...).

    early_stop=False runs exactly `max_iter` iterations (the convergence flags then only record
    whether a rule held at the last iteration); benchmarks use it to compare equal work.
    """
    k = init.shape[0]

    # Step 0: assign to the init centres. Not a candidate for "best" (official min_inertia starts
    # at +inf and is only compared after an update step).
    init = init.astype(rows.x.dtype)
    labels0, _ = _assign_chunks(rows, init)

    def cond(s):
        if not early_stop:
            return s["it"] < max_iter
        return (s["it"] < max_iter) & ~s["done"]

    def body(s):
        old_centers = s["centers"]
        centers = _centers_from_labels(rows.x, s["labels"].reshape(-1), k)
        labels, md = _assign_chunks(rows, centers)
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
        best_inertia=jnp.array(jnp.inf, rows.x.dtype),
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


def _local_trials(k: int, n_local_trials) -> int:
    """Candidates per centre: official (sklearn) 2 + int(log K) when None; 1 is plain k-means++."""
    if n_local_trials is None:
        return 2 + int(math.log(k))
    if isinstance(n_local_trials, bool) or int(n_local_trials) < 1:
        raise ValueError(f"n_local_trials must be None (official 2 + int(log K)) or an integer >= 1, got {n_local_trials!r}.")
    return int(n_local_trials)


# The most candidate distances a seeding group holds at once (N x restarts x candidates floats, 64 MiB):
# restarts are seeded together up to this, so at ImageNet scale (N = 1.28M, 8 candidates at K = 1000)
# a group is one restart, as before groups existed.
_SEEDING_DISTANCES = 1 << 24


def _seeding_groups(n: int, n_trials: int, restarts: int) -> tuple[int, int]:
    """(groups, restarts per group): as few groups as the memory bound allows, balanced in size."""
    most = max(1, min(restarts, _SEEDING_DISTANCES // (n * n_trials)))
    groups = -(-restarts // most)
    return groups, -(-restarts // groups)


def _kmeans_plusplus_chunks(keys, rows: _Rows, n: int, k: int, n_trials: int):
    """Official k-means++ port (sklearn `_kmeans_plusplus` with the plain cosine distance as potential),
    for R restarts at once: keys (R,) -> (R, K, D) centres.

    Each restart draws and chooses as alone (its own keys); they share the pass over x per centre, one
    product for all their candidates, whose float rounding may differ from a lone restart's narrower
    product. Seeding is bound by that pass: K = 100, N = 20000, 2 threads, 3 restarts take 150 ms
    together against 220 ms one after another.
    """
    r, d = keys.shape[0], rows.x.shape[-1]
    x_rows = rows.x  # original row order (then padding)

    def potentials_to(cands):
        # (R, T, D) raw candidate rows -> (*layout, R, T) distances, clipped at 0 (1 - cos can be -1e-7
        # for a point equal to a centre) and 0 on padding rows (never sampled). All rows in one product:
        # N x R T is small, and a loop over chunks would copy every chunk of x at every centre (2x
        # slower on CPU; bench/kmeans.py).
        flat = cands.reshape(-1, d)
        dist = _cosine_distance(x_rows, rows.inv_norm.reshape(-1), _normalize(flat))
        dist = dist.reshape(rows.valid.shape + cands.shape[:2])
        return jnp.where(rows.valid[..., None, None], jnp.maximum(dist, 0.0), 0.0)

    key_first, key_rest = jax.vmap(jax.random.split, out_axes=1)(keys)
    # First centre: a uniform random row (official torch.randint(n_samples)).
    first = jax.vmap(lambda kf: jax.random.randint(kf, (), 0, n))(key_first)
    centers = jnp.zeros((r, k, d), x_rows.dtype).at[:, 0].set(x_rows[first])
    closest = potentials_to(x_rows[first][:, None])[..., 0]  # (*layout, R); potential = distance, NOT squared

    def add_center(i, carry):
        centers, closest = carry
        # Candidates drawn with probability proportional to the potential, in original row order (so the
        # draw does not depend on chunk_size).
        weights = closest.reshape(-1, r)[:n].T  # (R, N) in row order
        draw = jax.vmap(lambda key_r, w: _sample_proportional(jax.random.fold_in(key_r, i), w, n_trials))
        cands = x_rows[draw(key_rest, weights)]  # (R, T, D)
        # Greedy choice: the candidate that minimises the new total potential.
        new_pot = jnp.minimum(closest[..., None], potentials_to(cands))  # (*layout, R, T)
        best = jnp.argmin(jnp.sum(new_pot.reshape(-1, r, n_trials), axis=0), axis=-1)  # (R,)
        closest = new_pot[..., jnp.arange(r), best]  # (*layout, R)
        return centers.at[:, i].set(cands[jnp.arange(r), best]), closest

    centers, _ = lax.fori_loop(1, k, add_center, (centers, closest))
    return centers


def _in_groups(keys, live, n: int, n_trials: int):
    """keys (R,) and live (R,) -> (G, R / G, ...) as seeded together (`_seeding_groups`); the last group
    is filled up with dead copies of the first key."""
    restarts = keys.shape[0]
    groups, per_group = _seeding_groups(n, n_trials, restarts)
    pad = groups * per_group - restarts
    if pad:
        keys = jnp.concatenate([keys, jnp.broadcast_to(keys[:1], (pad,) + keys.shape[1:])])
        live = jnp.concatenate([live, jnp.zeros((pad,), bool)])
    return keys.reshape((groups, per_group) + keys.shape[1:]), live.reshape(groups, per_group)


# ----------------------------------------------------------------------------------------------
# Jitted implementations (static: k, n_init, max_iter, chunk_size).


@functools.partial(jax.jit, static_argnames=("chunk_size", "strided"))
def _assign_jit(x, centers, chunk_size: int, strided: bool):
    n = x.shape[0]
    x = x.astype(_float_dtype(x))
    labels_c, md_c = _assign_chunks(_layout(x, chunk_size, strided, centers.shape[0]), centers.astype(x.dtype))
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


@functools.partial(jax.jit, static_argnames=("max_iter", "chunk_size", "early_stop", "strided"))
def _kmeans_from_init_jit(x, init, tol, max_iter: int, chunk_size: int, early_stop: bool, strided: bool):
    n = x.shape[0]
    x = x.astype(_float_dtype(x))
    tol_value = _tolerance_value_jit(x, tol)
    rows = _layout(x, chunk_size, strided, init.shape[0])
    labels_c, *rest = _lloyd(rows, init.astype(x.dtype), max_iter, tol_value, early_stop)
    return KMeansResult(_from_chunks(labels_c, n), *rest)


@functools.partial(jax.jit, static_argnames=("k", "chunk_size", "n_trials", "strided"))
def _kmeans_plusplus_jit(keys, x, k: int, chunk_size: int, n_trials: int, strided: bool):
    """keys (R,) -> (R, K, D), seeded in the groups `_spherical_kmeans_jit` uses for R restarts."""
    n = x.shape[0]
    x = x.astype(_float_dtype(x))
    rows = _layout(x, chunk_size, strided, k)
    grouped, _ = _in_groups(keys, jnp.ones(keys.shape[:1], bool), n, n_trials)
    seeded = lax.map(lambda g: _kmeans_plusplus_chunks(g, rows, n, k, n_trials), grouped)
    return seeded.reshape((-1,) + seeded.shape[2:])[:keys.shape[0]]


def _best_of_restarts(rows: _Rows, tol_value, keys, live, n: int, k: int, n_trials: int, max_iter: int, early_stop: bool):
    """k-means++ then Lloyd from each key; the lowest-inertia run among those with `live` true.

    Restarts are seeded in groups (`_seeding_groups`: one pass over x per centre for a whole group),
    then run Lloyd one after another (a scan carrying only the best), so memory does not grow with
    their number and no restart waits for the slowest one as under vmap. Returns the `_lloyd` tuple of
    the best run (inertia +inf if no restart is live).
    """
    d = rows.x.shape[-1]

    def run(init, best, found):
        out = _lloyd(rows, init, max_iter, tol_value, early_stop)
        # official: min inertia over every iteration of every init; strict < keeps the earliest init
        # (the first run is taken whatever its inertia, so NaN features still give a result)
        better = (out[2] < best[2]) | ~found
        return jax.tree.map(lambda new, old: jnp.where(better, new, old), out, best)

    def restart(carry, xs):
        best, found = carry
        init, live_i = xs
        # a dead restart (padding of the device spread or of a group) costs nothing: cond, not select
        best = lax.cond(live_i, run, lambda _, b, __: b, init, best, found)
        return (best, found | live_i), None

    def group(carry, xs):
        keys_g, live_g = xs
        inits = lax.cond(jnp.any(live_g), lambda g: _kmeans_plusplus_chunks(g, rows, n, k, n_trials),
                         lambda g: jnp.zeros(g.shape[:1] + (k, d), rows.x.dtype), keys_g)
        carry, _ = lax.scan(restart, carry, (inits, live_g))
        return carry, None

    placeholder = (
        jnp.full(rows.valid.shape, k, jnp.int32),
        jnp.zeros((k, d), rows.x.dtype),
        jnp.array(jnp.inf, rows.x.dtype),
        jnp.int32(0),
        jnp.int32(-1),
        jnp.array(False),
        jnp.array(False),
    )
    (best, _), _ = lax.scan(group, (placeholder, jnp.array(False)), _in_groups(keys, live, n, n_trials))
    return best


@functools.partial(jax.jit, static_argnames=("k", "n_init", "max_iter", "chunk_size", "early_stop", "n_trials", "mesh",
                                             "strided"))
def _spherical_kmeans_jit(key, x, tol, k: int, n_init: int, max_iter: int, chunk_size: int, early_stop: bool,
                          n_trials: int, mesh, strided: bool):
    n = x.shape[0]
    x = x.astype(_float_dtype(x))
    tol_value = _tolerance_value_jit(x, tol)
    keys = jax.random.split(key, n_init)  # distinct key per restart (official seeds random_state + i)
    run = functools.partial(_best_of_restarts, n=n, k=k, n_trials=n_trials, max_iter=max_iter, early_stop=early_stop)

    if mesh is None:
        # Laid out once, shared by every restart and every iteration (sharded like x, if it is).
        labels_c, *rest = run(_layout(x, chunk_size, strided, k), tol_value, keys, jnp.ones((n_init,), bool))
        return KMeansResult(_from_chunks(labels_c, n), *rest)

    # Restarts spread over devices: device j runs restarts j*r .. j*r + r - 1 on a whole copy of x
    # (padded with dead restarts up to a multiple of the device count), then the best of the
    # per-device winners is taken; the earliest restart wins ties, as in the sequential loop, so the
    # result is the sequential one.
    devices = mesh.shape[_MESH_AXIS]
    per_device = -(-n_init // devices)
    pad = devices * per_device - n_init
    keys = jnp.concatenate([keys, jax.random.split(key, pad)]) if pad else keys
    live = jnp.arange(devices * per_device) < n_init

    def on_device(x_whole, keys_local, live_local, tol_local):
        best = run(_layout(x_whole, chunk_size, strided=False, k=k), tol_local, keys_local, live_local)
        return jax.tree.map(lambda a: a[None], best)  # a leading device axis

    spec = P(_MESH_AXIS)
    winners = jax.shard_map(on_device, mesh=mesh, in_specs=(P(), spec, spec, P()), out_specs=spec,
                            check_vma=False)(x, keys, live, tol_value)
    j = jnp.argmin(winners[2])  # first minimum = earliest restart; a device with no live restart has +inf
    labels_c, *rest = jax.tree.map(lambda a: a[j], winners)
    return KMeansResult(_from_chunks(labels_c, n), *rest)


# ----------------------------------------------------------------------------------------------
# Public API.


def assign(x, centers, chunk_size: int = DEFAULT_CHUNK_SIZE):
    """Nearest centre under cosine distance.

    Args:
      x: (N, D) points (need not be unit norm).
      centers: (K, D) centres (need not be unit norm; a zero centre is at distance 1 from all).
      chunk_size: the most rows per block; at most (chunk_size, K) distances exist at once.
    Returns:
      labels (N,) int32 and min_dist (N,) = 1 - cos(x, centers[labels]).
    """
    n, d = _check_x(x)
    if jnp.ndim(centers) != 2 or jnp.shape(centers)[1] != d:
        raise ValueError(f"centers must have shape (K, {d}) to match x, got {tuple(jnp.shape(centers))}.")
    return _assign_jit(x, centers, chunk_size=_check_positive("chunk_size", chunk_size), strided=_row_sharded(x))


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
      tol: relative tolerance (scaled by `tolerance_value`). chunk_size: the most rows per assignment block.
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
        chunk_size=_check_positive("chunk_size", chunk_size), early_stop=bool(early_stop), strided=_row_sharded(x),
    )


def _check_mesh(mesh):
    if mesh is not None and (not isinstance(mesh, Mesh) or _MESH_AXIS not in mesh.shape):
        raise ValueError(f"restart_mesh must be a jax.sharding.Mesh with a {_MESH_AXIS!r} axis (jaxclust.parallel.make_mesh()), got {mesh!r}.")
    return mesh


def kmeans_plusplus(key, x, k: int, chunk_size: int = DEFAULT_CHUNK_SIZE, n_local_trials: int | None = None,
                    n_init: int | None = None):
    """k-means++ seeding of the official port (cosine-distance potential, greedy local trials) -> (K, D) rows of x.

    n_local_trials: candidates drawn per centre, the one lowering the total potential most is kept;
    None is the official 2 + int(log K), 1 is plain (non-greedy) k-means++ with 1 / (2 + log K) of the
    distance computations.
    n_init: None seeds once from `key`; an integer seeds that many restarts at once and returns
    (n_init, K, D): those `spherical_kmeans(key, x, k, n_init)` starts from (the keys of
    `jax.random.split(key, n_init)`, seeded in the same groups), for running the restarts one by one.
    """
    n, _ = _check_x(x)
    k = _check_k(k, n)
    n_trials = _local_trials(k, n_local_trials)
    keys = key[None] if n_init is None else jax.random.split(key, _check_positive("n_init", n_init))
    seeded = _kmeans_plusplus_jit(keys, x, k=k, chunk_size=_check_positive("chunk_size", chunk_size),
                                  n_trials=n_trials, strided=_row_sharded(x))
    return seeded[0] if n_init is None else seeded


def spherical_kmeans(
    key,
    x,
    k: int,
    n_init: int = 10,
    max_iter: int = 300,
    tol: float = 1e-4,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    early_stop: bool = True,
    n_local_trials: int | None = None,
    restart_mesh: Mesh | None = None,
) -> KMeansResult:
    """ProPos E-step k-means: `n_init` k-means++ restarts, best inertia over all iterations of all restarts.

    Args:
      key: PRNG key; restart i uses the i-th key of `jax.random.split(key, n_init)`.
      x: (N, D) features (ProPos passes l2-normalised ones). k: number of clusters, 1 <= k <= N.
      n_init: restarts (official default 10 per process; 4 GPUs ran 40). max_iter, tol: as official.
      chunk_size: the most rows per assignment block.
      early_stop: False runs exactly `max_iter` iterations per restart, ignoring both convergence
        rules (for benchmarks at equal work; not an official option).
      n_local_trials: k-means++ candidates per centre (see `kmeans_plusplus`); None is official.
      restart_mesh: None runs the restarts one after another (seeded together in groups), each on x
        as it is placed (sharded rows: every restart uses every device). A mesh with a 'data' axis
        instead gives every device a whole copy of x and its share of the restarts, run in parallel
        with no communication per iteration; the result of None (same keys, earliest restart wins
        ties) up to the rounding of the seeding's product, narrower where a device seeds only its share.
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
        n_trials=_local_trials(k, n_local_trials),
        mesh=_check_mesh(restart_mesh),
        strided=_row_sharded(x),
    )
