"""launch/sweep.py prints one command per run; launch/aggregate.py computes mean ± std per grid point."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run(script, *args):
    out = subprocess.run([sys.executable, str(ROOT / "launch" / script), *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_sweep_prints_one_command_per_point_and_seed(tmp_path):
    out = run("sweep.py", "--config=configs/propos_digits.py", "--sweep=sweeps/table6.py",
              f"--workdir={tmp_path}", "--seeds=0,1,2", "--print_only", "--extra=--config.train.epochs=5")
    lines = out.strip().splitlines()
    assert len(lines) == 6 * 3
    byol_seed2 = [l for l in lines if f"--workdir={tmp_path}/byol/seed2" in l]
    assert len(byol_seed2) == 1
    for part in ("--config.seed=2", "--config.method.psl_weight=0.0", "--config.method.sigma=0.0",
                 "--config.method.ema_increase=True", "--config.train.epochs=5"):
        assert part in byol_seed2[0]


def test_aggregate_mean_and_sample_std(tmp_path):
    values = {"a": [0.80, 0.84, 0.82], "b": [0.5]}
    for point, nmis in values.items():
        for seed, nmi in enumerate(nmis):
            d = tmp_path / point / f"seed{seed}"
            d.mkdir(parents=True)
            (d / "summary.json").write_text(json.dumps({"nmi": nmi, "acc": nmi / 2, "ari": 0.1}))
    out = run("aggregate.py", f"--workdir={tmp_path}")
    assert "| a | 3 | 82.0 ± 2.0 | 41.0 ± 1.0 | 10.0 ± 0.0 |" in out
    rows = {r["point"]: r for r in csv.DictReader((tmp_path / "results.csv").open())}
    np.testing.assert_allclose(float(rows["a"]["nmi_std"]), np.std([80, 84, 82], ddof=1))
    assert rows["b"]["runs"] == "1" and float(rows["b"]["nmi_std"]) == 0.0
    assert (tmp_path / "results.md").read_text() in out
