"""Turns the workdirs of a sweep into the paper's kind of table: mean ± std over seeds.

    python launch/aggregate.py --workdir=DIR [--metrics=nmi,acc,ari] [--scale=100]

Reads DIR/<point>/<seed dir>/summary.json, prints a markdown table and writes DIR/results.md and
DIR/results.csv (one row per grid point: runs, then mean and std of each metric). std is the sample
standard deviation (ddof=1), 0 for a single run.
"""
import csv
import json
from pathlib import Path

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Root directory of a sweep.")
flags.DEFINE_list("metrics", ["nmi", "acc", "ari"], "summary.json fields to aggregate.")
flags.DEFINE_float("scale", 100.0, "Multiply the metrics by this (the papers report percentages).")
flags.mark_flags_as_required(["workdir"])


def collect(root: Path) -> dict[str, list[dict]]:
    """{grid point: [summary of each finished seed]}, in the order the points were created."""
    points = {}
    for summary in sorted(root.glob("*/*/summary.json"), key=lambda p: (p.parent.parent.stat().st_mtime, str(p))):
        points.setdefault(summary.parent.parent.name, []).append(json.loads(summary.read_text()))
    return points


def aggregate(points: dict, metrics, scale: float) -> list[dict]:
    rows = []
    for name, summaries in points.items():
        row = {"point": name, "runs": len(summaries)}
        for m in metrics:
            values = np.array([s[m] for s in summaries], float) * scale
            row[f"{m}_mean"] = float(values.mean())
            row[f"{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def markdown(rows, metrics) -> str:
    head = "| point | runs | " + " | ".join(m.upper() for m in metrics) + " |"
    lines = [head, "|" + "---|" * (2 + len(metrics))]
    for r in rows:
        cells = " | ".join(f"{r[f'{m}_mean']:.1f} ± {r[f'{m}_std']:.1f}" for m in metrics)
        lines.append(f"| {r['point']} | {r['runs']} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    root = Path(FLAGS.workdir)
    points = collect(root)
    if not points:
        raise app.UsageError(f"no finished run (no */*/summary.json) under {root}.")
    rows = aggregate(points, FLAGS.metrics, FLAGS.scale)
    table = markdown(rows, FLAGS.metrics)
    (root / "results.md").write_text(table)
    with (root / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(table, end="")
    print(f"written {root / 'results.md'} and {root / 'results.csv'}")


if __name__ == "__main__":
    app.run(main)
