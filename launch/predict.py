"""Clusters new images with a trained run: a folder of images or an npz file.

    python launch/predict.py --workdir=/tmp/jaxclust_digits --images=FOLDER_OR_FILE.npz --out=OUT [--embeddings]

Writes OUT/assignments.csv (file name or index, cluster, score, and the class where the input has
labels: class sub-folders, or `labels` in the npz), OUT/summary.json (cluster sizes; NMI/ACC/ARI
where labels exist) and, with --embeddings, OUT/embeddings.npy. Cluster ids are the run's own: on the
training images they are the last E-step's labels (`jaxclust.load(WORKDIR).labels`).
"""
import csv
import json
from pathlib import Path

from absl import flags

from jaxclust import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Workdir of a trained run (launch/main.py).")
flags.DEFINE_string("images", None, "A folder of images (class sub-folders give labels) or an .npz file.")
flags.DEFINE_string("out", None, "Output folder.")
flags.DEFINE_integer("checkpoint", None, "Epoch of the checkpoint to use (default: the last).")
flags.DEFINE_bool("embeddings", False, "Also write the features the method clusters, OUT/embeddings.npy.")
flags.DEFINE_integer("batch_size", None, "Images per embedding call (default: the run's train.embed_batch_size).")
flags.DEFINE_bool("overwrite", False, "Replace the files of an earlier prediction in --out.")

OUTPUTS = ("assignments.csv", "summary.json", "embeddings.npy")


def predict(workdir, images_path, out: Path, checkpoint=None, embeddings=False, batch_size=None, overwrite=False):
    """What the command does; returns the summary dict."""
    import numpy as np

    import jaxclust
    from jaxclust import metrics

    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds {', '.join(existing)}; choose another --out or pass --overwrite.")
    run = jaxclust.load(workdir, checkpoint)
    images, labels, names = run.read_images(images_path)
    features = run.embed(images, batch_size)
    clusters, scores = run.assign(features)
    k = run.config.cluster.num_clusters
    summary = {"workdir": str(workdir), "checkpoint_epoch": run.epoch, "images": str(images_path),
               "num_images": len(images), "cluster_sizes": np.bincount(clusters, minlength=k).tolist()}
    if labels is not None:
        summary.update(metrics.cluster_metrics(labels, clusters, acc_rule=run.config.eval.acc_rule))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "assignments.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "cluster", "score"] + (["class"] if labels is not None else []))
        for i, name in enumerate(names):
            writer.writerow([name, int(clusters[i]), f"{float(scores[i]):.6f}"] + ([int(labels[i])] if labels is not None else []))
    if embeddings:
        np.save(out / "embeddings.npy", np.asarray(features))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main():
    summary = predict(FLAGS.workdir, FLAGS.images, Path(FLAGS.out), FLAGS.checkpoint, FLAGS.embeddings,
                      FLAGS.batch_size, FLAGS.overwrite)
    scores = " ".join(f"{k} {summary[k]:.4f}" for k in ("nmi", "acc", "ari") if k in summary)
    print(f"{summary['num_images']} images -> {FLAGS.out}/assignments.csv; cluster sizes {summary['cluster_sizes']}"
          + (f"; {scores}" if scores else ""))


if __name__ == "__main__":
    # jaxclust.load and the image readers report bad input as ValueError / FileNotFoundError; an earlier
    # prediction in --out is a FileExistsError
    cli.run(main, required=("workdir", "images", "out"), errors=(ValueError, FileNotFoundError, FileExistsError))
