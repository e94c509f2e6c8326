"""Streaming: a host pipeline (tf.data) for data sets that do not fit on the device (ImageNet-1k).

The host reads and decodes images, resizes them to one storage size (`data.load_size`, default
`data.image_size`) and hands fixed-shape uint8 batches, with their example ids, to the device, where
the SAME jitted augmentation as for an in-memory bank runs (`jaxclust.trainer.two_views`,
`jaxclust.data.augment.eval_batch`). Each host (process) reads only its own contiguous shard of the
records; every host yields the same number of batches per epoch.

    source = StreamingSource(cfg.data)                 # tfds imagenet2012 / SCAN subset, or folder
    for ids, images in source.train_batches(epoch, cfg.train.batch_size, seed):
        ...  # this host's (B / process_count) examples; ids index the pseudo-labels
    for ids, images in source.eval_batches(batch):     # this host's shard, in order (E-step)

Example ids are 0..N-1 over the whole data set (for a SCAN subset, the rank of a record among the
subset's records in the stored order), so `pseudo_labels[ids]` works as with a bank.

Differences from the in-memory path: the host resizes with tf.image's antialiased bicubic (the bank
loaders use PIL's bicubic; they differ by a few grey levels), and shuffling is a per-host
`shuffle(buffer)` over the host's shard, re-seeded every epoch, not a global permutation.
"""
from __future__ import annotations

import numpy as np

from jaxclust.data import sources
from jaxclust.data.sources import DataError


def _process_info(process_index, process_count):
    if process_index is None or process_count is None:
        import jax

        return jax.process_index(), jax.process_count()
    return process_index, process_count


