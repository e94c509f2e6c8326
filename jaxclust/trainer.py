"""The training loop. It knows no method and no data source in particular: a method gives it the
`Method` record (`jaxclust.methods`), a feeder its batches (`jaxclust.data.feeder`). It reads top to
bottom: `train_and_evaluate` is the whole run (DESIGN.md, "The ProPos loop"),

    check the config; mesh, data, method (`Run`); resume or init + E-step on the initial network
    for each epoch: for each batch: state = train_step(state, two augmented views, indices)
                    every `cluster.every` epochs: labels = E-step(state); log metrics
                    checkpoint

and the pieces follow in the order it uses them.
"""
from __future__ import annotations

import contextlib
import json
import time
from contextlib import closing
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxclust import kmeans, methods, metrics, models, optim, parallel
from jaxclust.checkpoint import (Checkpointer, leaf_specs, restore_first_readable, restore_readable,
                                 structure_differences)
from jaxclust.config import ConfigError, choose, validate_config, validate_data
from jaxclust.data import augment
from jaxclust.data.augment import AugmentConfig, augment_batch, eval_batch, view_configs
from jaxclust.data.feeder import embed_chunk, make_feeder
from jaxclust.evaluate.tensorboard import DIRNAME as TENSORBOARD_DIR, EventWriter
from jaxclust.progress import StepProgress
from jaxclust.workdir import (METRICS_FILE, STEP_CHECKPOINTS, SUMMARY_FILE, WorkdirError, check_resume_config,
                              check_workdir, read_metrics, record_config)


def log(message: str) -> None:
    if parallel.is_main_process():
        print(message, flush=True)


