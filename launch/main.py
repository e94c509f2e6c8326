"""The single training entrypoint.

    python launch/main.py --config=configs/propos_digits.py --workdir=/tmp/digits
    python launch/main.py --config=configs/propos_cifar10.py --workdir=DIR --config.train.epochs=10

Every config value can be overridden with --config.<section>.<key>=VALUE. Running the same command
again on the same workdir resumes from its last checkpoint. --dry_run checks the config and the data
set, builds the model and traces one step without compiling or training, prints a JSON summary.
"""
import json
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

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
flags.mark_flags_as_required(["config"])


def start_distributed() -> None:
    """Joins the processes of a multi-host job; must run before any other JAX call."""
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU devices of several processes
    jax.distributed.initialize(
        coordinator_address=FLAGS.coordinator_address,
        num_processes=FLAGS.num_processes,
        process_id=FLAGS.process_id,
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:  # orbax logs every checkpoint write at INFO: keep the console to progress
        logging.set_verbosity(logging.WARNING)
    from jaxclust.config import ConfigError
    from jaxclust.data.sources import DataError
    from jaxclust.trainer import WorkdirError, dry_run, train_and_evaluate

    if FLAGS.distributed:
        start_distributed()
    if not FLAGS.dry_run and not FLAGS.workdir:
        raise app.UsageError("--workdir is required (except with --dry_run).")
    try:
        if FLAGS.dry_run:
            print(json.dumps(dry_run(FLAGS.config)))
        else:
            train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except (ConfigError, DataError, WorkdirError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except FloatingPointError as error:  # a NaN/inf loss: the last good checkpoint is kept
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def parse_flags_or_exit(argv):
    """absl's flag parsing, with a mistyped config key or value told in one sentence, exit code 2."""
    try:
        return FLAGS(argv)
    except (AttributeError, KeyError) as error:  # ml_collections: a config key that does not exist
        key = re.findall(r"\w+", str(error))[0]
        hint = re.search(r'Did you mean "\w+"', str(error))
        print(f"error: bad command line: unknown config key {key!r}{'; ' + hint.group(0).lower() + '?' if hint else ''}",
              file=sys.stderr)
        sys.exit(2)
    except (flags.Error, TypeError, ValueError) as error:
        message = str(error).replace("\\n", " ").replace("\\'", "'").replace("\n", " ")
        if len(message) > 1 and message[0] == message[-1] and message[0] in "'\"":  # repr quotes
            message = message[1:-1]
        message = " ".join(message.split())
        print(f"error: bad command line: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags_or_exit)
