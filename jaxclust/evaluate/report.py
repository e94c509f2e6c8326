"""The evaluation report of a run: what `launch/evaluate.py` does.

    report = evaluate(workdir)                         # last checkpoint, config from WORKDIR/config.json
    report = evaluate(workdir, cfg, torch_checkpoint="checkpoint.tar")   # the authors' PyTorch model

Steps: rebuild the run's pieces (`jaxclust.trainer.Run`: data, method, compiled embedding);
restore the checkpoint (or import a PyTorch one, `jaxclust.convert`); embed the whole data set with
the network the method clusters with (eval mode, no augmentation); cluster it with spherical k-means
and `kmeans_restarts` restarts (or the method's own E-step); score; draw; write
WORKDIR/report/report.json, the PNG figures and assignments.npz (the cluster of every image and
`labels_from`: by default the run's own assignments, the numbering of metrics.jsonl and launch/predict.py;
`centers` where there are; `file_names` for a folder source; `embeddings` with report.save_embeddings).
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxclust import kmeans, methods, metrics, parallel, trainer
from jaxclust.config import ConfigError
from jaxclust.data.augment import augment_batch, eval_batch
from jaxclust.evaluate import analysis, linear
from jaxclust.workdir import load_run_config, read_metrics

REPORT_DIR = "report"
log = trainer.log

def default_config() -> ml_collections.ConfigDict:
    """What the report computes; every key is a flag of launch/evaluate.py (--report.key=VALUE)."""
    c = ml_collections.ConfigDict()
    c.features = "embed"  # embed: what the method clusters (ProPos: l2-normalised target projector) | backbone
    # run: the run's own assignments (its last E-step's labels, the numbering of metrics.jsonl,
    # jaxclust.load and launch/predict.py; a PyTorch checkpoint has none: k-means then) | kmeans:
    # spherical k-means with kmeans_restarts restarts | method: the method's E-step run again
    c.labels = "run"
    c.kmeans_restarts = 10
    c.num_clusters = 0  # 0: the run's cluster.num_clusters
    c.seed = 0
    c.knn_k = analysis.KNN_K  # official ProPos knn_monitor: k = 20, temperature 0.07
    c.knn_t = analysis.KNN_T
    c.knn_queries = 100000  # leave-one-out kNN over at most this many random images (0: all)
    c.figures = True
    c.tsne_points = 5000  # t-SNE of a random subset of this size (0: every image)
    c.tsne_perplexity = 30.0
    # OpenMP threads of the t-SNE (0: all cores). 1 by default: on a shared 2-core machine 2 threads were
    # 5-10x slower (busy-waiting), and 5,000 points take well under a minute on one core.
    c.tsne_threads = 1
    c.samples_per_cluster = 12
    c.max_grid_clusters = 20  # sample grid: the largest clusters up to this many
    c.save_embeddings = False  # also write the features of every image into assignments.npz ("embeddings")
    c.linear_eval = False  # also train a linear classifier on frozen features (settings: linear.*)
    c.linear = linear.default_config()
    return c


def _validate(rcfg, has_labels: bool) -> None:
    if rcfg.features not in ("embed", "backbone"):
        raise ValueError(f"report.features must be 'embed' or 'backbone'; got {rcfg.features!r}.")
    if rcfg.labels not in ("run", "kmeans", "method"):
        raise ValueError(f"report.labels must be 'run', 'kmeans' or 'method'; got {rcfg.labels!r}.")
    if rcfg.labels in ("run", "method") and rcfg.features != "embed":
        raise ValueError(f"report.labels={rcfg.labels} assigns the method's own features; use report.features=embed "
                         "(or report.labels=kmeans).")
    if rcfg.kmeans_restarts < 1:
        raise ValueError(f"report.kmeans_restarts must be >= 1, got {rcfg.kmeans_restarts}.")
    if rcfg.linear_eval:
        linear.validate(rcfg.linear)
        if not has_labels:
            raise ValueError("linear evaluation needs ground-truth labels, and this data set has none.")


# ---------------------------------------------------------------------------------------------
# Networks and features


def _backbone_embed(run, network: str, normalize: bool, augment: bool = False):
    """A jitted (state, images) -> pooled backbone features (eval-mode BatchNorm); with `augment`,
    (state, bank images, indices, key) of the randomly cropped and flipped images."""
    from jaxclust.models import build_backbone

    backbone = build_backbone(run.cfg.model)
    aug, size = run.aug, run.size
    crop_flip = dataclasses.replace(aug, jitter_prob=0.0, grayscale_prob=0.0, blur_prob=0.0, solarize_prob=0.0)

    def features(state, x):
        h = backbone.apply(run.method.backbone(state, network), x, train=False)
        return h / jnp.maximum(jnp.linalg.norm(h, axis=-1, keepdims=True), 1e-12) if normalize else h

    if augment:  # official lincls: random (resized) crop + flip of the training images
        @jax.jit
        def embed_augmented(state, images, indices, key):
            keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(indices)
            return features(state, augment_batch(keys, images[indices], crop_flip, size))

        return embed_augmented

    @jax.jit
    def embed(state, images):
        return features(state, eval_batch(images, aug, size))

    return embed


def _progress(what: str):
    marks = set()

    def report(done, total):
        tenth = (10 * done) // total
        if tenth not in marks and (tenth % 2 == 0 or done == total):
            marks.add(tenth)
            log(f"{what}: {done}/{total} images")

    return report


def _kmeans(features, k: int, restarts: int, seed: int, cfg_kmeans) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Spherical k-means, restart by restart with progress (the seedings and so the result of
    `kmeans.spherical_kmeans` with the same key)."""
    t0 = time.time()
    inits = kmeans.kmeans_plusplus(jax.random.key(seed), features, k, chunk_size=cfg_kmeans.chunk_size,
                                   n_local_trials=cfg_kmeans.n_local_trials or None, n_init=restarts)
    log(f"k-means++ seeding of {restarts} restarts ({time.time() - t0:.1f}s)")
    best, inertias = None, []
    for i, init in enumerate(inits):
        t0 = time.time()
        result = kmeans.kmeans_from_init(features, init, max_iter=cfg_kmeans.max_iter, tol=cfg_kmeans.tol,
                                         chunk_size=cfg_kmeans.chunk_size)
        inertias.append(float(result.inertia))
        if best is None or inertias[-1] < float(best.inertia):  # official: strict <, earliest wins
            best = result
        log(f"k-means restart {i + 1}/{restarts}: inertia {inertias[-1]:.4f} ({time.time() - t0:.1f}s)")
    return np.asarray(best.labels), np.asarray(best.centers), inertias


