"""Runs one config over a grid of overrides and seeds, one workdir per run.

    python launch/sweep.py --config=configs/propos_digits.py --sweep=sweeps/table6.py \
        --workdir=DIR --seeds=0,1,2 [--print_only] [--extra=--config.train.epochs=100]

A sweep file defines `get_sweep()`, a dict {grid point name: {config key: value}}. Each run gets
DIR/<point>/seed<k> and is the ordinary `launch/main.py` command with `--config.seed=k` and the
point's overrides, so a run killed mid-sweep resumes when the sweep is started again (finished runs,
those with a summary.json, are skipped). --print_only prints the commands, one per line, for a
cluster scheduler; their paths (python, main.py, config, workdir) are absolute, so they run from any
directory. Then `python launch/aggregate.py --workdir=DIR` makes the mean ± std table.

Before anything runs or is printed, the base config is loaded and every point's overrides (and the
--config.KEY of --extra) are set on a copy of it: a key the config does not have, or a value of the
wrong type, is refused. A user mistake is one sentence on stderr starting with "error: ", exit code 2,
and nothing written.
"""
import copy
import difflib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import ml_collections
from absl import flags

from jaxclust import cli
from jaxclust.cli import UserError
from jaxclust.config import ConfigError, load_config_file

FLAGS = flags.FLAGS
MAIN = Path(__file__).resolve().parent / "main.py"


def load(path: str, function: str, what: str):
    """`function()` of the Python file at `path`; any failure (missing file, an exception in the file)
    as a UserError naming the file."""
    try:
        return load_config_file(path, function)
    except ConfigError as error:  # any failure of the file; its messages say "config file" whatever the file is
        raise UserError(str(error).replace("config file", f"{what} file", 1)) from error


def load_config(path: str) -> ml_collections.ConfigDict:
    cfg = load(path, "get_config", "config")
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise UserError(f"{path}: get_config() returned a {type(cfg).__name__}, not a ConfigDict.")
    return cfg


def load_sweep(path: str) -> dict:
    grid = load(path, "get_sweep", "sweep")
    shape = "a non-empty dict {point name: {config key: value}}"
    if not isinstance(grid, dict):
        raise UserError(f"{path}: get_sweep() returned a {type(grid).__name__}; it must return {shape}.")
    if not grid:
        raise UserError(f"{path}: get_sweep() returned an empty dict; it must return {shape}.")
    for name, overrides in grid.items():
        # the name becomes a folder DIR/<name>
        if not isinstance(name, str) or not re.fullmatch(r"[\w.+=-]+", name) or name in (".", ".."):
            raise UserError(f"{path}: point name {name!r} is not a folder name (letters, digits, _ . + = -).")
        if not isinstance(overrides, dict):
            raise UserError(f"{path}: point {name!r} is {overrides!r}, not a dict {{config key: value}}.")
    return grid


def check_key(cfg, key, where: str) -> tuple:
    """(section, leaf) of the existing config key 'a.b.c'; UserError naming the nearest keys if none."""
    node, path = cfg, []
    for part in key.split(".") if isinstance(key, str) else [key]:
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            near = difflib.get_close_matches(str(part), list(node) if isinstance(node, ml_collections.ConfigDict) else [])
            hint = f"; did you mean {'.'.join([*path, near[0]])!r}?" if near else "."
            raise UserError(f"{where} sets {key!r}, which the config does not have{hint}")
        parent, node = node, node[part]
        path.append(part)
    if isinstance(node, ml_collections.ConfigDict):
        raise UserError(f"{where} sets {key!r}, which is a section of the config; set its keys one by one.")
    return parent, path[-1]


def check_grid(cfg, grid: dict, extra, sweep_path: str) -> None:
    """Every point's overrides set on a locked copy of `cfg`, as main.py will set them: the key must
    exist and the value take its type. The --config.KEY of --extra must exist too."""
    for name, overrides in grid.items():
        trial = copy.deepcopy(cfg)
        trial.lock()
        for key, value in overrides.items():
            if key == "seed":  # it would come after --config.seed=k and give every seed dir the same run
                raise UserError(f"{sweep_path}: point {name!r} sets seed, which --seeds sets; leave it out.")
            parent, leaf = check_key(trial, key, f"{sweep_path}: point {name!r}")
            try:
                parent[leaf] = value
            except (TypeError, ValueError) as error:
                raise UserError(f"{sweep_path}: point {name!r} sets {key} to {value!r}, but {key} is of "
                                f"type {type(parent[leaf]).__name__}.") from error
    for arg in extra:
        if re.match(r"--(config|workdir|config\.seed)=", arg):
            raise UserError(f"--extra={arg} sets what sweep.py sets for every run; leave it out.")
        match = re.match(r"--config\.([^=]+)=", arg)
        if match:
            check_key(cfg, match.group(1), f"--extra={arg}")


def parse_seeds(seeds) -> list[int]:
    if not seeds:
        raise UserError("--seeds is empty; give comma-separated integers, e.g. --seeds=0,1,2.")
    bad = [s for s in seeds if not re.fullmatch(r"\d+", s)]
    if bad:
        raise UserError(f"--seeds must be comma-separated non-negative integers, got {bad[0]!r}.")
    numbers = [int(s) for s in seeds]
    if len(set(numbers)) < len(numbers):
        raise UserError(f"--seeds gives a seed twice: {','.join(seeds)}.")
    return numbers


def override(key: str, value) -> str:
    if isinstance(value, (tuple, list)):
        value = "(" + ",".join(map(str, value)) + ("," if len(value) == 1 else "") + ")"
    return f"--config.{key}={value}"


def commands(config: Path, grid: dict, seeds, root: Path, extra) -> list[tuple[Path, list[str]]]:
    runs = []
    for name, overrides in grid.items():
        for seed in seeds:
            workdir = root / name / f"seed{seed}"
            cmd = [sys.executable, str(MAIN), f"--config={config}", f"--workdir={workdir}",
                   f"--config.seed={seed}", *(override(k, v) for k, v in overrides.items()), *extra]
            runs.append((workdir, cmd))
    return runs


def plan(config: str, sweep: str, workdir: str, seeds, extra) -> list[tuple[Path, list[str]]]:
    """Every check, then the runs with absolute paths (the printed commands work from any directory)."""
    seeds = parse_seeds(seeds)
    root = Path(workdir).resolve()
    if root.exists() and not root.is_dir():
        raise UserError(f"--workdir {workdir} is a file, not a directory.")
    grid = load_sweep(sweep)
    check_grid(load_config(config), grid, extra, sweep)
    return commands(Path(config).resolve(), grid, seeds, root, extra)


def main():
    runs = plan(FLAGS.config, FLAGS.sweep, FLAGS.workdir, FLAGS.seeds, FLAGS.extra)
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
            sys.exit(f"error: run {workdir} failed with exit code {result.returncode}; fix it and start the sweep again.")


def define_flags():
    """Flags are defined when run as a script only, so that tests can import this module."""
    flags.DEFINE_string("config", None, "Base config file.")
    flags.DEFINE_string("sweep", None, "Sweep file with get_sweep() -> {name: {key: value}}.")
    flags.DEFINE_string("workdir", None, "Root directory; one sub-directory per grid point and seed.")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds to run every grid point with.")
    flags.DEFINE_multi_string("extra", [], "Extra arguments given to every run, e.g. --extra=--config.train.epochs=50.")
    flags.DEFINE_bool("print_only", False, "Print the commands instead of running them.")


if __name__ == "__main__":
    define_flags()
    cli.run(main, required=("config", "sweep", "workdir"), quiet_libraries=False)
