"""launch/sweep.py prints one command per run and checks the grid first; launch/aggregate.py computes
mean ± std per grid point, lists unfinished runs and refuses points that mix configs. Sweep trees are
written by the tests (config.json, summary.json, metrics.jsonl): no training."""
import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "launch"))  # appended: launch/main.py must not shadow anything

import aggregate  # noqa: E402
import sweep  # noqa: E402

# A config file of the shape of a real one, without importing jax: the sweep checks stay fast.
TINY_CONFIG = """
import ml_collections

def get_config():
    return ml_collections.ConfigDict({"seed": 0, "train": {"epochs": 20, "log_every_epochs": 1},
                                      "method": {"sigma": 0.001, "psl_weight": 0.5}})
"""


def launch(script, *args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "launch" / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def snapshot(root: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def assert_user_error(out, before, root, *words):
    """Exit code 2, one line on stderr starting with 'error:', no traceback, nothing written."""
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert snapshot(root) == before
    for word in words:
        assert word in lines[0], (word, lines[0])


def make_run(root, point, seed, epochs=20, sigma=0.001, summary=None, metrics=(20,), log_every=1):
    """DIR/<point>/seed<k> as launch/main.py leaves it; summary=None: an unfinished run."""
    d = root / point / f"seed{seed}"
    d.mkdir(parents=True)
    config = {"seed": seed, "train": {"epochs": epochs, "log_every_epochs": log_every},
              "method": {"name": "propos", "sigma": sigma}}
    (d / "config.json").write_text(json.dumps(config))
    (d / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "nmi": 0.5}) + "\n" for e in metrics))
    if summary is not None:
        (d / "summary.json").write_text(json.dumps({"epochs": epochs, "method": "propos", **summary}))
    return d


# ---- sweep.py


