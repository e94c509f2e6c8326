"""A 2-process run on localhost (CPU, coordinator on 127.0.0.1) trains and checkpoints; a 1-process
run of the same command on the same workdir restores that checkpoint."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--config=configs/propos_digits.py",
    "--config.train.epochs=1",
    "--config.optim.warmup_epochs=0",
    "--config.model.convnet_widths=(8,16)",
    "--config.model.projector_hidden=32",
    "--config.model.projector_dim=16",
    "--config.model.predictor_hidden=32",
    "--config.train.batch_size=256",
    "--config.kmeans.n_init=2",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args, workdir):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    cmd = [sys.executable, str(ROOT / "launch" / "main.py"), *TINY, f"--workdir={workdir}", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def without_timing(summary):
    return {k: v for k, v in summary.items() if k not in ("wall_seconds", "session_seconds")}


def test_two_process_run_and_single_process_restore(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    dist = ["--distributed", f"--coordinator_address={address}", "--num_processes=2"]
    procs = [launch([*dist, f"--process_id={i}"], tmp_path) for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    assert "2 device(s)" in outputs[0]
    assert "epoch 1/1" in outputs[0] and "epoch 1/1" not in outputs[1]  # only process 0 logs
    assert (tmp_path / "checkpoints" / "1").is_dir()
    two_process = json.loads((tmp_path / "summary.json").read_text())
    (tmp_path / "summary.json").unlink()

    single = launch([], tmp_path)
    out = single.communicate(timeout=600)[0]
    assert single.returncode == 0, out[-3000:]
    assert "resumed from the checkpoint of epoch 1" in out
    assert without_timing(json.loads((tmp_path / "summary.json").read_text())) == without_timing(two_process)
