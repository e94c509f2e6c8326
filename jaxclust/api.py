"""The public Python API: train, load a trained run, cluster new images.

    import jaxclust
    cfg = jaxclust.get_config("propos_digits", train__epochs=20)     # configs/propos_digits.py + overrides
    jaxclust.train(cfg, "/tmp/digits")                                # what launch/main.py runs
    run = jaxclust.load("/tmp/digits")                                # never reads the training data
    clusters, scores = run.predict(images)                            # uint8 (N, H, W, C) or (N, H, W)
    features = run.embed(images)                                      # what the method clusters
    images, labels, names = run.read_images("photos/")                # a folder, a list of files, an npz

`run.labels` are the training images' clusters of the last E-step, in data-set order, in the numbering
`predict` uses: predicting the training images gives them back.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxclust import methods, parallel, trainer
from jaxclust.checkpoint import Checkpointer, restore_readable
from jaxclust.config import load_config_file
from jaxclust.data.augment import AugmentConfig, eval_batch
from jaxclust.data.feeder import embed_chunk
from jaxclust.workdir import CONFIG_FILE, load_run_config, read_metrics

CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"


def get_config(name: str, **overrides):
    """The config file configs/`name`.py (or a path to any config file), with `overrides` given as
    section__key=value (`train__epochs=20` is --config.train.epochs=20)."""
    path = Path(name) if name.endswith(".py") else CONFIGS_DIR / f"{name}.py"
    cfg = load_config_file(path)
    for key, value in overrides.items():
        *sections, leaf = key.split("__")
        node = cfg
        for section in sections:
            node = node[section]
        if leaf not in node:
            raise KeyError(f"config has no key {'.'.join(sections + [leaf])!r}.")
        node[leaf] = value
    return cfg


def train(config, workdir, accept_config_change: bool = False) -> dict:
    """Trains `config` in `workdir` (resuming from its last checkpoint), as launch/main.py does;
    returns the run's summary (final metrics, wall time). A resume whose config changes what the
    run computes is refused unless `accept_config_change` (then recorded in config_history.jsonl)."""
    return trainer.train_and_evaluate(config, workdir, accept_config_change)


def load(workdir, checkpoint: int | None = None) -> "TrainedRun":
    """The trained run in `workdir` at its last checkpoint (or the epoch `checkpoint`)."""
    return TrainedRun(workdir, checkpoint)


class TrainedRun:
    """A trained run, restored from its workdir without its training data.

    config, method (`jaxclust.methods.common.Method`), state, epoch (of the checkpoint), metrics (the
    records of metrics.jsonl), labels (the training images' clusters of the last E-step before the
    checkpoint; None only for checkpoints of methods without pseudo-labels saved before they were kept),
    centroids (or None).
    """

    def __init__(self, workdir, checkpoint: int | None = None):
        self.workdir = Path(workdir)
        if not (self.workdir / CONFIG_FILE).exists():
            raise FileNotFoundError(f"{str(self.workdir)!r} holds no jaxclust run (no {CONFIG_FILE}); "
                                    "train there first or pass the workdir of a run.")
        self.config = cfg = load_run_config(self.workdir)
        mesh = parallel.make_mesh()
        trainer.check_config(cfg, device_count=mesh.size)
        checkpointer = Checkpointer(self.workdir, max_to_keep=cfg.train.checkpoints_to_keep)
        try:
            epoch = checkpointer.choose_epoch(checkpoint)
            try:
                data = checkpointer.saved_meta(epoch).get("data")
            except Exception as error:  # noqa: BLE001 - a damaged meta file
                raise FileNotFoundError(f"{checkpointer.directory}: the checkpoint of epoch {epoch} cannot be read "
                                        f"({type(error).__name__}); choose another with jaxclust.load(workdir, "
                                        f"checkpoint=EPOCH) (saved: {checkpointer.all_epochs()}).") from error
            if data is None:
                raise ValueError(f"the checkpoint of epoch {epoch} predates jaxclust.load (no data identity in "
                                 "its meta); evaluate it with launch/evaluate.py.")
            num_examples = data["num_examples"]
            self.method = methods.build_method(cfg, num_examples, num_examples // cfg.train.batch_size)
            self.aug, self.size = AugmentConfig.from_config(cfg.augment), cfg.data.image_size
            self.channels = len(cfg.augment.mean)
            sample = jnp.zeros((2, self.size, self.size, self.channels), jnp.float32)
            replicated = parallel.replicated(mesh)
            like = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
                                jax.eval_shape(self.method.init, jax.random.key(0), sample))
            _, epoch, self.state, _, labels = restore_readable(
                checkpointer, checkpoint, like, "jaxclust.load(workdir, checkpoint=EPOCH)",
                lambda c, n: trainer.check_compatible_structure(c, n, like), lambda m: warnings.warn(m.removeprefix("warning: "), stacklevel=3))
        finally:
            checkpointer.close()
        self.epoch, self._mesh = epoch, mesh
        self.metrics = read_metrics(self.workdir)
        if labels is None and self.method.pseudo_labels is not None:  # a checkpoint saved before labels were kept
            labels = np.asarray(self.method.pseudo_labels(self.state))
        self.labels = labels
        self.centroids = None if self.method.centroids is None else np.asarray(self.method.centroids(self.state))
        method, aug, size = self.method, self.aug, self.size
        self._embed = jax.jit(lambda state, images: method.embed(state, eval_batch(images, aug, size)))


    def read_images(self, path) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        """(images uint8, labels or None, names) of a folder of images (class sub-folders give labels,
        as `data.source=folder`; names are the file paths), of a list of image files (names: the
        paths), or of an npz file (`images`, optional `labels`; names are the indices), read as the run
        read its training images: resized on load to its data.load_size (or data.image_size), with its
        data.channels. Files that cannot be read stop it, naming the file (or are left out with
        data.skip_unreadable)."""
        from jaxclust.data import sources

        data_cfg = self.config.data.copy_and_resolve_references()
        size = data_cfg.load_size or data_cfg.image_size
        if isinstance(path, (list, tuple)):
            files = [str(f) for f in path]
            if not files:
                raise ValueError("read_images was given an empty list of files.")
            missing = [f for f in files if not Path(f).is_file()]
            if missing:
                raise FileNotFoundError(f"{len(missing)} of the {len(files)} files do not exist, e.g. {missing[0]!r}.")
            gray = sources.is_grey_set(files, data_cfg.channels)
            images, kept = sources.decode_all(files, size, gray, "the files", data_cfg.skip_unreadable)
            return images, None, [files[i] for i in np.flatnonzero(kept)]
        path = Path(path)
        if path.suffix == ".npz":
            bank = sources.load_npz(str(path))
            return bank.images, bank.labels, [str(i) for i in range(bank.num_examples)]
        if not path.is_dir():
            raise FileNotFoundError(f"{str(path)!r} is neither a folder of images nor an .npz file.")
        data_cfg.source, data_cfg.path, data_cfg.split, data_cfg.name = "folder", str(path), "", path.name
        files, labels, _, gray = sources.folder_index(data_cfg)
        images, kept = sources.decode_all(files, size, gray, data_cfg.name, data_cfg.skip_unreadable)
        return images, None if labels is None else labels[kept], [files[i] for i in np.flatnonzero(kept)]

    def _images(self, images) -> np.ndarray:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W[, C]) pixels, got dtype {images.dtype}.")
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or len(images) == 0:
            raise ValueError(f"images must be a non-empty uint8 array (N, H, W[, C]), got shape {images.shape}.")
        if images.shape[-1] != self.channels:
            from jaxclust.data.sources import set_channels

            images = set_channels(images, self.channels, "the images")
        return images

    def embed(self, images, batch_size: int | None = None) -> np.ndarray:
        """(N, D) features the method clusters (ProPos: the l2-normalised target projector output in
        eval mode) of uint8 images, preprocessed as the run's test images (resize to data.image_size,
        normalisation), in batches of `batch_size` (default train.embed_batch_size) split over the devices."""
        images = self._images(images)
        n, devices = len(images), self._mesh.size
        chunk = embed_chunk(batch_size or self.config.train.embed_batch_size, n, devices)
        sharded, out = parallel.batch_sharded(self._mesh), []
        for start in range(0, n, chunk):
            rows = np.minimum(np.arange(start, start + chunk), n - 1)  # the last chunk padded: one shape
            out.append(np.asarray(self._embed(self.state, parallel.put_global(images[rows], sharded))))
        return np.concatenate(out)[:n]

    def predict(self, images, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(clusters (N,) int32, scores (N,)) of uint8 images: each image's cluster in the numbering
        of `labels`, by the method's own rule (nearest centroid, a head's argmax), and its confidence
        (cosine to the centroid, the head's probability)."""
        return self.assign(self.embed(images, batch_size))

    def assign(self, features) -> tuple[np.ndarray, np.ndarray]:
        """`predict` of images whose `embed` features are already at hand."""
        if self.method.assign is None:
            raise ValueError(f"method {self.config.method.name!r} cannot assign new images.")
        labels, scores = self.method.assign(self.state, jnp.asarray(features))
        return np.asarray(labels), np.asarray(scores)
