"""Evaluate a trained run: metrics, figures and (optionally) linear evaluation, in WORKDIR/report/.

    python launch/evaluate.py --workdir=/tmp/digits                    # last checkpoint
    python launch/evaluate.py --workdir=/tmp/digits --checkpoint=100   # the checkpoint of epoch 100
    python launch/evaluate.py --workdir=/tmp/digits --linear           # + linear evaluation
    python launch/evaluate.py --workdir=/tmp/digits --report.tsne_points=2000 --linear --report.linear.epochs=30

The run's config is read from WORKDIR/config.json (written by launch/main.py when the run starts);
--config=configs/X.py [--config.key=VALUE ...] replaces it, e.g. for a run that has none.

The authors' PyTorch models (pip install -e ".[torch]"): give the checkpoint and the config that
describes its network and data; the report goes to WORKDIR/report:

    python launch/evaluate.py --config=configs/propos_cifar10.py --workdir=/tmp/official_c10 \\
        --torch_checkpoint=/path/to/checkpoint.tar

Settings of the report are --report.KEY=VALUE (jaxclust/evaluate/report.py, default_config), those of
the linear evaluation --report.linear.KEY=VALUE (jaxclust/evaluate/linear.py). Exit code 2 and one
sentence for a mistake a user can make (no checkpoint, a checkpoint that does not fit the config, ...).
"""
from absl import flags
from ml_collections import config_flags

from jaxclust import cli

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file of the run; default: WORKDIR/config.json.", lock_config=True)
flags.DEFINE_string("workdir", None, "The run's directory (checkpoints, metrics.jsonl); the report goes to WORKDIR/report.")
flags.DEFINE_integer("checkpoint", None, "Epoch of the checkpoint to evaluate; default: the last one.")
flags.DEFINE_string("torch_checkpoint", None, "A ProPos PyTorch checkpoint to evaluate instead of a jaxclust one.")
flags.DEFINE_bool("linear", False, "Also run the linear evaluation of frozen features (ProPos Table 5 protocol).")
flags.DEFINE_string("output", None, "Directory of the report; default: WORKDIR/report.")


def _report_config():
    from jaxclust.evaluate.report import default_config

    return default_config()


config_flags.DEFINE_config_dict("report", _report_config(), "Report settings (--report.key=VALUE).", lock_config=True)


def main():
    from jaxclust.evaluate.report import evaluate

    report_cfg = FLAGS.report
    report_cfg.unlock()
    report_cfg.linear_eval = report_cfg.linear_eval or FLAGS.linear
    evaluate(FLAGS.workdir, FLAGS.config, report_cfg, checkpoint=FLAGS.checkpoint,
             torch_checkpoint=FLAGS.torch_checkpoint, output=FLAGS.output)


if __name__ == "__main__":
    # ValueError / FileNotFoundError: a report setting or checkpoint that does not fit; ImportError: an
    # optional dependency missing (its message is the pip line)
    cli.run(main, required=("workdir",), errors=(ValueError, FileNotFoundError, ImportError))
