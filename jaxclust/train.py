"""The training loop: E-step cadence, M-step steps, metrics, checkpoints.

It knows no method in particular: a method gives it `init`, `train_step`, `embed` and
`set_pseudo_labels` (see `jaxclust.methods`). Data flow (DESIGN.md, "The ProPos loop"):

    labels = E-step(state)                      # before epoch 1 as well
    for each epoch: for each batch of indices: state = train_step(state, two views, indices)
                    every `kmeans.every` epochs: labels = E-step(state); log metrics
                    checkpoint
"""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxclust import metrics, parallel
from jaxclust.checkpoint import Checkpointer
from jaxclust.config import validate_config, validate_data
from jaxclust.data.augment import AugmentConfig, augment_batch, eval_batch
from jaxclust.data.sources import load_source
from jaxclust.methods import build_method

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"


def log(message: str) -> None:
    if parallel.is_main_process():
        print(message, flush=True)


def epoch_batches(key: jax.Array, epoch: int, num_examples: int, batch_size: int) -> np.ndarray:
    """(steps, batch) example indices of one epoch: a fresh permutation, last partial batch dropped."""
    steps = num_examples // batch_size
    order = jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)
    return np.asarray(order[: steps * batch_size]).reshape(steps, batch_size)


def two_views(key, images, indices, aug: AugmentConfig, size: int):
    """Two augmented views; each image's randomness comes from (step key, example index, view)."""
    example_keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(indices)
    view_keys = [jax.vmap(lambda k, v=v: jax.random.fold_in(k, v))(example_keys) for v in (1, 2)]
    return [augment_batch(k, images, aug, size) for k in view_keys]


class _Run:
    """The pieces of one run, built once; compiled functions are cached on it."""

    def __init__(self, cfg, workdir: Path):
        self.cfg, self.workdir = cfg, workdir
        self.mesh = parallel.make_mesh()
        validate_config(cfg, device_count=self.mesh.size)
        self.bank = load_source(cfg.data)
        validate_data(cfg, self.bank)
        n, batch = self.bank.num_examples, cfg.train.batch_size
        self.steps_per_epoch = n // batch
        self.method = build_method(cfg, n, self.steps_per_epoch)
        self.aug = AugmentConfig.from_config(cfg.augment)
        self.size = cfg.data.image_size
        root = jax.random.key(cfg.seed)
        self.init_key, self.data_key, self.train_key, self.cluster_key = (
            jax.random.fold_in(root, i) for i in range(4)
        )
        self.replicated = parallel.replicated(self.mesh)
        self.sharded = parallel.batch_sharded(self.mesh)
        self.images = jax.device_put(self.bank.images, self.replicated)

        aug, size, method = self.aug, self.size, self.method

        @functools.partial(jax.jit, donate_argnums=0)
        def step(state, images, indices, key):
            v1, v2 = two_views(key, images[indices], indices, aug, size)
            return method.train_step(state, v1, v2, indices, key)

        @jax.jit
        def embed(state, chunk):
            return method.embed(state, eval_batch(chunk, aug, size))

        self._step, self._embed = step, embed

    def init_state(self):
        sample = eval_batch(self.bank.images[:2], self.aug, self.size)
        return jax.jit(self.method.init, out_shardings=self.replicated)(self.init_key, sample)

    def embed_all(self, state) -> jax.Array:
        """(N, D) features of the whole bank, in fixed-size chunks so one compiled function serves."""
        chunk = min(self.cfg.train.embed_batch_size, self.bank.num_examples)
        n, feats = self.bank.num_examples, []
        for start in range(0, n, chunk):
            idx = np.minimum(np.arange(start, start + chunk), n - 1)  # pad the last chunk
            feats.append(self._embed(state, self.images[idx])[: min(chunk, n - start)])
        return jnp.concatenate(feats)

    def e_step(self, state, epoch: int):
        """The method's E-step over the whole data set; then a metrics record of its labels."""
        t0 = time.time()
        feats = self.embed_all(state)
        state, labels, info = self.method.cluster(state, feats, jax.random.fold_in(self.cluster_key, epoch))
        labels = np.asarray(labels)
        record = {"epoch": epoch, "step": int(state.step)}
        if self.bank.labels is not None:
            record.update(metrics.cluster_metrics(self.bank.labels, labels, acc_rule=self.cfg.eval.acc_rule))
        record.update(
            uniformity=float(metrics.uniformity(np.asarray(feats))),
            imbalance=float(metrics.imbalance(labels, self.cfg.kmeans.num_clusters)),
            **info,
            e_step_seconds=round(time.time() - t0, 3),
        )
        return state, record

    def train_epoch(self, state, epoch: int):
        batches = epoch_batches(self.data_key, epoch, self.bank.num_examples, self.cfg.train.batch_size)
        history = []
        for i, indices in enumerate(batches):
            step_key = jax.random.fold_in(self.train_key, epoch * self.steps_per_epoch + i)
            state, m = self._step(state, self.images, jax.device_put(indices, self.sharded), step_key)
            history.append(m)
        history = jax.device_get(history)  # one host sync per epoch
        losses = np.array([h["loss"] for h in history])
        if not np.all(np.isfinite(losses)):
            bad = int(np.flatnonzero(~np.isfinite(losses))[0])
            terms = {k: float(v) for k, v in history[bad].items() if k.endswith("loss")}
            raise FloatingPointError(
                f"non-finite loss at epoch {epoch + 1}, step {epoch * len(batches) + bad + 1}: {terms}; "
                "the last good checkpoint is kept."
            )
        return state, {"loss": float(losses.mean()), "lr": float(history[-1]["lr"])}


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