def test_sweep_prints_absolute_commands_one_per_point_and_seed(tmp_path):
    """Relative --config and --workdir, given from another directory, come out absolute."""
    config = os.path.relpath(ROOT / "configs" / "propos_digits.py", tmp_path)
    out = launch("sweep.py", f"--config={config}", f"--sweep={ROOT / 'sweeps' / 'table6.py'}", "--workdir=runs",
                 "--seeds=0,1,2", "--print_only", "--extra=--config.train.epochs=5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 6 * 3
    byol_seed2 = [shlex.split(line) for line in lines if f"--workdir={tmp_path}/runs/byol/seed2" in line]
    assert len(byol_seed2) == 1
    cmd = byol_seed2[0]
    assert cmd[:3] == [sys.executable, str(ROOT / "launch" / "main.py"), f"--config={ROOT / 'configs' / 'propos_digits.py'}"]
    for part in ("--config.seed=2", "--config.method.psl_weight=0.0", "--config.method.sigma=0.0",
                 "--config.method.ema_increase=True", "--config.train.epochs=5"):
        assert part in cmd
    assert not (tmp_path / "runs").exists()


def test_sweep_checks_every_point_against_the_config(tmp_path):
    (tmp_path / "base.py").write_text(TINY_CONFIG)
    cfg = sweep.load_config(str(tmp_path / "base.py"))
    sweep.check_grid(cfg, {"a": {"method.sigma": 0, "train.epochs": 3}, "b": {}}, ["--config.train.epochs=5"], "s.py")
    with pytest.raises(sweep.UserError, match="did you mean 'method.sigma'"):
        sweep.check_grid(cfg, {"a": {"method.sigmaa": 0.0}}, [], "s.py")
    with pytest.raises(sweep.UserError, match="train.epochs is of type int"):
        sweep.check_grid(cfg, {"a": {"train.epochs": 2.5}}, [], "s.py")
    assert cfg.train.epochs == 20  # the checks set a copy


SWEEP_ERRORS = {  # name: (sweep file text or None, extra arguments, words of the message)
    "seed_not_integer": (None, ["--seeds=a"], ["--seeds", "'a'"]),
    "seeds_empty": (None, ["--seeds="], ["--seeds is empty"]),
    "config_missing": (None, ["--config=nope.py"], ["'nope.py' not found"]),
    "config_raises": (None, ["--config=raises.py"], ["raises.py", "ZeroDivisionError"]),
    "sweep_missing": (None, ["--sweep=nope.py"], ["sweep file 'nope.py' not found"]),
    "sweep_raises": ("def get_sweep():\n    raise RuntimeError('boom')\n", [], ["sweep file 'grid.py'", "RuntimeError", "boom"]),
    "sweep_not_dict": ("def get_sweep():\n    return [1]\n", [], ["returned a list"]),
    "sweep_empty": ("def get_sweep():\n    return {}\n", [], ["empty dict"]),
    "point_not_dict": ("def get_sweep():\n    return {'a': 1}\n", [], ["point 'a' is 1, not a dict"]),
    "unknown_key": ("def get_sweep():\n    return {'a': {}, 'b': {'method.sigmaa': 0.0}}\n", [],
                    ["point 'b'", "'method.sigmaa'", "did you mean 'method.sigma'"]),
    "section_key": ("def get_sweep():\n    return {'a': {'method': 1}}\n", [], ["'method', which is a section"]),
    "point_sets_seed": ("def get_sweep():\n    return {'a': {'seed': 3}}\n", [], ["sets seed, which --seeds sets"]),
    "wrong_type": ("def get_sweep():\n    return {'a': {'method.sigma': 'x'}}\n", [], ["method.sigma to 'x'"]),
    "extra_unknown_key": (None, ["--extra=--config.train.epoch=3"], ["did you mean 'train.epochs'"]),
    "workdir_is_file": (None, ["--workdir=afile"], ["afile is a file"]),
    "unknown_flag": (None, ["--bogus=1"], ["Unknown command line flag 'bogus'"]),
    "stray_argument": (None, ["bogus"], ["unexpected arguments: bogus"]),
}


@pytest.mark.parametrize("case", SWEEP_ERRORS)
def test_sweep_user_errors(tmp_path, case):
    """Without --print_only: refused before any run starts (no workdir made)."""
    text, args, words = SWEEP_ERRORS[case]
    (tmp_path / "base.py").write_text(TINY_CONFIG)
    (tmp_path / "raises.py").write_text("def get_config():\n    return 1 / 0\n")
    (tmp_path / "grid.py").write_text(text or "def get_sweep():\n    return {'a': {'method.sigma': 0.0}}\n")
    (tmp_path / "afile").write_text("")
    before = snapshot(tmp_path)
    out = launch("sweep.py", "--config=base.py", "--sweep=grid.py", "--workdir=w", *args, cwd=tmp_path)
    assert_user_error(out, before, tmp_path, *words)


# ---- aggregate.py


def test_aggregate_mean_and_sample_std(tmp_path):
    values = {"a": [0.80, 0.84, 0.82], "b": [0.5]}
    for point, nmis in values.items():
        for seed, nmi in enumerate(nmis):
            make_run(tmp_path, point, seed, sigma=0.0 if point == "b" else 0.001,
                     summary={"nmi": nmi, "acc": nmi / 2, "ari": 0.1})
    out = launch("aggregate.py", f"--workdir={tmp_path}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| a | 3 | 82.0 ± 2.0 | 41.0 ± 1.0 | 10.0 ± 0.0 |" in out.stdout
    rows = {r["point"]: r for r in csv.DictReader((tmp_path / "results.csv").open())}
    np.testing.assert_allclose(float(rows["a"]["nmi_std"]), np.std([80, 84, 82], ddof=1))
    assert rows["b"]["runs"] == "1" and float(rows["b"]["nmi_std"]) == 0.0
    assert rows["b"]["settings"] == "method.sigma=0.0"
    assert (tmp_path / "results.md").read_text() in out.stdout


def test_aggregate_lists_unfinished_runs_and_point_settings(tmp_path):
    make_run(tmp_path, "a", 0, summary={"nmi": 0.8})
    make_run(tmp_path, "a", 1, summary={"nmi": 0.6}, log_every=5)  # a logging key may differ
    make_run(tmp_path, "b", 0, sigma=0.0, summary={"nmi": 0.5})
    run = make_run(tmp_path, "b", 1, sigma=0.0, metrics=(5, 10))
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"epoch": 15, "nm')  # killed while writing: the record before counts
    make_run(tmp_path, "c", 0, sigma=0.1, metrics=())
    points = aggregate.collect(tmp_path)
    assert aggregate.check_mixed(points, allow_mixed=False) == []
    rows = aggregate.aggregate(points, ["nmi"], 100.0)
    text = aggregate.markdown(rows, ["nmi"], points)
    assert "| a | 2 | 70.0 ± 14.1 |" in text
    assert "| b | 1 (+1 unfinished) | 50.0 ± 0.0 |" in text
    assert "| c | 0 (+1 unfinished) | – |" in text
    assert "- b/seed1: epoch 10 of 20" in text and "- c/seed0: no epoch logged yet of 20" in text
    assert "- a: method.sigma=0.001" in text and "- c: method.sigma=0.1" in text


def test_aggregate_refuses_a_point_of_mixed_epochs_unless_allow_mixed(tmp_path):
    make_run(tmp_path, "a", 0, epochs=20, summary={"nmi": 0.8, "acc": 0.8, "ari": 0.8})
    make_run(tmp_path, "a", 1, epochs=6, summary={"nmi": 0.6, "acc": 0.6, "ari": 0.6})
    before = snapshot(tmp_path)
    out = launch("aggregate.py", f"--workdir={tmp_path}")
    assert_user_error(out, before, tmp_path, "point 'a'", "train.epochs [20 (seed0) vs 6 (seed1)]", "--allow_mixed")

    out = launch("aggregate.py", f"--workdir={tmp_path}", "--allow_mixed")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "WARNING (--allow_mixed): point 'a' differs in train.epochs" in out.stderr
    results = (tmp_path / "results.md").read_text()
    assert results.startswith("**WARNING (--allow_mixed)**: point 'a' differs in train.epochs")
    assert "| a | 2 | 70.0 ± 14.1 |" in results


def write_tree(root: Path, case: str) -> Path:
    """The sweep tree of an aggregate error case; returns the --workdir to give."""
    if case == "missing_dir":
        return root / "nope"
    if case == "workdir_is_file":
        (root / "afile").write_text("")
        return root / "afile"
    if case != "empty_dir":
        make_run(root, "a", 0, metrics=(5,))  # unfinished
    if case not in ("empty_dir", "no_finished_run"):
        make_run(root, "a", 1, summary={"nmi": 0.8, "acc": 0.7, "ari": 0.6})
    if case == "summary_not_json":
        (root / "a" / "seed1" / "summary.json").write_text('{"nmi": 0.8,')
    return root


AGGREGATE_ERRORS = {  # name: (extra arguments, words of the message)
    "missing_dir": ([], ["does not exist"]),
    "workdir_is_file": ([], ["not a directory"]),
    "empty_dir": ([], ["no run under"]),
    "no_finished_run": ([], ["no finished run", "a/seed0: epoch 5 of 20"]),
    "summary_not_json": ([], ["seed1/summary.json is not valid JSON"]),
    "unknown_metric": (["--metrics=nmi,foo"], ["no summary.json has the metric 'foo'", "acc, ari"]),
    "metric_not_number": (["--metrics=method"], ["'method'", "not a number"]),
    "metrics_empty": (["--metrics="], ["--metrics is empty"]),
    "bad_scale": (["--scale=x"], ["--scale=x"]),
    "workdir_missing_flag": (None, ["--workdir is required"]),
}


@pytest.mark.parametrize("case", AGGREGATE_ERRORS)
def test_aggregate_user_errors(tmp_path, case):
    args, words = AGGREGATE_ERRORS[case]
    workdir = write_tree(tmp_path, case)
    before = snapshot(tmp_path)
    out = launch("aggregate.py", *([f"--workdir={workdir}", *args] if args is not None else []))
    assert_user_error(out, before, tmp_path, *words)
