"""The no-learning baseline of a config's data: spherical k-means on the l2-normalised raw pixels.

    python launch/pixel_kmeans.py --config=configs/propos_fashion_mnist.py --config.data.path=DIR
    python launch/pixel_kmeans.py --config=configs/propos_mnist.py --config.data.path=DIR --config.data.split=test

Loads the images exactly as the run would (data.source, path, split, channels) and clusters their
flattened pixels, scaled to [0, 1] and l2-normalised, with the run's E-step solver (cluster.num_clusters,
the kmeans.* options, seed): the row a deep-clustering result has to beat (for Fashion-MNIST,
NMI 0.604 on the 10,000 test images). Prints NMI / ACC / ARI and the seconds it took; --out=FILE.json
also writes them.
"""
import json
import time
from pathlib import Path

from absl import flags
from ml_collections import config_flags

from jaxclust import cli

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file whose data and k-means settings to use.", lock_config=True)
flags.DEFINE_string("out", None, "Also write the result to this JSON file.")


def pixel_features(images):
    """(N, H, W, C) uint8 -> (N, H*W*C) float32 rows of unit norm (an all-zero image stays zero)."""
    import jax.numpy as jnp

    from jaxclust.losses import l2_normalize

    return l2_normalize(jnp.asarray(images.reshape(len(images), -1), jnp.float32) / 255.0)


def pixel_kmeans(cfg) -> dict:
    """Spherical k-means of the config's images on their pixels; the metrics, sizes and seconds."""
    import jax

    from jaxclust import kmeans, metrics
    from jaxclust.data.sources import load_source
    from jaxclust.methods.common import kmeans_options

    bank = load_source(cfg.data)
    if bank.labels is None:
        raise ValueError(f"{bank.name} has no labels: there is nothing to score pixel k-means against.")
    start = time.perf_counter()
    x = pixel_features(bank.images)
    result = kmeans.spherical_kmeans(jax.random.key(cfg.seed), x, cfg.cluster.num_clusters,
                                     **kmeans_options(cfg.kmeans, x, cfg.kmeans.n_init))  # the E-step's solver
    labels = jax.device_get(result.labels)
    seconds = time.perf_counter() - start
    scores = metrics.cluster_metrics(bank.labels, labels, cfg.eval.acc_rule)
    return {"data": bank.name, "images": int(len(bank.images)), "pixels": int(x.shape[1]),
            "k": int(cfg.cluster.num_clusters), **scores, "seconds": round(seconds, 2)}


def main():
    summary = pixel_kmeans(FLAGS.config)
    print(f"pixel k-means on {summary['data']} ({summary['images']} images, {summary['pixels']} pixels, "
          f"k {summary['k']}): nmi {summary['nmi']:.4f} acc {summary['acc']:.4f} ari {summary['ari']:.4f} "
          f"in {summary['seconds']:.1f}s")
    if FLAGS.out:
        Path(FLAGS.out).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    cli.run(main, required=("config",), errors=(ValueError,))
