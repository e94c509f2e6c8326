"""Turns the workdirs of a sweep into the paper's kind of table: mean ± std over seeds.

    python launch/aggregate.py --workdir=DIR [--metrics=nmi,acc,ari] [--scale=100] [--allow_mixed]

Reads every run DIR/<point>/<seed dir>/ (a folder with a config.json or a summary.json), prints a
markdown table and writes DIR/results.md and DIR/results.csv (one row per grid point: runs, then mean
and std of each metric). std is the sample standard deviation (ddof=1), 0 for a single run.

Nothing is left out silently:
- a run with config.json but no summary.json is unfinished: it is not in the means, and it is listed
  (point, seed dir, last epoch of its metrics.jsonl) under the table;
- the runs of a point must have the same config.json but for `seed` and the logging/checkpointing keys
  (IGNORED); a point that mixes e.g. train.epochs is refused, or with --allow_mixed averaged under a
  WARNING at the top of results.md;
- the config keys that differ between points (the grid) are listed as each point's settings.
A user mistake (missing or empty DIR, no finished run, a summary.json that is not JSON, a metric no
summary has) is one sentence on stderr starting with "error: ", exit code 2, and nothing written.
"""
import csv
import json
import sys
from pathlib import Path

import numpy as np
from absl import flags

from jaxclust import cli
from jaxclust.cli import UserError
from jaxclust.workdir import flatten

FLAGS = flags.FLAGS
# Keys that may differ between the seeds of one point: they do not change the result.
IGNORED = ("seed", "train.log_every_epochs", "train.checkpoint_every_epochs", "train.checkpoints_to_keep",
           "train.checkpoint_every_steps")
MISSING = "(missing)"  # a key one config.json has and another not (saved by another jaxclust version)


def read_json(path: Path):
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error}).") from error
    if not isinstance(value, dict):
        raise UserError(f"{path} is not a JSON object.")
    return value


def last_epoch(run: Path):
    """The epoch of the last record of metrics.jsonl, None if there is none yet. A run killed while
    writing may leave a cut last line: the record before it counts."""
    path = run / "metrics.jsonl"
    lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
    for line in reversed(lines):
        try:
            return int(json.loads(line)["epoch"])
        except (ValueError, TypeError, KeyError):
            continue
    return None


def collect(root: Path) -> dict[str, list[dict]]:
    """{grid point: [run]} in the order the points were created; a run is {"name": seed dir, "path", "config":
    flat config.json or None, "summary": summary.json or None (unfinished), "epoch": last epoch logged}."""
    if not root.exists():
        raise UserError(f"--workdir {root} does not exist.")
    if not root.is_dir():
        raise UserError(f"--workdir {root} is not a directory.")
    runs = [d for d in root.glob("*/*") if (d / "config.json").is_file() or (d / "summary.json").is_file()]
    if not runs:
        hint = "; it looks like the workdir of one run, give the sweep's root" if (root / "config.json").is_file() else ""
        raise UserError(f"no run under {root} (no {root}/<point>/<seed>/config.json or summary.json){hint}.")
    points = {}
    for d in sorted(runs, key=lambda d: (d.parent.stat().st_mtime, d.parent.name, d.name)):
        config, summary = d / "config.json", d / "summary.json"
        points.setdefault(d.parent.name, []).append({
            "name": d.name,
            "path": d,
            "config": flatten(read_json(config)) if config.is_file() else None,
            "summary": read_json(summary) if summary.is_file() else None,
            "epoch": last_epoch(d),
        })
    return points


def differences(configs: dict[str, dict]) -> dict[str, dict]:
    """{key: {name: value}} for the keys (but IGNORED) whose value is not the same in all `configs`."""
    keys = sorted(set().union(*configs.values()) - set(IGNORED))
    diff = {}
    for key in keys:
        values = {name: c.get(key, MISSING) for name, c in configs.items()}
        if len({json.dumps(v, sort_keys=True) for v in values.values()}) > 1:
            diff[key] = values
    return diff


def describe(values: dict) -> str:
    """'20 (seed0, seed1) vs 6 (seed2)': each value with the runs that have it."""
    groups = {}
    for name, value in values.items():
        groups.setdefault(json.dumps(value, sort_keys=True), (value, []))[1].append(name)
    return " vs ".join(f"{v!r} ({', '.join(names)})" for v, names in groups.values())


def check_mixed(points: dict, allow_mixed: bool) -> list[str]:
    """'point 'a' differs in train.epochs [20 (seed0) vs 6 (seed1)]' for each point whose runs differ in
    config; UserError unless allow_mixed."""
    mixed = []
    for point, runs in points.items():
        diff = differences({r["name"]: r["config"] for r in runs if r["config"] is not None})
        if diff:
            keys = [f"{k} [{describe(v)}]" for k, v in diff.items()]
            more = f" and {len(keys) - 4} more keys" if len(keys) > 5 else ""
            mixed.append(f"point {point!r} differs in {' and '.join(keys[:4] if more else keys)}{more}")
    if mixed and not allow_mixed:
        raise UserError("runs of the same point have different configs: " + "; ".join(mixed)
                        + "; finish or remove the odd runs, or give --allow_mixed to average them anyway.")
    return mixed


def settings(points: dict) -> dict[str, str]:
    """{point: 'key=value, ...'} for the config keys that differ between points (the grid), read from
    the first run of each point that has a config.json."""
    first = {p: next((r["config"] for r in runs if r["config"] is not None), None) for p, runs in points.items()}
    diff = differences({p: c for p, c in first.items() if c is not None})
    return {p: "(no config.json)" if c is None else ", ".join(f"{k}={diff[k][p]!r}" for k in diff)
            for p, c in first.items()}


