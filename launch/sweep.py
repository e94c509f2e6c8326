"""Runs one config over a grid of overrides and seeds, one workdir per run.

    python launch/sweep.py --config=configs/propos_digits.py --sweep=sweeps/table6.py \
        --workdir=DIR --seeds=0,1,2 [--print_only] [--extra=--config.train.epochs=100]

A sweep file defines `get_sweep()`, a dict {grid point name: {config key: value}}. Each run gets
DIR/<point>/seed<k> and is the ordinary `launch/main.py` command with `--config.seed=k` and the
point's overrides, so a run killed mid-sweep resumes when the sweep is started again (finished runs,
those with a summary.json, are skipped). --print_only prints the commands, one per line, for a
cluster scheduler. Then `python launch/aggregate.py --workdir=DIR` makes the mean ± std table.
"""
import shlex
import subprocess
import sys
from pathlib import Path

from absl import app, flags

from jaxclust.config import ConfigError, load_config_file

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "Base config file.")
flags.DEFINE_string("sweep", None, "Sweep file with get_sweep() -> {name: {key: value}}.")
flags.DEFINE_string("workdir", None, "Root directory; one sub-directory per grid point and seed.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds to run every grid point with.")
flags.DEFINE_multi_string("extra", [], "Extra arguments given to every run, e.g. --extra=--config.train.epochs=50.")
flags.DEFINE_bool("print_only", False, "Print the commands instead of running them.")
flags.mark_flags_as_required(["config", "sweep", "workdir"])

MAIN = Path(__file__).resolve().parent / "main.py"


def load_sweep(path: str) -> dict:
    if not Path(path).is_file():
        raise app.UsageError(f"sweep file {path!r} not found.")
    try:
        grid = load_config_file(path, "get_sweep")
    except ConfigError as e:
        raise app.UsageError(str(e)) from e
    if not grid or not all(isinstance(v, dict) for v in grid.values()):
        raise app.UsageError(f"{path}: get_sweep() must return a non-empty dict of {{name: {{key: value}}}}.")
    return grid


def override(key: str, value) -> str:
    if isinstance(value, (tuple, list)):
        value = "(" + ",".join(map(str, value)) + ("," if len(value) == 1 else "") + ")"
    return f"--config.{key}={value}"


def commands(config: str, grid: dict, seeds, root: Path, extra) -> list[tuple[Path, list[str]]]:
    runs = []
    for name, overrides in grid.items():
        for seed in seeds:
            workdir = root / name / f"seed{seed}"
            cmd = [sys.executable, str(MAIN), f"--config={config}", f"--workdir={workdir}",
                   f"--config.seed={int(seed)}", *(override(k, v) for k, v in overrides.items()), *extra]
            runs.append((workdir, cmd))
    return runs


def main(argv):
    del argv
    runs = commands(FLAGS.config, load_sweep(FLAGS.sweep), FLAGS.seeds, Path(FLAGS.workdir), FLAGS.extra)
    if FLAGS.print_only:
        for _, cmd in runs:
            print(shlex.join(cmd))
        return
    for i, (workdir, cmd) in enumerate(runs, 1):
        if (workdir / "summary.json").exists():
            print(f"[{i}/{len(runs)}] {workdir}: done already, skipped", flush=True)
            continue
        print(f"[{i}/{len(runs)}] {shlex.join(cmd)}", flush=True)
        result = subprocess.run(cmd)
        if result.returncode != 0:
            sys.exit(f"run {workdir} failed with exit code {result.returncode}; fix it and start the sweep again.")


if __name__ == "__main__":
    app.run(main)