def train_and_evaluate(cfg, workdir: str | Path, accept_config_change: bool = False) -> dict:
    """Trains `cfg` in `workdir`, resuming from its last checkpoint; returns the summary dict. A resume
    with a config that changes what the run computes is refused unless `accept_config_change`
    (`jaxclust.workdir`)."""
    start_time = time.time()
    workdir = Path(workdir)
    check_workdir(workdir)
    changes = check_resume_config(cfg, workdir, accept_config_change)
    run = Run(cfg, workdir)  # checks the config, loads the data, builds the method; nothing compiled yet
    workdir.mkdir(parents=True, exist_ok=True)
    metrics_path = workdir / METRICS_FILE
    main = parallel.is_main_process()
    epochs, every, data = cfg.train.epochs, cfg.cluster.every, run.dataset
    log(
        f"jaxclust: {cfg.method.name} on {data.name} ({data.num_examples} images "
        f"{'x'.join(map(str, data.image_shape))}), {epochs} epochs x {run.steps_per_epoch} steps, "
        f"batch {cfg.train.batch_size}, {jax.device_count()} device(s)"
    )

    # On any exit, an error included, the checkpoint writes in flight complete before the process ends.
    with contextlib.ExitStack() as stack:
        checkpointer = stack.enter_context(closing(Checkpointer(workdir, max_to_keep=cfg.train.checkpoints_to_keep)))
        step_checkpointer = None
        if cfg.train.checkpoint_every_steps or (workdir / STEP_CHECKPOINTS).is_dir():
            step_checkpointer = stack.enter_context(closing(Checkpointer(workdir, 1, STEP_CHECKPOINTS)))
        state, labels, records, start_epoch, elapsed, done = _resume(run, checkpointer, step_checkpointer)
        if changes:
            log("config changed on resume: " + "; ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items())
                + " (recorded in config_history.jsonl)")
        if main:  # the config the run goes on with, for launch/evaluate.py and jaxclust.load
            record_config(cfg, workdir, changes, start_epoch if changes else None)
            _write_records(metrics_path, records)
            events = stack.enter_context(closing(EventWriter.rewrite(workdir / TENSORBOARD_DIR, records)))
        elapsed -= time.time()  # wall time counts across resumes
        progress = StepProgress(log, run.steps_per_epoch, epochs * run.steps_per_epoch, cfg.train.batch_size,
                                cfg.train.progress_seconds)

        for epoch in range(start_epoch + 1, epochs + 1):
            t0 = time.time()

            def save_steps(state, done, epoch=epoch):
                meta = {"epoch": epoch - 1, **done, "wall_seconds": elapsed + time.time(), **run.identity}
                step_checkpointer.save(int(state.step), state, meta, labels)

            state, train_stats = run.train_epoch(state, epoch - 1, done, save_steps if step_checkpointer else None,
                                                 progress)
            done = None
            is_last = epoch == epochs
            record = {"epoch": epoch, "step": int(state.step)}  # one per epoch; E-step scores where one ran
            if epoch % every == 0 or is_last:
                previous = labels
                state, labels, e_record = run.e_step(state, epoch)
                record.update(e_record)
                if previous is not None:  # how much the clusters moved since the last E-step; no ground truth needed
                    record["nmi_previous"] = metrics.partition_nmi(previous, labels)
            record.update(train_stats)
            records.append(record)
            if main:
                with metrics_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                events.write(record)
            if epoch % cfg.train.log_every_epochs == 0 or is_last or epoch == start_epoch + 1 or progress.due():
                e_step = f" (E-step {record['e_step_seconds']:.2f}s)" if "e_step_seconds" in record else ""
                left = progress.run_left(int(state.step))
                log(" | ".join(part for part in (
                    f"epoch {epoch}/{epochs}", f"step {int(state.step)}", f"loss {train_stats['loss']:.4f}",
                    f"lr {train_stats['lr']:.4g}", f"{time.time() - t0:.1f}s{e_step}", _format(record),
                    f"run ends in about {left}" if left and not is_last else "") if part))
                progress.printed()
            if epoch % cfg.train.checkpoint_every_epochs == 0 or is_last:
                meta = {"epoch": epoch, "wall_seconds": elapsed + time.time(), **run.identity}
                checkpointer.save(epoch, state, meta, labels)

    final = records[-1]
    summary = {
        **{k: v for k, v in final.items() if k != "e_step_seconds"},
        "method": cfg.method.name,
        "data": data.name,
        "num_examples": data.num_examples,
        "epochs": epochs,
        "wall_seconds": round(elapsed + time.time(), 2),
        "session_seconds": round(time.time() - start_time, 2),
    }
    if main:
        (workdir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    log(f"done in {summary['wall_seconds']:.0f}s: {_format(final)}; summary in {workdir / SUMMARY_FILE}")
    return summary


def check_config(cfg, device_count: int = 1):
    """The one gate: every check of every section (the method's, the augmentation's and the
    optimiser's included), before any data is read or code compiled; ConfigError for the first value
    that cannot work. Returns the method's module."""
    method = methods.get(cfg.method.name)
    choose(cfg, "model.backbone", models.BACKBONES)
    if "convnet_pool" in cfg.model:
        choose(cfg, "model.convnet_pool", models.CONVNET_POOLS)
    validate_config(cfg, device_count)
    augment.validate(cfg)
    optim.validate(cfg)
    method.validate(cfg)
    return method


def two_views(key, images, indices, aug, size: int):
    """Two augmented views; each image's randomness comes from (step key, example index, view).
    `aug` is one AugmentConfig for both views, or a pair (view 1, view 2), see `view_configs`."""
    augs = (aug, aug) if isinstance(aug, AugmentConfig) else tuple(aug)
    example_keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(indices)
    view_keys = [jax.vmap(lambda k, v=v: jax.random.fold_in(k, v))(example_keys) for v in (1, 2)]
    return [augment_batch(k, images, a, size) for k, a in zip(view_keys, augs)]


class Run:
    """The pieces of one run, built once: mesh, data, method and the compiled step and embedding.

    Attributes: cfg, workdir, mesh, feeder (`jaxclust.data.feeder`), dataset (its source: name,
    num_examples, labels, class_names, image_shape), heldout (the `eval.split` feeder or None), method
    (`Method`), steps_per_epoch, aug / views / size (the augmentation), identity (what a checkpoint
    must share with this run besides its state's structure). Compiled (jit is lazy: nothing compiles
    until first called): `step(state, images, indices, key)` -> (state, metrics), `embed(state,
    images)` -> features.
    """

    def __init__(self, cfg, workdir: str | Path | None = None, mesh=None):
        self.cfg, self.workdir = cfg, None if workdir is None else Path(workdir)
        self.mesh = parallel.make_mesh() if mesh is None else mesh
        self.replicated = parallel.replicated(self.mesh)
        check_config(cfg, device_count=self.mesh.size)
        root = jax.random.key(cfg.seed)
        self.init_key, self.data_key, self.train_key, self.cluster_key = (jax.random.fold_in(root, i) for i in range(4))

        self.feeder = self._feeder(cfg.data)
        self.dataset = self.feeder.source
        validate_data(cfg, self.dataset)
        self.heldout = None  # eval.split: scored at every E-step against the method's centroids
        if cfg.eval.split:
            heldout_cfg = ml_collections.ConfigDict(cfg.data.to_dict())
            heldout_cfg.split, heldout_cfg.imbalance_ratio, heldout_cfg.unlabelled = cfg.eval.split, 1.0, False
            self.heldout = self._feeder(heldout_cfg)
            if self.heldout.source.labels is None:
                raise ConfigError(f"eval.split={cfg.eval.split!r} has no labels to score; set --config.eval.split=''.")
        n = self.dataset.num_examples
        self.steps_per_epoch = n // cfg.train.batch_size
        self.identity = {"data": {"name": self.dataset.name, "num_examples": n}}

        self.method = method = methods.build_method(cfg, n, self.steps_per_epoch)
        if cfg.train.resample and method.pseudo_labels is None:
            raise ConfigError(f"train.resample needs pseudo-labels, which method {cfg.method.name!r} "
                              "does not keep; set --config.train.resample=False.")
        if self.heldout is not None and method.centroids is None:
            raise ConfigError(f"eval.split scores against the method's centroids, which method {cfg.method.name!r} "
                              "does not keep; set --config.eval.split=''.")

        self.aug, self.views, self.size = AugmentConfig.from_config(cfg.augment), view_configs(cfg.augment), cfg.data.image_size
        self.step = jax.jit(self.augment_and_step, donate_argnums=0)
        self.embed = jax.jit(lambda state, images: method.embed(state, eval_batch(images, self.aug, self.size)))

    def _feeder(self, data_cfg):
        return make_feeder(data_cfg, self.mesh, self.cfg.train.batch_size, self.data_key, self.cfg.seed)

    def augment_and_step(self, state, images, indices, key):
        """The training step on a uint8 batch: two augmented views, then the method's step."""
        v1, v2 = two_views(key, images, indices, self.views, self.size)
        return self.method.train_step(state, v1, v2, indices, key)

    def sample_images(self):
        """Two stored images, preprocessed as the network sees them: what the method's init traces."""
        return eval_batch(self.feeder.sample(2), self.aug, self.size)

    def init_state(self):
        return jax.jit(self.method.init, out_shardings=self.replicated)(self.init_key, self.sample_images())

    def embed_all(self, state, embed=None, progress=None, feeder=None) -> jax.Array:
        """(N, D) features of a whole data set, in chunks of one shape so one compiled function serves.

        `feeder` is the training set's by default, or `self.heldout`; `embed(state, images)` (jitted)
        replaces the method's features, the default; `progress(done, total)` is called after each chunk.
        """
        feeder = feeder or self.feeder
        embed = embed or self.embed
        n = feeder.source.num_examples
        chunk = embed_chunk(self.cfg.train.embed_batch_size, n, self.mesh.size)
        feats, ids = [], []
        for images, rows in feeder.eval_batches(chunk):
            feats.append(embed(state, images))
            ids.append(rows)
            if progress is not None:
                progress(min(len(ids) * chunk, n), n)
        feats, ids = jnp.concatenate(feats), jnp.concatenate(ids)
        return jnp.zeros((n, feats.shape[-1]), feats.dtype).at[ids].set(feats, mode="drop")  # padding: id n

    def e_step(self, state, epoch: int):
        """The method's E-step over the whole data set -> (state, its labels (N,) on the host, a metrics
        record of them)."""
        t0 = time.time()
        feats = self.embed_all(state)
        state, labels, info = self.method.cluster(state, feats, jax.random.fold_in(self.cluster_key, epoch))
        labels = parallel.to_host(labels)
        record = {"epoch": epoch, "step": int(state.step)}
        if self.dataset.labels is not None:
            record.update(metrics.cluster_metrics(self.dataset.labels, labels, acc_rule=self.cfg.eval.acc_rule))
        if self.heldout is not None:  # held-out images to the nearest of the E-step's centroids
            heldout_labels, _ = kmeans.assign(self.embed_all(state, feeder=self.heldout), self.method.centroids(state),
                                              self.cfg.kmeans.chunk_size)
            scores = metrics.cluster_metrics(self.heldout.source.labels, parallel.to_host(heldout_labels),
                                             acc_rule=self.cfg.eval.acc_rule)
            record.update({f"val_{k}": v for k, v in scores.items()})
        record.update(
            uniformity=float(metrics.uniformity(feats)),
            imbalance=float(metrics.imbalance(labels, self.cfg.cluster.num_clusters)),
            **info,
            e_step_seconds=round(time.time() - t0, 3),
        )
        return state, labels, record

    def train_epoch(self, state, epoch: int, done: dict | None = None, save_steps=None, progress=None):
        """One epoch of training steps (0-based `epoch`) -> (state, {every metric of the method's step:
        its epoch mean (the loss and each of its terms); the schedules' values (lr, ...): the last}).

        `done` ({"step_in_epoch", "terms", "lr"}, from a mid-epoch checkpoint) skips the steps already
        taken: the epoch's batch order and step keys are pure functions of (seed, epoch, step).
        `save_steps(state, done)` is called every `train.checkpoint_every_steps` global steps, and
        `progress.step(...)` (a `jaxclust.progress.StepProgress`) after each step.
        """
        done = _done_so_far(done)
        first, steps, every = done["step_in_epoch"], self.steps_per_epoch, self.cfg.train.checkpoint_every_steps
        balance_by = parallel.to_host(self.method.pseudo_labels(state)) if self.cfg.train.resample else None
        history = []

        def so_far(step_in_epoch):
            """The epoch's metrics up to here (one host sync), the loss checked finite: no checkpoint of a
            broken state."""
            fetched = [{k: float(v) for k, v in h.items()} for h in jax.device_get(history)]
            terms = {k: done["terms"].get(k, []) + [h[k] for h in fetched]
                     for k in (fetched[0] if fetched else done["terms"]) if k not in SCHEDULE_METRICS}
            bad = np.flatnonzero(~np.isfinite(terms["loss"])) if "loss" in terms else []
            if len(bad):
                at = fetched[bad[0] - done["step_in_epoch"]]
                raise FloatingPointError(
                    f"non-finite loss at epoch {epoch + 1}, step {epoch * steps + bad[0] + 1}: "
                    f"{ {k: v for k, v in at.items() if k.endswith('loss')} }; the last good checkpoint is kept."
                )
            last = fetched[-1] if fetched else done
            return {"step_in_epoch": step_in_epoch, "terms": terms,
                    **{k: last[k] for k in SCHEDULE_METRICS if last.get(k) is not None}}

        if progress is not None:
            progress.before_first()
        for i, (images, indices) in enumerate(self.feeder.train_batches(epoch, first, balance_by), start=first):
            global_step = epoch * steps + i
            state, m = self.step(state, images, indices, jax.random.fold_in(self.train_key, global_step))
            history.append(m)
            if progress is not None:
                progress.step(epoch + 1, self.cfg.train.epochs, i + 1, global_step + 1, m["loss"])
            if save_steps is not None and every and (global_step + 1) % every == 0:
                save_steps(state, so_far(i + 1))
        result = so_far(steps)
        means = {k: float(np.mean(np.asarray(v, np.float32))) for k, v in result["terms"].items()}
        return state, {**means, **{k: result[k] for k in SCHEDULE_METRICS if k in result}}


SCHEDULE_METRICS = ("lr", "ema_momentum")  # a step's schedule values: an epoch reports its last, not a mean


def _done_so_far(done: dict | None) -> dict:
    """The steps of an epoch a mid-epoch checkpoint had taken; {"losses": [...]} of older checkpoints
    reads as the total loss's terms."""
    if not done:
        return {"step_in_epoch": 0, "terms": {}}
    if "terms" not in done:
        done = {**done, "terms": {"loss": done.get("losses", [])}}
    return done


def restore_state(run: Run, epoch: int | None = None):
    """(state, meta) of the checkpoint of `epoch` in `run.workdir`; by default of the newest one that
    can be read (each newer one that cannot is named in a warning)."""
    checkpointer = Checkpointer(run.workdir, max_to_keep=run.cfg.train.checkpoints_to_keep)
    try:
        like = run.init_state()
        _, _, state, meta, _ = restore_readable(checkpointer, epoch, like, "--checkpoint=EPOCH",
                                                lambda c, n: check_compatible(run, c, n, like), log)
        return state, meta
    finally:
        checkpointer.close()


def check_compatible(run: Run, checkpointer: Checkpointer, number: int, like_state) -> None:
    """WorkdirError unless checkpoint `number` holds a state of this run's structure
    (`check_compatible_structure`) trained on the same data set."""
    check_compatible_structure(checkpointer, number, like_state)
    where = f"{checkpointer.directory}/{number}"
    try:
        data = checkpointer.saved_meta(number).get("data")
    except Exception:  # noqa: BLE001 - unreadable meta: the restore will say so, and fall back
        return
    if data is not None and data != run.identity["data"]:
        raise WorkdirError(f"the checkpoint {where} was trained on {data}, this config reads {run.identity['data']}: "
                           "use another --workdir, or the data of that run to resume it.")


def check_compatible_structure(checkpointer: Checkpointer, number: int, like_state) -> None:
    """WorkdirError unless checkpoint `number` holds a state of `like_state`'s structure (every leaf's
    path, shape and dtype): a config that changes the state's shapes (network sizes, cluster counts,
    queue sizes, ...) cannot resume or load another run's checkpoints. The differing leaves are named."""
    try:
        saved = checkpointer.saved_structure(number)
    except Exception:  # noqa: BLE001 - unreadable metadata: the restore will say so, and fall back
        return
    differences = structure_differences(saved, leaf_specs(jax.eval_shape(lambda: like_state)))
    if differences:
        raise WorkdirError(
            f"the checkpoint {checkpointer.directory}/{number} holds a state of another structure than this "
            f"config's ({'; '.join(differences)}): use another --workdir, or the config of that run (its "
            "config.json) to resume it."
        )


def _resume(run: Run, checkpointer: Checkpointer, step_checkpointer: Checkpointer | None):
    """(state, last E-step labels, records, epochs done, wall seconds so far, steps done of the next
    epoch or None) from the newest loadable checkpoint; from scratch, the initial state after its E-step."""
    workdir, epochs, steps = run.workdir, run.cfg.train.epochs, run.steps_per_epoch
    # Position of a checkpoint in the run, (epochs complete, steps into the next epoch): epoch e's
    # checkpoint follows its E-step, so it comes after the step checkpoint of e's last step.
    candidates = [(checkpointer, e, (e, 0)) for e in checkpointer.all_epochs()]
    if step_checkpointer is not None:
        candidates += [(step_checkpointer, g, ((g - 1) // steps, g - (g - 1) // steps * steps))
                       for g in step_checkpointer.all_epochs()]
    state, meta, labels = run.init_state(), None, None
    if candidates:  # newest first; one of another run stops the run, an unreadable one is skipped
        candidates = [(c, n) for c, n, _ in sorted(candidates, key=lambda c: c[2], reverse=True)]
        found = restore_first_readable(candidates, state, log, lambda c, n: check_compatible(run, c, n, state))
        if found is None:  # a fresh start would overwrite the run's metrics.jsonl: the user decides
            raise WorkdirError(f"none of the {len(candidates)} checkpoints in {str(workdir)!r} can be read; move "
                               "them away (or the whole workdir) to start afresh, or use another --workdir.")
        used, number, state, meta, labels = found
        for c, n in candidates[:candidates.index((used, number))]:  # newer, unreadable: make room for new ones
            log(f"set the unreadable checkpoint {c.directory.name}/{n} aside as {c.set_aside(n).name}")
    done = None  # steps of a partly trained epoch, from a step checkpoint
    if meta is not None:
        start_epoch, elapsed = meta["epoch"], meta["wall_seconds"]
        records = [r for r in read_metrics(run.workdir) if r["epoch"] <= start_epoch]
        if "step_in_epoch" in meta:
            done = {k: meta[k] for k in ("step_in_epoch", "terms", "losses", *SCHEDULE_METRICS) if k in meta}
            log(f"resumed from the checkpoint of step {int(state.step)} (epoch {start_epoch + 1}, "
                f"step {done['step_in_epoch']} of {steps}) in {workdir}")
        else:
            log(f"resumed from the checkpoint of epoch {start_epoch} in {workdir}")
    else:
        start_epoch, elapsed = 0, 0.0
        state, labels, record = run.e_step(state, 0)  # official: k-means on the random network before epoch 1
        record["loss"] = None
        records = [record]
        log(f"epoch 0/{epochs} | E-step on the initial network | {_format(record)}")  # k-means or own labels
    return state, labels, records, start_epoch, elapsed, done


def _write_records(path: Path, records: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    tmp.replace(path)


def _format(record: dict) -> str:
    keys = ("nmi", "acc", "ari", "uniformity", "imbalance", "nmi_previous")
    return " ".join(f"{k} {record[k]:.4f}" for k in keys if k in record)


def dry_run(cfg) -> dict:
    """Everything a run does before training, with nothing compiled: the same `Run` as training (the
    config gate, the data set loaded, or a streamed one indexed and one batch decoded, the method
    built), then the method's init and one training step traced with `jax.eval_shape`. Raises
    ConfigError / DataError as a run would; returns a summary (data set, images, parameter count). It
    never downloads: a data set that is not there is the usual DataError."""
    cfg = cfg.copy_and_resolve_references()
    with cfg.unlocked():
        cfg.data.download = False
    run = Run(cfg)
    key, data, batch = jax.random.key(cfg.seed), run.dataset, cfg.train.batch_size
    sample = run.feeder.sample(2)
    state = jax.eval_shape(run.method.init, key, run.sample_images())
    images = jax.ShapeDtypeStruct((batch,) + tuple(sample.shape[1:]), jnp.uint8)
    indices = jax.ShapeDtypeStruct((batch,), jnp.int32)
    v1, _ = jax.eval_shape(lambda im, i: two_views(key, im, i, run.views, run.size), images, indices)
    jax.eval_shape(run.augment_and_step, state, images, indices, key)
    return {
        "data": cfg.data.name, "source": cfg.data.source, "streaming": bool(cfg.data.streaming),
        "num_examples": data.num_examples, "stored_shape": list(sample.shape[1:]), "view_shape": list(v1.shape[1:]),
        "labelled": getattr(data, "labels", None) is not None,
        "params": int(sum(np.prod(x.shape) for x in jax.tree.leaves(state.params))),
        "steps_per_epoch": run.steps_per_epoch,
    }
