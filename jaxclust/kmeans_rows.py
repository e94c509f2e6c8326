"""The chunked row layout of :mod:`jaxclust.kmeans` and the building blocks that run on it inside its
jitted loops: cosine distances, nearest-centre assignment and plain-mean centres.

Internal to :mod:`jaxclust.kmeans` (whose docstring gives the semantics, the official ProPos
k-means'): the (N, K) distance matrix is never built at once. Rows are processed in chunks of at most
``chunk_size`` rows, and an unsharded x is never copied (chunks are slices of it). If ``x`` is sharded
on its row axis the chunk layout is *strided* (chunk j holds rows ``j, j + n_chunks, ...``), so every
chunk stays spread over all devices; otherwise chunks are contiguous (see :class:`_Rows`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

_NORM_EPS = 1e-12  # torch F.normalize default
_COUNT_EPS = 1e-6  # official: counts = zeros(K) + 1e-6, so an empty centre is 0 / 1e-6 = 0
# The parity fixtures need full float32 matmuls; reduced-precision modes (TF32/bf16 passes on
# GPU/TPU) flip assignments whose best/second-best gap is ~3e-5.
_PRECISION = lax.Precision.HIGHEST


# ----------------------------------------------------------------------------------------------
# Chunked row layout.


# Distances per assignment block: at most 2^21 (8 MiB of float32), so that the (rows, K) block and
# the passes over it (max, first index of the max) stay in the caches, while a block's product is big
# enough for XLA:CPU to spread over its threads and a single block needs no slice (a copy) of x.
# Measured (`kmeans_from_init`, 20 iterations, N = 20000 Gaussian blobs in D = 256, the process
# pinned to 1 / 2 cores as bench/kmeans.py --official pins it; ms per Lloyd iteration): K = 100 one
# block of 20000 rows 8.7 / 4.7 against 9.4-10.5 / 5.4-5.7 in 2-3 blocks, 8.1 / 7.0 in 512-row
# blocks; K = 1000 blocks of 2097 rows 73 / 42, 1048 rows 71 / 41, one block 97 / 49.
_BLOCK_DISTANCES = 1 << 21
_MIN_BLOCK_ROWS = 256


def _block_rows(chunk_size: int, k: int) -> int:
    """Rows per assignment block for K centres: at most chunk_size (the caller's memory bound)."""
    return min(chunk_size, max(_MIN_BLOCK_ROWS, _BLOCK_DISTANCES // max(k, 1)))


def _chunk_geometry(n: int, chunk_size: int) -> tuple[int, int]:
    """(n_chunks, chunk) with chunk <= chunk_size and as little padding as possible (< n_chunks rows)."""
    n_chunks = -(-n // chunk_size)
    chunk = -(-n // n_chunks)
    return n_chunks, chunk


def _pad_rows(a, rows: int):
    pad = rows - a.shape[0]
    return jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)) if pad else a


def _from_chunks(a, n: int):
    """A per-row array of the layout (see `_Rows`) -> (N,) in the original row order."""
    return a.reshape(-1)[:n]


def _row_sharded(x) -> bool:
    """Whether x's rows may be split over several devices (then the strided layout is used)."""
    try:
        sharding = x.sharding
    except AttributeError:  # a tracer: only its mesh is known, assume that mesh splits the rows
        mesh = getattr(jax.typeof(x).sharding, "mesh", None)
        return mesh is not None and math.prod(mesh.axis_sizes) > 1
    return len(sharding.device_set) > 1 and not sharding.is_fully_replicated


def _inverse_norm(v):
    # torch F.normalize(p=2, eps=1e-12) divides by max(|v|, eps)
    return 1.0 / jnp.maximum(jnp.sqrt(jnp.sum(v * v, axis=-1)), _NORM_EPS)


def _normalize(v):
    return v * _inverse_norm(v)[..., None]


class _Rows(NamedTuple):
    """x and what every distance needs, in one of two chunk layouts.

    Contiguous (x unsharded): x (N, D) as given; per-row arrays (N,); chunk j is rows
    [s_j, s_j + chunk) with s_j = min(j chunk, N - chunk), so the last chunk overlaps the one before
    instead of needing padding (its rows are computed twice, identically).
    Strided (x row-sharded): x zero-padded to N' = n_chunks * chunk rows; per-row arrays
    (chunk, n_chunks); chunk j is rows j, j + n_chunks, j + 2 n_chunks, ..., so the sharding maps
    onto the chunk's rows and every chunk is spread over all devices.
    Both keep x (N or N', D) in row order, and flattening a per-row array gives row order back.
    inv_norm: rows' inverse norms, computed once; valid: real (not padding) rows.

    x is never reshaped or padded outside the loops when it is not sharded: a loop operand that is a
    view of the caller's x makes XLA copy x (measured: 61 MB more temporaries at N = 60000 and 1.5x
    the run time of K = 10 k-means; at ImageNet scale a 1.3 GB copy).
    """

    x: jax.Array
    inv_norm: jax.Array
    valid: jax.Array
    strided: bool
    n_chunks: int
    size: int  # rows per chunk

    def _start(self, j):
        return jnp.minimum(j * self.size, self.x.shape[0] - self.size)

    def chunk(self, a, j):
        """Chunk j of the per-row array `a` (or of x when `a` is None): (chunk, ...)."""
        if not self.strided:
            return lax.dynamic_slice_in_dim(self.x if a is None else a, self._start(j), self.size, axis=0)
        if a is None:
            a = self.x.reshape(self.valid.shape + self.x.shape[1:])
        return lax.dynamic_index_in_dim(a, j, axis=1, keepdims=False)

    def put(self, out, j, value):
        """`out` (a per-row array) with chunk j set to `value` (chunk,)."""
        if not self.strided:
            return lax.dynamic_update_slice_in_dim(out, value, self._start(j), axis=0)
        return lax.dynamic_update_index_in_dim(out, value, j, axis=1)


def _layout(x, chunk_size: int, strided: bool, k: int) -> _Rows:
    """x in blocks of `_block_rows(chunk_size, k)` rows (see `_Rows`)."""
    n = x.shape[0]
    n_chunks, chunk = _chunk_geometry(n, _block_rows(chunk_size, k))
    inv_norm, valid = _inverse_norm(x), jnp.ones((n,), bool)
    if strided:
        x, inv_norm, valid = (_pad_rows(a, n_chunks * chunk) for a in (x, inv_norm, valid))
        inv_norm, valid = inv_norm.reshape(chunk, n_chunks), valid.reshape(chunk, n_chunks)
    return _Rows(x, inv_norm, valid, strided, n_chunks, chunk)


def _cosine_distance(xb, inv_b, cn):
    """(B, D) raw rows with their (B,) inverse norms vs (M, D) normalised centres -> (B, M) 1 - cos.

    Official pairwise_cosine is 1 - normalize(x1) @ normalize(x2).T; scaling the product by the
    precomputed inverse norms instead reads x once per distance computation, not three times, and
    differs from it by float rounding only.
    """
    return 1.0 - jnp.matmul(xb, cn.T, precision=_PRECISION) * inv_b[:, None]


# ----------------------------------------------------------------------------------------------
# Building blocks on the chunked layout (used inside the jitted loops).


def _nearest(similarity):
    """(B, K) cosine similarities (or products with a positive per-row factor) -> the index of the
    largest (int32, the first on ties) and the largest (B,); a row holding a NaN gets its first NaN and NaN.

    The nearest centre under 1 - cos. Taking the largest product, rather than the smallest distance
    1 - s / |x|, needs no (B, K) distances: the smallest distance is 1 - max(s) / |x| (the same float
    for a positive factor, rounding being monotone), and two products that differ but round to the
    same distance go to the larger one instead of the first. The index is found with two plain
    reductions (the max, then the smallest index holding it, as floats: exact below 2^24 centres)
    instead of XLA's variadic (value, index) argmax reduce, which XLA:CPU does not vectorise (K = 200:
    assignment 2x faster; float indices: 1 ms less per K = 100 Lloyd iteration than int32 at 2 threads).
    """
    best = jnp.max(similarity, axis=-1)  # NaN if the row has a NaN
    iota = lax.broadcasted_iota(similarity.dtype, similarity.shape, similarity.ndim - 1)
    hit = (similarity == best[..., None]) | jnp.isnan(similarity)  # argmax returns a row's first NaN
    index = jnp.min(jnp.where(hit, iota, similarity.shape[-1]), axis=-1)
    return index.astype(jnp.int32), best


def _assign_chunks(rows: _Rows, centers):
    """Assignment on the chunked layout.

    rows: x in chunks (see `_Rows`); centers: (K, D).
    Returns per-row labels int32 with padding rows = K (dropped by segment_sum), and min distances
    with padding rows = 0 (no inertia contribution).
    """
    k = centers.shape[0]
    cn = _normalize(centers)

    def one_chunk(j, out):
        valid = rows.chunk(rows.valid, j)
        # (chunk, K) products with the unit centres: the only N x K piece alive
        lab, best = _nearest(jnp.matmul(rows.chunk(None, j), cn.T, precision=_PRECISION))
        md = 1.0 - best * rows.chunk(rows.inv_norm, j)  # the cosine distance to the nearest centre
        labels, mins = out
        return rows.put(labels, j, jnp.where(valid, lab, k)), rows.put(mins, j, jnp.where(valid, md, 0.0))

    out = (jnp.zeros(rows.valid.shape, jnp.int32), jnp.zeros(rows.valid.shape, rows.x.dtype))
    return lax.fori_loop(0, rows.n_chunks, one_chunk, out)


def _centers_from_labels(x_rows, labels_rows, k: int):
    """x_rows (M, D), labels_rows (M,) with out-of-range ids ignored -> (K, D) plain means."""
    # official: state.index_add_(0, labels, X); counts = 1e-6 + bincount; state / counts
    sums = jax.ops.segment_sum(x_rows, labels_rows, num_segments=k)
    counts = jax.ops.segment_sum(jnp.ones(labels_rows.shape, x_rows.dtype), labels_rows, num_segments=k)
    return sums / (counts + _COUNT_EPS)[:, None]
