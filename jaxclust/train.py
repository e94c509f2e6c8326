"""The training loop: E-step cadence, M-step steps, metrics, checkpoints.

It knows no method in particular: a method gives it `init`, `train_step`, `embed` and
`set_pseudo_labels` (see `jaxclust.methods`). Data flow (DESIGN.md, "The ProPos loop"):

    labels = E-step(state)                      # before epoch 1 as well
    for each epoch: for each batch of indices: state = train_step(state, two views, indices)
                    every `cluster.every` epochs: labels = E-step(state); log metrics
                    checkpoint
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from contextlib import closing
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxclust import kmeans, metrics, parallel
from jaxclust.checkpoint import Checkpointer
from jaxclust.config import ConfigError, validate_config, validate_data
from jaxclust.data.augment import AugmentConfig, augment_batch, eval_batch, view_configs
from jaxclust.data.sources import load_source
from jaxclust.evaluate.tensorboard import DIRNAME as TENSORBOARD_DIR, EventWriter
from jaxclust.methods import build_method

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"
STEP_CHECKPOINTS = "step_checkpoints"  # train.checkpoint_every_steps: mid-epoch checkpoints


def log(message: str) -> None:
    if parallel.is_main_process():
        print(message, flush=True)


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


def two_views(key, images, indices, aug, size: int):
    """Two augmented views; each image's randomness comes from (step key, example index, view).
    `aug` is one AugmentConfig for both views, or a pair (view 1, view 2), see `view_configs`."""
    augs = (aug, aug) if isinstance(aug, AugmentConfig) else tuple(aug)
    example_keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(indices)
    view_keys = [jax.vmap(lambda k, v=v: jax.random.fold_in(k, v))(example_keys) for v in (1, 2)]
    return [augment_batch(k, images, a, size) for k, a in zip(view_keys, augs)]


class _Run:
    """The pieces of one run, built once; compiled functions are cached on it."""

    def __init__(self, cfg, workdir: Path, mesh=None):
        self.cfg, self.workdir = cfg, workdir
        self.mesh = parallel.make_mesh() if mesh is None else mesh
        self.replicated = parallel.replicated(self.mesh)
        self.sharded = parallel.batch_sharded(self.mesh)
        validate_config(cfg, device_count=self.mesh.size)
        self.streaming = bool(cfg.data.streaming)
        if self.streaming and cfg.train.resample:
            raise ConfigError("train.resample draws from the whole data set, which data.streaming=True "
                              "does not hold; set --config.train.resample=False.")
        self.bank = self._load(cfg.data)
        validate_data(cfg, self.bank)
        # An in-memory bank is replicated: every device can gather any batch without communication.
        self.images = self._put(self.bank)
        self.heldout = None  # eval.split: (source, device images or None when streamed)
        if cfg.eval.split:
            heldout_cfg = ml_collections.ConfigDict(cfg.data.to_dict())
            heldout_cfg.split, heldout_cfg.imbalance_ratio, heldout_cfg.unlabelled = cfg.eval.split, 1.0, False
            heldout = self._load(heldout_cfg)
            if heldout.labels is None:
                raise ConfigError(f"eval.split={cfg.eval.split!r} has no labels to score; set --config.eval.split=''.")
            self.heldout = (heldout, self._put(heldout))
        n, batch = self.bank.num_examples, cfg.train.batch_size
        self.steps_per_epoch = n // batch
        self.method = build_method(cfg, n, self.steps_per_epoch)
        self.aug = AugmentConfig.from_config(cfg.augment)
        self.views = view_configs(cfg.augment)
        self.size = cfg.data.image_size
        root = jax.random.key(cfg.seed)
        self.init_key, self.data_key, self.train_key, self.cluster_key = (
            jax.random.fold_in(root, i) for i in range(4)
        )

        aug, views, size, method = self.aug, self.views, self.size, self.method

        def augment_and_step(state, batch, indices, key):
            v1, v2 = two_views(key, batch, indices, views, size)
            return method.train_step(state, v1, v2, indices, key)

        def embed_batch(state, batch):
            return method.embed(state, eval_batch(batch, aug, size))

        # (state, images, indices, ...): the batch gathered from the bank inside the compiled step
        self._step = jax.jit(lambda state, images, indices, key: augment_and_step(state, images[indices], indices, key),
                             donate_argnums=0)
        self._embed = jax.jit(lambda state, images, indices: embed_batch(state, images[indices]))
        # (state, batch, ...): a batch that streaming assembled from every host's share
        self._step_on_batch = jax.jit(augment_and_step, donate_argnums=0)
        self._embed_batch = jax.jit(embed_batch)

    def _load(self, data_cfg):
        """The data set of `data_cfg`: a StreamingSource (read batch by batch) or an in-memory bank."""
        if self.streaming:
            from jaxclust.data.streaming import StreamingSource  # tf.data, loaded only when streaming

            return StreamingSource(data_cfg)
        return load_source(data_cfg)

    def _put(self, bank):
        """The images of an in-memory bank on every device; None for a streamed set."""
        return None if self.streaming else parallel.put_global(bank.images, self.replicated)

    def init_state(self):
        first = self.bank.sample(2) if self.streaming else self.bank.images[:2]
        sample = eval_batch(first, self.aug, self.size)
        if self.cfg.train.resample:  # checked on shapes only, before anything is compiled
            extra = jax.eval_shape(self.method.init, self.init_key, sample).extra
            if "pseudo_labels" not in extra:
                raise ConfigError(f"train.resample needs pseudo-labels, which method {self.cfg.method.name!r} "
                                  "does not keep; set --config.train.resample=False.")
        if self.heldout is not None and "centroids" not in jax.eval_shape(self.method.init, self.init_key, sample).extra:
            raise ConfigError(f"eval.split scores against k-means centroids, which method {self.cfg.method.name!r} "
                              "does not keep; set --config.eval.split=''.")
        return jax.jit(self.method.init, out_shardings=self.replicated)(self.init_key, sample)

    def _chunk(self, n: int) -> int:
        """Examples per embedding call: train.embed_batch_size (at most n), rounded up to split evenly
        over the devices."""
        chunk, devices = min(self.cfg.train.embed_batch_size, n), self.mesh.size
        return -(-chunk // devices) * devices

    def embed_all(self, state, embed=None, progress=None, data=None) -> jax.Array:
        """(N, D) features of a whole data set, in fixed-size chunks so one compiled function serves.

        `data` is (source, device images), the training set by default, or `self.heldout`;
        `embed(state, images, indices)` (jitted) replaces the method's features, the default;
        `progress(done, total)` is called after each chunk.
        """
        source, images = data or (self.bank, self.images)
        if self.streaming:
            return self._embed_stream(state, source, embed, progress)
        embed = embed or self._embed
        n = source.num_examples
        chunk = self._chunk(n)
        feats = []
        for start in range(0, n, chunk):
            idx = np.minimum(np.arange(start, start + chunk), n - 1)  # pad the last chunk
            feats.append(embed(state, images, parallel.put_global(idx, self.sharded)))
            if progress is not None:
                progress(min(start + chunk, n), n)
        return jnp.concatenate(feats)[:n]

    def _embed_stream(self, state, source, embed, progress) -> jax.Array:
        """embed_all of a streamed data set: every host embeds its own shard, in chunks padded to one
        shape and one count on all hosts; the rows are then put in example-id order."""
        n, hosts = source.num_examples, jax.process_count()
        local = self._chunk(n) // hosts
        calls = -(-max(source.shard_sizes()) // local)  # the same number of calls on every host
        batches = source.eval_batches(local)
        feats, ids = [], []
        for call in range(calls):
            part_ids, part = next(batches, (np.zeros((0,), np.int32), None))
            pad = local - len(part_ids)
            if part is None:
                part = np.zeros((local,) + source.image_shape, np.uint8)
            elif pad:
                part = np.concatenate([part, np.repeat(part[-1:], pad, axis=0)])
            part_ids = np.concatenate([part_ids, np.full((pad,), n, np.int32)])  # id n: dropped below
            batch = jax.make_array_from_process_local_data(self.sharded, part)
            if embed is None:
                feats.append(self._embed_batch(state, batch))
            else:
                rows = np.arange(local, dtype=np.int32) + jax.process_index() * local  # this host's rows
                feats.append(embed(state, batch, jax.make_array_from_process_local_data(self.sharded, rows)))
            ids.append(jax.make_array_from_process_local_data(self.sharded, part_ids))
            if progress is not None:
                progress(min((call + 1) * local * hosts, n), n)
        feats, ids = jnp.concatenate(feats), jnp.concatenate(ids)
        return jnp.zeros((n, feats.shape[-1]), feats.dtype).at[ids].set(feats, mode="drop")

    def e_step(self, state, epoch: int):
        """The method's E-step over the whole data set; then a metrics record of its labels."""
        t0 = time.time()
        feats = self.embed_all(state)
        state, labels, info = self.method.cluster(state, feats, jax.random.fold_in(self.cluster_key, epoch))
        labels = parallel.to_host(labels)
        record = {"epoch": epoch, "step": int(state.step)}
        if self.bank.labels is not None:
            record.update(metrics.cluster_metrics(self.bank.labels, labels, acc_rule=self.cfg.eval.acc_rule))
        if self.heldout is not None:  # held-out images to the nearest of the E-step's centroids
            heldout_labels, _ = kmeans.assign(self.embed_all(state, data=self.heldout), state.extra["centroids"],
                                              self.cfg.kmeans.chunk_size)
            scores = metrics.cluster_metrics(self.heldout[0].labels, parallel.to_host(heldout_labels),
                                             acc_rule=self.cfg.eval.acc_rule)
            record.update({f"val_{k}": v for k, v in scores.items()})
        record.update(
            uniformity=float(metrics.uniformity(feats)),
            imbalance=float(metrics.imbalance(labels, self.cfg.cluster.num_clusters)),
            **info,
            e_step_seconds=round(time.time() - t0, 3),
        )
        return state, record

    def train_epoch(self, state, epoch: int, done: dict | None = None, save_steps=None):
        """One epoch of training steps (0-based `epoch`) -> (state, {loss: epoch mean, lr: last}).

        `done` ({"step_in_epoch", "losses", "lr"}, from a mid-epoch checkpoint) skips the steps already
        taken: the epoch's batch order and step keys are pure functions of (seed, epoch, step).
        `save_steps(state, done)` is called every `train.checkpoint_every_steps` global steps.
        """
        done = done or {"step_in_epoch": 0, "losses": [], "lr": None}
        batch_size, first, steps = self.cfg.train.batch_size, done["step_in_epoch"], self.steps_per_epoch
        every = self.cfg.train.checkpoint_every_steps
        history = []

        if not self.streaming:
            balance_by = parallel.to_host(state.extra["pseudo_labels"]) if self.cfg.train.resample else None
            order = epoch_batches(self.data_key, epoch, self.bank.num_examples, batch_size, balance_by)

        def feeds():
            """(compiled step, its batch arguments) for the epoch's steps from `first` on."""
            if self.streaming:  # each host's share of the batch, assembled into one global array
                for ids, images in self.bank.train_batches(epoch, batch_size, self.cfg.seed, skip=first):
                    yield self._step_on_batch, (jax.make_array_from_process_local_data(self.sharded, images),
                                                jax.make_array_from_process_local_data(self.sharded, ids))
            else:
                for indices in order[first:]:
                    yield self._step, (self.images, parallel.put_global(indices, self.sharded))

        def so_far(step_in_epoch):
            """The epoch's losses up to here (one host sync), checked finite: no checkpoint of a broken state."""
            fetched = jax.device_get(history)
            losses = done["losses"] + [float(h["loss"]) for h in fetched]
            bad = np.flatnonzero(~np.isfinite(losses))
            if bad.size:
                terms = {k: float(v) for k, v in fetched[bad[0] - done["step_in_epoch"]].items() if k.endswith("loss")}
                raise FloatingPointError(
                    f"non-finite loss at epoch {epoch + 1}, step {epoch * steps + bad[0] + 1}: {terms}; "
                    "the last good checkpoint is kept."
                )
            lr = float(fetched[-1]["lr"]) if fetched else done["lr"]
            return {"step_in_epoch": step_in_epoch, "losses": losses, "lr": lr}

        for i, (step, batch) in enumerate(feeds(), start=first):
            global_step = epoch * steps + i
            state, m = step(state, *batch, jax.random.fold_in(self.train_key, global_step))
            history.append(m)
            if save_steps is not None and every and (global_step + 1) % every == 0:
                save_steps(state, so_far(i + 1))
        result = so_far(steps)
        return state, {"loss": float(np.mean(np.asarray(result["losses"], np.float32))), "lr": result["lr"]}


