"""A run killed with SIGKILL mid-epoch and started again with the same command ends with the same
metrics.jsonl and summary.json as an uninterrupted run; another seed gives other numbers."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--config=configs/propos_digits.py",
    "--config.train.epochs=4",
    "--config.optim.warmup_epochs=1",
    "--config.model.convnet_widths=(8,16)",
    "--config.model.projector_hidden=32",
    "--config.model.projector_dim=16",
    "--config.model.predictor_hidden=32",
    "--config.train.batch_size=64",
    "--config.train.checkpoint_every_epochs=1",
    "--config.kmeans.every=1",
    "--config.kmeans.n_init=2",
]
TIMING = {"wall_seconds", "session_seconds", "e_step_seconds"}


def command(workdir, *extra):
    return [sys.executable, str(ROOT / "launch" / "main.py"), *TINY, f"--workdir={workdir}", *extra]


def env():
    return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}


def run_to_end(workdir, *extra):
    out = subprocess.run(command(workdir, *extra), cwd=ROOT, env=env(), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def results(workdir):
    records = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((workdir / "summary.json").read_text())
    strip = lambda d: {k: v for k, v in d.items() if k not in TIMING}
    return [strip(r) for r in records], strip(summary)


def test_sigkill_mid_epoch_then_rerun_equals_uninterrupted(tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    # wait until epoch 2's checkpoint is complete, then kill somewhere inside epoch 3
    while not (killed / "checkpoints" / "2").is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists()

    out = run_to_end(killed)
    assert "resumed from the checkpoint of epoch" in out
    straight = tmp_path / "straight"
    run_to_end(straight)
    assert results(killed) == results(straight)

    other_seed = tmp_path / "seed1"
    run_to_end(other_seed, "--config.seed=1")
    assert results(other_seed)[0] != results(straight)[0]
