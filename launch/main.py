"""The single training entrypoint.

    python launch/main.py --config=configs/propos_digits.py --workdir=/tmp/digits
    python launch/main.py --config=configs/propos_cifar10.py --workdir=DIR --config.train.epochs=10

Every config value can be overridden with --config.<section>.<key>=VALUE. Running the same command
again on the same workdir resumes from its last checkpoint.
"""
import sys

from absl import app, flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Path to a config file in configs/.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics.jsonl and summary.json.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from jaxclust.config import ConfigError
    from jaxclust.data.sources import DataError
    from jaxclust.train import train_and_evaluate

    try:
        train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except (ConfigError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