def restore_state(run: _Run, epoch: int | None = None):
    """(state, meta) of the checkpoint of `epoch` (default: the last) in `run.workdir`."""
    checkpointer = Checkpointer(run.workdir, max_to_keep=run.cfg.train.checkpoints_to_keep)
    try:
        available = checkpointer.all_epochs()
        if not available:
            raise FileNotFoundError(f"no checkpoint in {run.workdir / 'checkpoints'}; train there first.")
        epoch = available[-1] if epoch is None else epoch
        if epoch not in available:
            raise FileNotFoundError(f"no checkpoint of epoch {epoch} in {run.workdir}; available: {available}.")
        return checkpointer.restore(epoch, run.init_state())
    finally:
        checkpointer.close()


def _restore_newest_loadable(checkpoints: list[tuple], like_state):
    """(state, meta) of the newest checkpoint that loads, or (like_state, None) when there is none.

    `checkpoints` is [(checkpointer, number, position)]; position orders them across the epoch and
    the step checkpoints. orbax only lists complete checkpoints; one damaged afterwards is skipped
    with a warning."""
    for checkpointer, number, _ in sorted(checkpoints, key=lambda c: c[2], reverse=True):
        try:
            return checkpointer.restore(number, like_state)
        except Exception as error:  # noqa: BLE001 - any unreadable checkpoint falls back to an older one
            log(f"warning: the checkpoint {checkpointer.directory.name}/{number} cannot be read "
                f"({type(error).__name__}: {str(error)[:200]}); trying an older one.")
    return like_state, None


