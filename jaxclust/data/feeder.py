"""Batches for the training loop, the same way whether the data set sits in device memory or is
streamed from the host (`data.streaming`), so that the loop has no branch on the source.

A feeder has
    source                      the data set: name, num_examples, labels, class_names, image_shape, ...
    sample(n)                   n stored images (host), for shapes and the model's init
    train_batches(epoch, skip, balance_by)   the epoch's (images, indices) from step `skip` on
    eval_batches(chunk)         the whole data set once as (images, ids), ids = num_examples on padding
where images (uint8) and indices are global arrays split over the mesh's data axis, every batch and
every chunk of one shape (one compiled function serves them all).
"""
from __future__ import annotations

import jax
import numpy as np

from jaxclust import parallel


def epoch_batches(key: jax.Array, epoch: int, num_examples: int, batch_size: int,
                  balance_by: np.ndarray | None = None) -> np.ndarray:
    """(steps, batch) example indices of one epoch: a fresh permutation, last partial batch dropped.

    With `balance_by` (N,) cluster labels, the indices are drawn with replacement, example i with
    weight 1 / size of its cluster, so that every cluster is drawn equally often (official
    `data_resample`: torch.multinomial(N / count[label], steps * batch, replacement=True)).
    """
    steps = num_examples // batch_size
    epoch_key = jax.random.fold_in(key, epoch)
    if balance_by is None:
        order = jax.random.permutation(epoch_key, num_examples)[: steps * batch_size]
    else:
        weights = 1.0 / np.bincount(balance_by)[balance_by]
        order = jax.random.choice(epoch_key, num_examples, (steps * batch_size,), p=weights / weights.sum())
    return np.asarray(order).reshape(steps, batch_size)


def embed_chunk(batch_size: int, num_examples: int, devices: int) -> int:
    """Images per embedding call: `batch_size` (at most the data set), rounded up to split evenly over
    the devices; every call has this shape (the last one padded), so one compiled function serves."""
    return -(-min(batch_size, num_examples) // devices) * devices


class BankFeeder:
    """An in-memory data set (`jaxclust.data.sources.ImageBank`), replicated on every device on first
    use: any device gathers any batch without communication. Batches are drawn by `epoch_batches`."""

    def __init__(self, bank, mesh, batch_size: int, key: jax.Array):
        self.source, self.batch_size, self.key = bank, batch_size, key
        self._replicated, self._sharded = parallel.replicated(mesh), parallel.batch_sharded(mesh)
        self._gather = jax.jit(lambda images, indices: images[indices], out_shardings=self._sharded)
        self._images = None

    @property
    def images(self) -> jax.Array:
        """The whole bank on the devices."""
        if self._images is None:
            self._images = parallel.put_global(self.source.images, self._replicated)
        return self._images

    def sample(self, n: int) -> np.ndarray:
        return self.source.images[:n]

    def batch(self, indices: np.ndarray):
        """(images, indices) of the given example indices, as global arrays."""
        indices = parallel.put_global(np.asarray(indices, np.int32), self._sharded)
        return self._gather(self.images, indices), indices

    def train_batches(self, epoch: int, skip: int = 0, balance_by: np.ndarray | None = None):
        order = epoch_batches(self.key, epoch, self.source.num_examples, self.batch_size, balance_by)
        for indices in order[skip:]:
            yield self.batch(indices)

    def eval_batches(self, chunk: int):
        n = self.source.num_examples
        for start in range(0, n, chunk):
            ids = np.arange(start, start + chunk)
            images, _ = self.batch(np.minimum(ids, n - 1))  # the last chunk padded with the last image
            yield images, parallel.put_global(np.where(ids < n, ids, n).astype(np.int32), self._sharded)


class StreamFeeder:
    """A streamed data set (`jaxclust.data.streaming.StreamingSource`): every host reads its own share
    of each batch, and the shares are assembled into one global array."""

    def __init__(self, source, mesh, batch_size: int, seed: int):
        self.source, self.batch_size, self.seed = source, batch_size, seed
        self._sharded = parallel.batch_sharded(mesh)
        self.images = None  # nothing is held in memory

    def sample(self, n: int) -> np.ndarray:
        return self.source.sample(n)

    def _global(self, local: np.ndarray) -> jax.Array:
        return jax.make_array_from_process_local_data(self._sharded, local)

    def train_batches(self, epoch: int, skip: int = 0, balance_by=None):
        if balance_by is not None:  # refused by the config gate: a stream cannot be drawn from at will
            raise ValueError("a streamed data set cannot be resampled by cluster.")
        for ids, images in self.source.train_batches(epoch, self.batch_size, self.seed, skip=skip):
            yield self._global(images), self._global(ids)

    def eval_batches(self, chunk: int):
        """Every host embeds its own shard, in chunks padded to one shape and one count on all hosts."""
        source, n = self.source, self.source.num_examples
        local = chunk // jax.process_count()
        calls = -(-max(source.shard_sizes()) // local)  # the same number of calls on every host
        batches = source.eval_batches(local)
        for _ in range(calls):
            ids, images = next(batches, (np.zeros((0,), np.int32), None))
            pad = local - len(ids)
            if images is None:
                images = np.zeros((local,) + source.image_shape, np.uint8)
            elif pad:
                images = np.concatenate([images, np.repeat(images[-1:], pad, axis=0)])
            ids = np.concatenate([ids, np.full((pad,), n, np.int32)])  # id n: dropped when assembled
            yield self._global(images), self._global(ids)


def make_feeder(data_cfg, mesh, batch_size: int, key: jax.Array, seed: int):
    """The feeder of `data_cfg`: streamed (`data.streaming`), or loaded whole into memory."""
    if data_cfg.streaming:
        from jaxclust.data.streaming import StreamingSource  # tf.data, loaded only when streaming

        return StreamFeeder(StreamingSource(data_cfg), mesh, batch_size, seed)
    from jaxclust.data.sources import load_source

    return BankFeeder(load_source(data_cfg), mesh, batch_size, key)