class StreamingSource:
    """A data set read from disk batch by batch: `data.source` 'tfds' (`data.name` imagenet2012 or a
    SCAN subset imagenet50/100/200) or 'folder'.

    On construction it indexes the records (labels only, no pixels: for tfds one label-only pass over
    the split, for a folder the file list) and raises DataError when the data set is missing.

    Attributes: num_examples, labels ((N,) int32 or None), class_names, image_shape (S, S, C).
    """

    def __init__(self, data_cfg, process_index: int | None = None, process_count: int | None = None,
                 shuffle_buffer: int = 10_000):
        self.cfg = data_cfg
        self.process_index, self.process_count = _process_info(process_index, process_count)
        self.shuffle_buffer = shuffle_buffer
        self.size = data_cfg.get("load_size", 0) or data_cfg.image_size
        self.tf, self.tfds = sources.import_tfds()
        if data_cfg.source == "folder":
            files, labels, self.class_names, gray = sources.folder_index(data_cfg)
            self._files = np.asarray(files)
            self.channels = 1 if gray else 3
            self._table = np.arange(len(files), dtype=np.int32)  # record position -> example id
            self.labels = labels
        elif data_cfg.source == "tfds" and data_cfg.name.startswith("imagenet"):
            self._index_tfds()
        else:
            raise DataError(f"streaming reads data.source 'folder' or 'tfds' with data.name imagenet2012/50/100/200, "
                            f"not {data_cfg.source!r}/{data_cfg.name!r}; use the in-memory bank (data.streaming=False).")
        self.num_examples = int((self._table >= 0).sum())
        if self.num_examples == 0:
            raise DataError(f"data set {data_cfg.name!r} has no images to stream.")
        self.image_shape = (self.size, self.size, self.channels)

    @property
    def num_channels(self) -> int:
        return self.channels

    @property
    def name(self) -> str:
        return self.cfg.name

    def shard_sizes(self) -> list[int]:
        """Examples each host reads (a SCAN subset keeps only its classes' records of each shard)."""
        return [int((self._table[slice(*self._shard(h))] >= 0).sum()) for h in range(self.process_count)]

    # -- indexing ---------------------------------------------------------------------------

    def _index_tfds(self):
        cfg, tfds = self.cfg, self.tfds
        self.split = sources.tfds_split(cfg)
        ds = sources.tfds_dataset(cfg, self.split, skip_decoding=True)
        all_names = tfds.builder("imagenet2012", data_dir=sources.tfds_data_dir(cfg)).info.features["label"].names
        mapping, self.class_names = sources.imagenet_label_map(cfg, all_names)
        # one label-only pass: the record count and, for a subset, which records belong to it
        raw = list(tfds.as_numpy(ds.map(lambda ex: ex["label"]).batch(4096)))
        new = mapping[np.concatenate(raw)] if raw else np.zeros((0,), np.int32)
        keep = new >= 0
        self._table = np.where(keep, np.cumsum(keep) - 1, -1).astype(np.int32)
        self.labels = new[keep].astype(np.int32)
        self.channels = 1 if cfg.get("channels", 0) == 1 else 3

    # -- tf.data ----------------------------------------------------------------------------

    def _shard(self, host: int | None = None) -> tuple[int, int]:
        """[start, end) record positions a host (default: this one) reads: a contiguous 1/process_count
        of the records."""
        n, host = len(self._table), self.process_index if host is None else host
        return host * n // self.process_count, (host + 1) * n // self.process_count

    def _decode(self, blob):
        tf = self.tf
        image = tf.io.decode_image(blob, channels=self.channels, expand_animations=False)
        image = tf.image.resize(image, (self.size, self.size), method="bicubic", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    def _records(self):
        """(example id, encoded image) of this host's shard, in the stored order, subset records only."""
        tf = self.tf
        start, end = self._shard()
        table = tf.constant(self._table)
        if self.cfg.source == "folder":
            ds = tf.data.Dataset.from_tensor_slices(self._files[start:end])
            ds = ds.map(tf.io.read_file)
        else:
            ds = sources.tfds_dataset(self.cfg, f"{self.split}[{start}:{end}]", skip_decoding=True)
            ds = ds.map(lambda ex: ex["image"])
        ds = tf.data.Dataset.zip((tf.data.Dataset.range(start, end), ds))
        ds = ds.map(lambda pos, blob: (tf.gather(table, pos), blob))
        return ds.filter(lambda i, blob: i >= 0)

    def local_batch_size(self, batch_size: int) -> int:
        if batch_size % self.process_count:
            raise DataError(f"train.batch_size ({batch_size}) must be divisible by the number of hosts "
                            f"({self.process_count}).")
        return batch_size // self.process_count

    def train_batches(self, epoch: int, batch_size: int, seed: int = 0, skip: int = 0):
        """`num_examples // batch_size` batches of (ids (b,) int32, images (b, S, S, C) uint8), b =
        batch_size / process_count: this host's shard shuffled (seeded by seed, epoch, host), cycled
        if a host's shard runs short, decoded in parallel. `skip` leaves out the epoch's first batches
        (a run resumed mid-epoch), which are still read: the shuffle is a function of the stream."""
        tf, tfds = self.tf, self.tfds
        local = self.local_batch_size(batch_size)
        steps = self.num_examples // batch_size
        shuffle_seed = int(np.random.SeedSequence([seed, epoch, self.process_index]).generate_state(1)[0])
        ds = self._records().shuffle(self.shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
        ds = ds.repeat().map(lambda i, blob: (i, self._decode(blob)), num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(local, drop_remainder=True).take(steps).skip(skip).prefetch(2)
        yield from tfds.as_numpy(ds)

    def eval_batches(self, batch_size: int):
        """This host's shard in the stored order, as (ids, images) batches (the last one may be short):
        what the E-step embeds, without augmentation."""
        tf, tfds = self.tf, self.tfds
        ds = self._records().map(lambda i, blob: (i, self._decode(blob)), num_parallel_calls=tf.data.AUTOTUNE)
        yield from tfds.as_numpy(ds.batch(batch_size).prefetch(2))

    def sample(self, count: int = 2) -> np.ndarray:
        """The first `count` images of this host's shard (for model init and dry runs)."""
        for _, images in self.eval_batches(count):
            return images
        raise DataError(f"data set {self.cfg.name!r}: this host's shard is empty.")