# ---------------------------------------------------------------------------------------------
# The report


def _placeholder_state(run):
    """A TrainState of zeros with the run's structure, replicated, for imported networks to fill.

    Built with `jax.eval_shape` (nothing compiled): compiling the initialiser of a ResNet takes longer
    on a CPU than the whole import. Parts the import does not fill (optimiser state, ...) stay zero
    and the report does not use them.
    """
    shapes = jax.eval_shape(run.method.init, run.init_key, run.sample_images())
    if any(jax.dtypes.issubdtype(s.dtype, jax.dtypes.prng_key) for s in jax.tree.leaves(shapes)):
        return run.init_state()
    return jax.tree.map(lambda s: jax.device_put(np.zeros(s.shape, s.dtype), run.replicated), shapes)


def _restore(run, checkpoint, torch_checkpoint, rcfg) -> tuple[object, dict]:
    if torch_checkpoint:
        from jaxclust import convert

        log(f"importing the PyTorch checkpoint {torch_checkpoint}")
        state_dict = convert.load_torch_state_dict(torch_checkpoint)
        state, loaded = convert.load_into_state(_placeholder_state(run), convert.convert_byol_state_dict(state_dict))
        log(f"loaded {', '.join(loaded)} from {len(state_dict)} tensors")
        if rcfg.features == "embed" and "target/projector" not in loaded:
            raise ValueError(
                "the checkpoint has no target projector (projector_k), so the clustered features cannot be "
                "computed; evaluate its backbone with --report.features=backbone."
            )
        return state, {"torch_checkpoint": str(torch_checkpoint), "loaded": loaded}
    state, meta = trainer.restore_state(run, checkpoint)
    log(f"restored the checkpoint of epoch {meta['epoch']} from {run.workdir}")
    return state, {"checkpoint_epoch": int(meta["epoch"]), "step": int(state.step)}


