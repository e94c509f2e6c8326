"""The single training entrypoint.

    python launch/main.py --config=configs/propos_digits.py --workdir=/tmp/digits
    python launch/main.py --config=configs/propos_cifar10.py --workdir=DIR --config.train.epochs=10

Every config value can be overridden with --config.<section>.<key>=VALUE; --config=FILE --config_help
lists them with their values. Running the same command again on the same workdir resumes from its
last checkpoint. --dry_run checks the config and the data set, builds the model and traces one step
without compiling or training, prints a JSON summary.
"""
import json
import sys

import ml_collections
from absl import flags
from ml_collections import config_flags

from jaxclust import cli

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Path to a config file in configs/.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics.jsonl and summary.json.")
flags.DEFINE_bool("dry_run", False, "Validate config and data, build the model, trace one step; no training.")
flags.DEFINE_bool(
    "distributed", False,
    "Multi-host run: call jax.distributed.initialize(), which detects SLURM, TPU pods and Open MPI; "
    "elsewhere give --coordinator_address, --num_processes and --process_id.",
)
flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for --distributed.")
flags.DEFINE_integer("num_processes", None, "Number of processes, for --distributed.")
flags.DEFINE_integer("process_id", None, "This process's index, for --distributed.")
flags.DEFINE_bool("accept_config_change", False,
                  "Resume a workdir with a config that changes what its run computes (a learning rate, a loss "
                  "weight, ...); the change is recorded in WORKDIR/config_history.jsonl. Without it such a "
                  "resume is refused, naming the keys.")
flags.DEFINE_bool("config_help", False, "Print every key of the --config file with its value (without --config: "
                  "the keys all configs share), as --config.section.key=VALUE overrides take them; then exit.")
def start_distributed() -> None:
    """Joins the processes of a multi-host job; must run before any other JAX call."""
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU devices of several processes
    jax.distributed.initialize(
        coordinator_address=FLAGS.coordinator_address,
        num_processes=FLAGS.num_processes,
        process_id=FLAGS.process_id,
    )


def config_help(cfg) -> str:
    """The keys of `cfg` (None: of `base_config()`), one `section.key = value` a line."""
    from jaxclust.config import base_config
    from jaxclust.methods import METHODS

    lines = ["Override a key with --config.section.key=VALUE, e.g. --config.train.epochs=20."]

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, ml_collections.ConfigDict):
                walk(value, f"{prefix}{key}.")
            else:
                lines.append(f"{prefix}{key} = {value!r}")

    walk(base_config() if cfg is None else cfg, "")
    if cfg is None:
        lines.append(f"method.*: the method's own keys (method.name: {', '.join(METHODS)}); "
                     "--config=configs/propos_digits.py --config_help lists a config's.")
    return "\n".join(lines)


def main():
    if FLAGS.config_help:
        print(config_help(FLAGS.config))
        return
    if FLAGS.config is None:
        raise cli.UserError("--config=FILE is required: a config file, e.g. --config=configs/propos_digits.py.")
    from jaxclust.trainer import dry_run, train_and_evaluate

    if FLAGS.distributed:
        start_distributed()
    if not FLAGS.dry_run and not FLAGS.workdir:
        raise cli.UserError("--workdir is required (except with --dry_run).")
    try:
        if FLAGS.dry_run:
            print(json.dumps(dry_run(FLAGS.config)))
        else:
            train_and_evaluate(FLAGS.config, FLAGS.workdir, FLAGS.accept_config_change)
    except FloatingPointError as error:  # a NaN/inf loss: the last good checkpoint is kept; not a usage error
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main)