def check_metrics(points: dict, metrics) -> None:
    if not metrics:
        raise UserError("--metrics is empty; name the summary.json fields to average, e.g. --metrics=nmi,acc,ari.")
    finished = [(r["path"] / "summary.json", r["summary"])
                for runs in points.values() for r in runs if r["summary"] is not None]
    for m in metrics:
        having = [name for name, s in finished if m in s]
        if not having:
            numeric = sorted({k for _, s in finished for k, v in s.items() if isinstance(v, (int, float))})
            raise UserError(f"no summary.json has the metric {m!r}; they have {', '.join(numeric)}.")
        for name, s in finished:
            if m not in s:
                raise UserError(f"{name} has no {m!r}, though {having[0]} has.")
            if not isinstance(s[m], (int, float)) or isinstance(s[m], bool):
                raise UserError(f"{m!r} in {name} is {s[m]!r}, not a number.")


def aggregate(points: dict, metrics, scale: float) -> list[dict]:
    """One row per point: runs (finished), unfinished, then mean and std of each metric over the
    finished runs (None for a point with none)."""
    rows = []
    for name, runs in points.items():
        done = [r["summary"] for r in runs if r["summary"] is not None]
        row = {"point": name, "runs": len(done), "unfinished": len(runs) - len(done)}
        for m in metrics:
            values = np.array([s[m] for s in done], float) * scale
            row[f"{m}_mean"] = float(values.mean()) if done else None
            row[f"{m}_std"] = (float(values.std(ddof=1)) if len(values) > 1 else 0.0) if done else None
        rows.append(row)
    return rows


def unfinished(points: dict) -> list[str]:
    lines = []
    for point, runs in points.items():
        for r in runs:
            if r["summary"] is None:
                of = f" of {r['config']['train.epochs']}" if r["config"] and "train.epochs" in r["config"] else ""
                done = f"epoch {r['epoch']}{of}" if r["epoch"] is not None else f"no epoch logged yet{of}"
                lines.append(f"{point}/{r['name']}: {done}")
    return lines


def markdown(rows, metrics, points: dict, mixed=()) -> str:
    lines = [f"**WARNING (--allow_mixed)**: {m}: its mean ± std mixes these runs." for m in mixed]
    lines += [""] if mixed else []
    lines += ["| point | runs | " + " | ".join(m.upper() for m in metrics) + " |", "|" + "---|" * (2 + len(metrics))]
    for r in rows:
        runs = f"{r['runs']} (+{r['unfinished']} unfinished)" if r["unfinished"] else str(r["runs"])
        cells = " | ".join("–" if r[f"{m}_mean"] is None else f"{r[f'{m}_mean']:.1f} ± {r[f'{m}_std']:.1f}"
                           for m in metrics)
        lines.append(f"| {r['point']} | {runs} | {cells} |")
    grid = settings(points)
    if any(grid.values()):
        lines += ["", "Settings of each point (the config keys that differ between points):"]
        lines += [f"- {p}: {s}" for p, s in grid.items()]
    todo = unfinished(points)
    if todo:
        lines += ["", "Unfinished runs (config.json but no summary.json; not in the means; epoch = last record "
                  "of metrics.jsonl):"]
        lines += [f"- {t}" for t in todo]
    unchecked = [f"{p}/{r['name']}" for p, runs in points.items() for r in runs if r["config"] is None]
    if unchecked:
        lines += ["", f"Runs without config.json (their settings could not be checked): {', '.join(unchecked)}"]
    return "\n".join(lines) + "\n"


def main():
    root = Path(FLAGS.workdir)
    points = collect(root)
    if not any(r["summary"] is not None for runs in points.values() for r in runs):
        todo = unfinished(points)
        raise UserError(f"no finished run (summary.json) under {root}; {len(todo)} unfinished: {', '.join(todo[:5])}"
                        f"{', ...' if len(todo) > 5 else ''}.")
    check_metrics(points, FLAGS.metrics)
    mixed = check_mixed(points, FLAGS.allow_mixed)
    rows = aggregate(points, FLAGS.metrics, FLAGS.scale)
    table = markdown(rows, FLAGS.metrics, points, mixed)
    for m in mixed:
        print(f"WARNING (--allow_mixed): {m}: its mean ± std mixes these runs.", file=sys.stderr)
    (root / "results.md").write_text(table)
    grid = settings(points)
    with (root / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*rows[0], "settings"])
        writer.writeheader()
        writer.writerows({**r, "settings": grid[r["point"]]} for r in rows)
    print(table, end="")
    print(f"written {root / 'results.md'} and {root / 'results.csv'}")


def define_flags():
    """Flags are defined when run as a script only, so that tests (and sweep.py) can import this module."""
    flags.DEFINE_string("workdir", None, "Root directory of a sweep.")
    flags.DEFINE_list("metrics", ["nmi", "acc", "ari"], "summary.json fields to aggregate.")
    flags.DEFINE_float("scale", 100.0, "Multiply the metrics by this (the papers report percentages).")
    flags.DEFINE_bool("allow_mixed", False, "Average the runs of a point even if their configs differ (with a warning).")


if __name__ == "__main__":
    define_flags()
    cli.run(main, required=("workdir",), quiet_libraries=False)
