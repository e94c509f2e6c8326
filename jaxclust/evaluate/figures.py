"""The report's figures, as PNG files (matplotlib's object API on the Agg canvas: no pyplot, no
global backend change). Each function takes host arrays and a path, and writes one figure."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib import colormaps
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError("the report's figures need matplotlib: pip install -e '.[report]'.") from None

DPI = 120


def _save(fig, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _colors(n: int) -> np.ndarray:
    if n <= 10:
        return np.asarray(colormaps["tab10"].colors)[:n]
    if n <= 20:
        return np.asarray(colormaps["tab20"].colors)[:n]
    return colormaps["turbo"](np.linspace(0.05, 0.95, n))[:, :3]


def _scatter(ax, xy, labels, names, color_index, num_colors, title):
    n = len(names)
    colors = _colors(num_colors)
    for i in sorted(range(n), key=lambda i: color_index[i]):  # legend in colour order
        sel = labels == i
        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=colors[color_index[i]], label=names[i], alpha=0.8, linewidths=0)
    if (labels < 0).any():
        sel = labels < 0
        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color="lightgrey", label="unlabelled", linewidths=0)
    ax.set_title(title)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_xticks([])
    ax.set_yticks([])
    if n <= 20:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=2.5, frameon=False,
                  ncols=1 if n <= 12 else 2)


def tsne_figure(xy, clusters, cluster_names, classes, class_names, title: str, path: Path, match=None) -> Path:
    """t-SNE map coloured by cluster, and by true class when labels exist (two panels). With `match`
    (the Hungarian class of each cluster, -1 if none) a cluster takes the colour of its class."""
    panels = 1 if classes is None else 2
    k, c = len(cluster_names), len(class_names)
    if match is not None:
        spare = iter(range(c, c + k))
        cluster_colors = [int(m) if m >= 0 else next(spare) for m in match]
    else:
        cluster_colors = list(range(k))
    num_colors = max(c, max(cluster_colors) + 1)
    fig = Figure(figsize=(7.5 * panels, 6))
    ax = fig.add_subplot(1, panels, 1)
    _scatter(ax, xy, clusters, cluster_names, cluster_colors, num_colors,
             "coloured by cluster" + (" (colour of its matched class)" if match is not None else ""))
    if classes is not None:
        _scatter(fig.add_subplot(1, 2, 2), xy, classes, class_names, list(range(c)), num_colors, "coloured by true class")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def cluster_sizes_figure(sizes, tick_labels, title: str, path: Path, label_meaning: str = "cluster id") -> Path:
    """Cluster sizes sorted from largest to smallest, with the balanced size N/K as a line."""
    order = np.argsort(-sizes, kind="stable")
    k = len(sizes)
    fig = Figure(figsize=(max(6.0, 0.38 * k + 2), 4.5))
    ax = fig.add_subplot()
    ax.bar(np.arange(k), sizes[order], color="tab:blue")
    ax.axhline(sizes.sum() / k, color="tab:red", linestyle="--", label=f"balanced: N/K = {sizes.sum() / k:.0f}")
    if k <= 40:
        ax.set_xticks(np.arange(k), [tick_labels[i] for i in order], rotation=60 if k > 10 else 0, ha="center", fontsize=8)
    ax.set_xlabel("cluster (sorted by size)" + (f"; label: {label_meaning}" if k <= 40 else ""))
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def confusion_figure(matrix, cluster_order, class_names, title: str, path: Path) -> Path:
    """Classes x clusters, clusters in Hungarian-matched order (matches on the diagonal); colour is
    the fraction of each class, numbers are counts."""
    c, k = matrix.shape
    frac = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(max(5.5, 0.5 * k + 2.5), max(4.5, 0.45 * c + 1.5)))
    ax = fig.add_subplot()
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    if c <= 30 and k <= 30:
        for i in range(c):
            for j in range(k):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if frac[i, j] > 0.5 else "black")
    if k <= 60:
        ax.set_xticks(np.arange(k), [str(x) for x in cluster_order], fontsize=8)
    if c <= 60:
        ax.set_yticks(np.arange(c), list(class_names), fontsize=8)
    ax.set_xlabel("cluster id (ordered by its matched class)")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    fig.tight_layout()
    return _save(fig, path)


def curves_figure(records: list[dict], feature_dim: int | None, markers: dict, title: str, path: Path) -> Path:
    """Training curves from metrics.jsonl: scores, loss, uniformity, imbalance against the epoch.

    `markers`: {label: epoch} drawn as vertical lines (e.g. end of warm-up, evaluated checkpoint)."""
    fig = Figure(figsize=(12, 8))
    axes = [fig.add_subplot(2, 2, i + 1) for i in range(4)]

    def series(key):  # (epochs, values) of the records that have `key`: E-step scores only where one ran
        kept = [r for r in records if r.get(key) is not None]
        return np.array([r["epoch"] for r in kept]), np.array([r[key] for r in kept], dtype=float)

    ax = axes[0]
    for key in ("nmi", "acc", "ari", "ami"):
        if any(key in r for r in records):
            ax.plot(*series(key), marker=".", label=key.upper())
    ax.set_ylabel("score")
    ax.set_title("clustering scores of the E-step labels")
    ax = axes[1]
    loss_keys = sorted({k for r in records for k, v in r.items() if k.endswith("loss") and v is not None},
                       key=lambda k: (k != "loss", k))  # the total, then each term the method computes
    for key in loss_keys:
        ax.plot(*series(key), marker=".", label=key)
    ax.set_ylabel("mean training loss of the epoch")
    ax.set_title("training loss")
    ax = axes[2]
    ax.plot(*series("uniformity"), marker=".", color="tab:green", label="uniformity")
    if feature_dim:
        ax.axhline(1 / math.sqrt(feature_dim), color="grey", linestyle="--", label=f"1/sqrt(D), D = {feature_dim}")
    ax.set_ylabel("mean std of the l2-normalised features")
    ax.set_title("uniformity (0: collapse)")
    ax = axes[3]
    ax.plot(*series("imbalance"), marker=".", color="tab:purple", label="imbalance")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("smallest / largest cluster")
    ax.set_title("cluster balance (1: balanced)")
    styles = ["dotted", "dashdot", "dashed"]
    for j, ax in enumerate(axes):
        for i, (label, epoch) in enumerate(markers.items()):  # named in the first panel's legend
            ax.axvline(epoch, color="black", linestyle=styles[i % 3], linewidth=0.8, label=None if j else label)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def _mosaic_row(images: np.ndarray, wrong: np.ndarray, cells: int, pad: int) -> np.ndarray:
    """(h, cells*(w+pad)+pad, 3) float RGB row; images whose class differs from the cluster's
    matched class get a red frame."""
    n, h, w, c = images.shape
    border = max(1, h // 16)
    row = np.ones((h + 2 * pad, cells * (w + pad) + pad, 3))
    for i in range(n):
        img = images[i].astype(float) / 255.0
        img = np.repeat(img, 3, axis=-1) if c == 1 else img
        if wrong[i]:
            img = img.copy()
            img[:border], img[-border:], img[:, :border], img[:, -border:] = (1, 0, 0), (1, 0, 0), (1, 0, 0), (1, 0, 0)
        x = pad + i * (w + pad)
        row[pad : pad + h, x : x + w] = img
    return row


def samples_figure(rows: list[dict], title: str, path: Path) -> Path:
    """A grid of sample images, one row per cluster.

    rows: [{"label": str, "images": uint8 (n, H, W, C), "wrong": bool (n,)}]."""
    cells = max(len(r["images"]) for r in rows)
    h, w = rows[0]["images"].shape[1:3]
    pad = max(1, h // 8)
    fig = Figure(figsize=(min(1.0 * cells, 16) + 3, 0.9 * len(rows) + 1))
    for i, r in enumerate(rows):
        ax = fig.add_subplot(len(rows), 1, i + 1)
        ax.imshow(_mosaic_row(r["images"], r["wrong"], cells, pad), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_ylabel(r["label"], rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)