def _linear_split(labels: np.ndarray, lcfg) -> tuple[np.ndarray, np.ndarray]:
    if lcfg.train_examples:
        if lcfg.train_examples >= len(labels):
            raise ValueError(f"linear.train_examples ({lcfg.train_examples}) must be smaller than the data set ({len(labels)}).")
        idx = np.arange(len(labels))
        train_idx, test_idx = idx[: lcfg.train_examples], idx[lcfg.train_examples :]
        return train_idx[labels[train_idx] != -1], test_idx[labels[test_idx] != -1]
    return analysis.stratified_split(labels, lcfg.test_fraction, lcfg.seed)


def _run_linear(run, state, features, rcfg) -> dict:
    lcfg = rcfg.linear
    y = run.dataset.labels
    train_idx, test_idx = _linear_split(y, lcfg)
    log(f"linear evaluation: {len(train_idx)} training / {len(test_idx)} test images, {lcfg.features} features "
        f"of the {lcfg.network} network, {lcfg.epochs} epochs")
    if lcfg.features == "embed":
        if lcfg.network != "target":
            raise ValueError("linear.features=embed uses the method's own features; set linear.network=target.")
        x = features
    else:
        x = run.embed_all(state, _backbone_embed(run, lcfg.network, normalize=False),
                          _progress("linear evaluation: embedding"))
    x = np.asarray(x)
    train_x = x[train_idx]
    if lcfg.augment:
        embed = _backbone_embed(run, lcfg.network, normalize=False, augment=True)
        ids = jnp.asarray(train_idx)
        root = jax.random.key(lcfg.seed)
        train_x = lambda epoch: embed(state, run.feeder.images, ids, jax.random.fold_in(root, epoch))  # noqa: E731
    num_classes = int(y.max()) + 1
    return linear.train_linear(train_x, y[train_idx], x[test_idx], y[test_idx], num_classes, lcfg, log=log)


def _figures(out: Path, run, rcfg, feats, labels, k, records, report) -> list[str]:
    from jaxclust.evaluate import figures

    bank, y = run.dataset, run.dataset.labels
    n = bank.num_examples
    class_names = list(bank.class_names) if bank.class_names else (
        [str(c) for c in range(int(y.max()) + 1)] if y is not None else [])
    title = f"{run.cfg.method.name} on {bank.name}"
    if "checkpoint_epoch" in report["source"]:
        title += f", epoch {report['source']['checkpoint_epoch']}"
    else:
        title += ", imported PyTorch checkpoint"
    written = []
    rng = np.random.default_rng(rcfg.seed)

    # cluster names: "c<id>", with the matched class when labels exist
    names = [f"c{c}" for c in range(k)]
    match = None
    if y is not None:
        matrix, order, match = analysis.matched_confusion(y, labels, k, len(class_names))
        names = [f"c{c} ({class_names[match[c]]})" if match[c] >= 0 else f"c{c}" for c in range(k)]
        written.append(figures.confusion_figure(
            matrix, order, class_names,
            f"{title}\nconfusion after Hungarian matching (ACC {report['acc']:.3f}, NMI {report['nmi']:.3f})",
            out / "confusion_matrix.png").name)

    sizes = np.asarray(report["cluster_sizes"])
    written.append(figures.cluster_sizes_figure(
        sizes, names, f"{title}\ncluster sizes (K = {k}, N = {n}, smallest/largest = {report['imbalance']:.3f})",
        out / "cluster_sizes.png", "cluster id (Hungarian-matched class)" if match is not None else "cluster id").name)

    if records:
        markers = {}
        warmup = run.cfg.optim.get("warmup_epochs", 0)
        if warmup:
            markers[f"end of the learning-rate warm-up, epoch {warmup}"] = warmup
        if "checkpoint_epoch" in report["source"]:
            markers[f"evaluated checkpoint, epoch {report['source']['checkpoint_epoch']}"] = report["source"]["checkpoint_epoch"]
        dim = int(feats.shape[1]) if rcfg.features == "embed" else None
        written.append(figures.curves_figure(records, dim, markers, f"{title}: training curves (metrics.jsonl)",
                                             out / "training_curves.png").name)

    # sample grid: clusters in matched-class order, the largest ones if there are too many
    order = list(np.argsort(-sizes, kind="stable")[: rcfg.max_grid_clusters])
    if match is not None:
        order.sort(key=lambda c: (match[c] < 0, match[c], -sizes[c]))
    rows = []
    for c in order:
        members = np.flatnonzero(labels == c)
        if not len(members):
            continue
        pick = rng.choice(members, size=min(rcfg.samples_per_cluster, len(members)), replace=False)
        wrong = np.zeros(len(pick), bool) if match is None or match[c] < 0 else (y[pick] != match[c])
        label = f"cluster {c}, {sizes[c]} images"
        if y is not None:
            comp = report["clusters"][c]
            label += f"\nmatched to '{class_names[match[c]]}'" if match[c] >= 0 else "\nunmatched"
            label += f"\nmajority '{comp.get('majority_class', '-')}' ({100 * comp.get('purity', 0):.0f}%)"
        rows.append({"label": label, "images": bank.images[pick], "wrong": wrong})
    shown = f"{len(rows)} of {k} clusters" if len(rows) < k else "every cluster"
    written.append(figures.samples_figure(
        rows, f"{title}\nrandom images of {shown}"
        + (" (red frame: true class differs from the cluster's matched class)" if y is not None else ""),
        out / "cluster_samples.png").name)

    # t-SNE
    import threadpoolctl  # a scikit-learn dependency
    from sklearn.manifold import TSNE

    subset = np.arange(n)
    if rcfg.tsne_points and n > rcfg.tsne_points:
        subset = np.sort(rng.choice(n, rcfg.tsne_points, replace=False))
    t0 = time.time()
    log(f"t-SNE of {len(subset)} points (perplexity {rcfg.tsne_perplexity}) ...")
    tsne = TSNE(2, perplexity=min(rcfg.tsne_perplexity, len(subset) - 1), init="pca", learning_rate="auto",
                random_state=rcfg.seed, verbose=1 if len(subset) > 2000 else 0)
    with threadpoolctl.threadpool_limits(rcfg.tsne_threads or None, user_api="openmp"):
        xy = tsne.fit_transform(np.asarray(feats)[subset])
    log(f"t-SNE done in {time.time() - t0:.1f}s")
    written.append(figures.tsne_figure(
        xy, labels[subset], names, None if y is None else y[subset], class_names,
        f"{title}: t-SNE of the {'clustered' if rcfg.features == 'embed' else 'backbone'} features "
        f"({len(subset)} images)", out / "tsne.png", match=match).name)
    return written