def _resume(run: _Run, checkpointer: Checkpointer, step_checkpointer: Checkpointer | None):
    """(state, records, epochs done, wall seconds so far, steps done of the next epoch or None) from the
    newest loadable checkpoint; from scratch, the initial state after its E-step."""
    workdir, epochs, steps = run.workdir, run.cfg.train.epochs, run.steps_per_epoch
    # Position of a checkpoint in the run, (epochs complete, steps into the next epoch): epoch e's
    # checkpoint follows its E-step, so it comes after the step checkpoint of e's last step.
    candidates = [(checkpointer, e, (e, 0)) for e in checkpointer.all_epochs()]
    if step_checkpointer is not None:
        candidates += [(step_checkpointer, g, ((g - 1) // steps, g - (g - 1) // steps * steps))
                       for g in step_checkpointer.all_epochs()]
    state = run.init_state()
    state, meta = _restore_newest_loadable(candidates, state)
    done = None  # steps of a partly trained epoch, from a step checkpoint
    if meta is not None:
        start_epoch, elapsed = meta["epoch"], meta["wall_seconds"]
        records = _read_records(run.workdir / METRICS_FILE, start_epoch)
        if "step_in_epoch" in meta:
            done = {k: meta[k] for k in ("step_in_epoch", "losses", "lr")}
            log(f"resumed from the checkpoint of step {int(state.step)} (epoch {start_epoch + 1}, "
                f"step {done['step_in_epoch']} of {steps}) in {workdir}")
        else:
            log(f"resumed from the checkpoint of epoch {start_epoch} in {workdir}")
    else:
        start_epoch, elapsed = 0, 0.0
        state, record = run.e_step(state, 0)  # official: k-means on the random network before epoch 1
        record["loss"] = None
        records = [record]
        log(f"epoch 0/{epochs} | E-step on the initial network | {_format(record)}")  # k-means or own labels
    return state, records, start_epoch, elapsed, done


def _read_records(path: Path, up_to_epoch: int) -> list[dict]:
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["epoch"] <= up_to_epoch]


def _write_records(path: Path, records: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    tmp.replace(path)


def _format(record: dict) -> str:
    keys = ("nmi", "acc", "ari", "uniformity", "imbalance")
    return " ".join(f"{k} {record[k]:.4f}" for k in keys if k in record)


class WorkdirError(RuntimeError):
    """The workdir cannot be used: not writable, nearly full, or holding a different run."""


# Keys that make a checkpoint unusable for another config: the state's shapes depend on them.
RUN_IDENTITY = ("method.name", "model.backbone", "model.width", "model.stem", "model.convnet_widths",
                "model.projector_dim", "model.projector_hidden", "model.predictor_hidden",
                "data.source", "data.name", "cluster.num_clusters")
MIN_FREE_BYTES = 200 * 2**20


def check_workdir(cfg, workdir: Path) -> None:
    """Fails early, with one sentence, if `workdir` cannot hold this run; writes nothing in it."""
    target = workdir
    while not target.exists():  # the nearest existing ancestor decides writability and free space
        target = target.parent
    if not target.is_dir():
        raise WorkdirError(f"workdir {str(workdir)!r} cannot be created: {str(target)!r} is a file; choose another --workdir.")
    if not os.access(target, os.W_OK | os.X_OK):
        raise WorkdirError(f"workdir {str(workdir)!r} is not writable ({str(target)!r} is read-only); choose another --workdir.")
    free = shutil.disk_usage(target).free
    if free < MIN_FREE_BYTES:
        raise WorkdirError(
            f"only {free / 2**20:.0f} MiB free under {str(target)!r}; free some space or choose another --workdir."
        )
    saved = workdir / CONFIG_FILE
    if saved.exists():
        before = json.loads(saved.read_text())
        now = json.loads(cfg.to_json_best_effort())
        for key in RUN_IDENTITY:
            section, name = key.split(".")
            old, new = before.get(section, {}).get(name), now.get(section, {}).get(name)
            if old is not None and old != new:
                raise WorkdirError(
                    f"workdir {str(workdir)!r} holds a run with {key}={old!r}, this config has {new!r}; "
                    "use another --workdir (or the config of that run to resume it)."
                )


def train_and_evaluate(cfg, workdir: str | Path) -> dict:
    """Trains `cfg` in `workdir`, resuming from its last checkpoint; returns the summary dict."""
    start_time = time.time()
    workdir = Path(workdir)
    run = _Run(cfg, workdir)  # loads and validates everything before any compilation
    check_workdir(cfg, workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    metrics_path = workdir / METRICS_FILE
    main = parallel.is_main_process()
    if main and not (workdir / CONFIG_FILE).exists():  # the run's config, for launch/evaluate.py
        (workdir / CONFIG_FILE).write_text(cfg.to_json_best_effort(indent=2) + "\n")
    epochs, every = cfg.train.epochs, cfg.cluster.every
    log(
        f"jaxclust: {cfg.method.name} on {run.bank.name} ({run.bank.num_examples} images "
        f"{'x'.join(map(str, run.bank.image_shape))}), {epochs} epochs x {run.steps_per_epoch} steps, "
        f"batch {cfg.train.batch_size}, {jax.device_count()} device(s)"
    )

    # On any exit, an error included, the checkpoint writes in flight complete before the process ends.
    with contextlib.ExitStack() as stack:
        keep = cfg.train.checkpoints_to_keep
        checkpointer = stack.enter_context(closing(Checkpointer(workdir, max_to_keep=keep)))
        step_checkpointer = None
        if cfg.train.checkpoint_every_steps or (workdir / STEP_CHECKPOINTS).is_dir():
            step_checkpointer = stack.enter_context(closing(Checkpointer(workdir, 1, STEP_CHECKPOINTS)))
        state, records, start_epoch, elapsed, done = _resume(run, checkpointer, step_checkpointer)
        if main:
            _write_records(metrics_path, records)
            events = stack.enter_context(closing(EventWriter.rewrite(workdir / TENSORBOARD_DIR, records)))
        elapsed -= time.time()  # wall time counts across resumes

        for epoch in range(start_epoch + 1, epochs + 1):
            t0 = time.time()

            def save_steps(state, done, epoch=epoch):
                meta = {"epoch": epoch - 1, **done, "wall_seconds": elapsed + time.time()}
                step_checkpointer.save(int(state.step), state, meta)

            state, train_stats = run.train_epoch(state, epoch - 1, done, save_steps if step_checkpointer else None)
            done = None
            is_last = epoch == epochs
            if epoch % every == 0 or is_last:
                state, record = run.e_step(state, epoch)
                record.update(train_stats)
                records.append(record)
                if main:
                    with metrics_path.open("a") as f:
                        f.write(json.dumps(record) + "\n")
                    events.write(record)
            if epoch % cfg.train.log_every_epochs == 0 or is_last or epoch == start_epoch + 1:
                scores = _format(records[-1]) if records[-1]["epoch"] == epoch else ""
                log(
                    f"epoch {epoch}/{epochs} | step {int(state.step)} | loss {train_stats['loss']:.4f} "
                    f"| lr {train_stats['lr']:.4g} | {time.time() - t0:.1f}s | {scores}"
                )
            if epoch % cfg.train.checkpoint_every_epochs == 0 or is_last:
                checkpointer.save(epoch, state, {"epoch": epoch, "wall_seconds": elapsed + time.time()})

    final = records[-1]
    summary = {
        **{k: v for k, v in final.items() if k != "e_step_seconds"},
        "method": cfg.method.name,
        "data": run.bank.name,
        "num_examples": run.bank.num_examples,
        "epochs": epochs,
        "wall_seconds": round(elapsed + time.time(), 2),
        "session_seconds": round(time.time() - start_time, 2),
    }
    if main:
        (workdir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    log(f"done in {summary['wall_seconds']:.0f}s: {_format(final)}; summary in {workdir / SUMMARY_FILE}")
    return summary


def dry_run(cfg) -> dict:
    """Everything a run does before training, with nothing compiled: checks the config, loads the data
    set (a streaming one is indexed and one batch decoded), builds the method and traces its init and
    one training step with `jax.eval_shape`. Raises ConfigError / DataError as a run would; returns a
    summary (data set, images, parameter count)."""
    validate_config(cfg, device_count=jax.device_count())
    aug, views, size = AugmentConfig.from_config(cfg.augment), view_configs(cfg.augment), cfg.data.image_size
    if cfg.data.streaming:
        from jaxclust.data.streaming import StreamingSource

        data = StreamingSource(cfg.data)
        sample = data.sample(2)
    else:
        data = load_source(cfg.data)
        sample = data.images[:2]
    validate_data(cfg, data)
    n, batch = data.num_examples, cfg.train.batch_size
    method = build_method(cfg, n, n // batch)
    key = jax.random.key(cfg.seed)
    images = jax.ShapeDtypeStruct((batch,) + tuple(sample.shape[1:]), jnp.uint8)
    indices = jax.ShapeDtypeStruct((batch,), jnp.int32)
    state = jax.eval_shape(lambda s: method.init(key, eval_batch(s, aug, size)), sample)
    v1, v2 = jax.eval_shape(lambda im, i: two_views(key, im, i, views, size), images, indices)
    jax.eval_shape(lambda st, a, b, i: method.train_step(st, a, b, i, key), state, v1, v2, indices)
    return {
        "data": cfg.data.name, "source": cfg.data.source, "streaming": bool(cfg.data.streaming),
        "num_examples": n, "stored_shape": list(sample.shape[1:]), "view_shape": list(v1.shape[1:]),
        "labelled": getattr(data, "labels", None) is not None,
        "params": int(sum(np.prod(x.shape) for x in jax.tree.leaves(state.params))),
        "steps_per_epoch": n // batch,
    }