def train_and_evaluate(cfg, workdir: str | Path) -> dict:
    """Trains `cfg` in `workdir`, resuming from its last checkpoint; returns the summary dict."""
    start_time = time.time()
    workdir = Path(workdir)
    run = _Run(cfg, workdir)  # loads and validates everything before any compilation
    workdir.mkdir(parents=True, exist_ok=True)
    metrics_path = workdir / METRICS_FILE
    main = parallel.is_main_process()
    epochs, every = cfg.train.epochs, cfg.kmeans.every
    log(
        f"jaxclust: {cfg.method.name} on {run.bank.name} ({run.bank.num_examples} images "
        f"{'x'.join(map(str, run.bank.image_shape))}), {epochs} epochs x {run.steps_per_epoch} steps, "
        f"batch {cfg.train.batch_size}, {jax.device_count()} device(s)"
    )

    checkpointer = Checkpointer(workdir, max_to_keep=cfg.train.checkpoints_to_keep)
    state = run.init_state()
    last = checkpointer.latest_epoch()
    if last is not None:
        state, meta = checkpointer.restore(last, state)
        start_epoch, elapsed = meta["epoch"], meta["wall_seconds"]
        records = _read_records(metrics_path, start_epoch)
        log(f"resumed from the checkpoint of epoch {start_epoch} in {workdir}")
    else:
        start_epoch, elapsed = 0, 0.0
        state, record = run.e_step(state, 0)  # official: k-means on the random network before epoch 1
        record["loss"] = None
        records = [record]
        log(f"epoch 0/{epochs} | k-means on the initial network | {_format(record)}")
    if main:
        _write_records(metrics_path, records)
    elapsed -= time.time()  # wall time counts across resumes

    for epoch in range(start_epoch + 1, epochs + 1):
        t0 = time.time()
        state, train_stats = run.train_epoch(state, epoch - 1)
        is_last = epoch == epochs
        if epoch % every == 0 or is_last:
            state, record = run.e_step(state, epoch)
            record.update(train_stats)
            records.append(record)
            if main:
                with metrics_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
        if epoch % cfg.train.log_every_epochs == 0 or is_last or epoch == start_epoch + 1:
            scores = _format(records[-1]) if records[-1]["epoch"] == epoch else ""
            log(
                f"epoch {epoch}/{epochs} | step {int(state.step)} | loss {train_stats['loss']:.4f} "
                f"| lr {train_stats['lr']:.4g} | {time.time() - t0:.1f}s | {scores}"
            )
        if epoch % cfg.train.checkpoint_every_epochs == 0 or is_last:
            checkpointer.save(epoch, state, {"epoch": epoch, "wall_seconds": elapsed + time.time()})
    checkpointer.close()

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