def evaluate(workdir, cfg=None, rcfg=None, checkpoint: int | None = None, torch_checkpoint: str | None = None,
             output: str | Path | None = None) -> dict:
    """Writes the report of `workdir` (see the module doc) and returns it as a dict.

    cfg: the run's config (default: WORKDIR/config.json). rcfg: `default_config()` with overrides.
    checkpoint: epoch to restore (default: the last). torch_checkpoint: a PyTorch ProPos checkpoint
    to evaluate instead of a jaxclust one. output: directory of the report (default WORKDIR/report).
    """
    t_start = time.time()
    workdir = Path(workdir)
    cfg = load_run_config(workdir) if cfg is None else cfg
    rcfg = default_config() if rcfg is None else rcfg
    if cfg.data.streaming:
        raise ConfigError("the report reads the whole data set into memory, which data.streaming=True does not; "
                          "give --config.data.streaming=False with a data.load_size whose images fit in memory.")
    run = trainer.Run(cfg, workdir)
    bank, y = run.dataset, run.dataset.labels
    _validate(rcfg, y is not None)
    out = Path(output) if output else workdir / REPORT_DIR
    k = rcfg.num_clusters or cfg.cluster.num_clusters
    state, source = _restore(run, checkpoint, torch_checkpoint, rcfg)

    t0 = time.time()
    if rcfg.features == "embed":
        feats = run.embed_all(state, progress=_progress("embedding"))
    else:
        feats = run.embed_all(state, _backbone_embed(run, "target", normalize=True), _progress("embedding"))
    feats = jnp.asarray(parallel.to_host(feats))
    log(f"features {tuple(feats.shape)} in {time.time() - t0:.1f}s")

    t0 = time.time()
    labels_from = rcfg.labels
    if labels_from == "run" and (torch_checkpoint or run.method.assign is None):
        log("no assignments of the run to read (an imported PyTorch model, or a method without them): k-means")
        labels_from = "kmeans"
    if labels_from == "run":
        log("the run's own assignments (nearest of its E-step's centroids / its heads)")
        labels, _ = run.method.assign(state, feats)
        labels = parallel.to_host(labels)
        centers = None if run.method.centroids is None else parallel.to_host(run.method.centroids(state))
        clustering = {"labels_from": "run"}
        k = max(k, int(labels.max()) + 1)
    elif labels_from == "kmeans":
        log(f"spherical k-means, K = {k}, {rcfg.kmeans_restarts} restarts")
        labels, centers, inertias = _kmeans(feats, k, rcfg.kmeans_restarts, rcfg.seed, cfg.kmeans)
        clustering = {"labels_from": "kmeans", "kmeans_restarts": rcfg.kmeans_restarts,
                      "kmeans_inertia": min(inertias), "restart_inertias": [round(v, 4) for v in inertias]}
    else:
        log("clustering with the method's own E-step")
        _, labels, info = run.method.cluster(state, feats, jax.random.key(rcfg.seed))
        labels, centers = parallel.to_host(labels), None
        clustering = {"labels_from": "method", **{k_: v for k_, v in info.items() if isinstance(v, (int, float))}}
        k = max(k, int(labels.max()) + 1)
    labels = labels.astype(np.int64)
    clustering["seconds"] = round(time.time() - t0, 2)

    feats_np = np.asarray(feats)
    sizes = metrics.cluster_sizes(labels, k)
    report: dict = {
        "method": cfg.method.name, "data": bank.name, "num_examples": bank.num_examples,
        "backbone": cfg.model.backbone, "num_clusters": k, "features": rcfg.features,
        "feature_dim": int(feats_np.shape[1]), "source": source,
    }
    if y is not None:
        report.update(metrics.cluster_metrics(y, labels, acc_rule=cfg.eval.acc_rule))
    report.update(
        uniformity=float(metrics.uniformity(feats_np)),
        imbalance=float(metrics.imbalance(labels, k)),
        cluster_sizes=sizes.tolist(),
    )
    if y is not None:
        t0 = time.time()
        report["knn_acc"] = analysis.knn_accuracy(feats_np, y, rcfg.knn_k, rcfg.knn_t, rcfg.knn_queries, rcfg.seed)
        queries = min(rcfg.knn_queries or bank.num_examples, bank.num_examples)
        report["knn"] = {"k": rcfg.knn_k, "temperature": rcfg.knn_t,
                         "protocol": f"leave-one-out: {queries} images, each against all the others"}
        log(f"kNN accuracy {report['knn_acc']:.4f} ({time.time() - t0:.1f}s)")
        names = list(bank.class_names) or [str(c) for c in range(int(y.max()) + 1)]
        report["clusters"] = analysis.cluster_composition(y, labels, k, names)
        report["class_names"] = names
    report["clustering"] = clustering
    published, key = methods.get(cfg.method.name).PUBLISHED, (bank.name, cfg.model.backbone)
    paper = published.get(key + (cfg.data.image_size,), published.get(key))
    if paper:
        report["paper"] = paper
    if rcfg.linear_eval:
        report["linear_eval"] = _run_linear(run, state, feats_np, rcfg)

    if parallel.is_main_process():
        out.mkdir(parents=True, exist_ok=True)
        extra = {"centers": centers} if centers is not None else {}
        if bank.file_names:  # a folder source: which file each row is
            extra["file_names"] = np.asarray(bank.file_names)
        if rcfg.save_embeddings:
            extra["embeddings"] = feats_np
        np.savez(out / "assignments.npz", cluster=labels, labels_from=clustering["labels_from"], **extra)
        if rcfg.figures:
            records = read_metrics(workdir) if not torch_checkpoint else []
            report["figures"] = _figures(out, run, rcfg, feats_np, labels, k, records, report)
        report["seconds"] = round(time.time() - t_start, 2)
        report["config"] = rcfg.to_dict()
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        keys = ("nmi", "acc", "ari", "ami", "knn_acc", "uniformity", "imbalance")
        log("report: " + " ".join(f"{m} {report[m]:.4f}" for m in keys if m in report))
        log(f"wrote {out / 'report.json'} and {len(report.get('figures', []))} figures in {out}")
    return report
