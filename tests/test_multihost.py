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


def test_two_process_streaming_run_reads_each_host_shard(tmp_path):
    """Streaming from a folder on 2 processes: each host feeds its own shard (20 and 21 images, so the
    E-step pads one host's last chunk and gives it an empty call), and every image is clustered."""
    import numpy as np
    from PIL import Image

    rng = np.random.RandomState(0)
    for i in range(41):
        path = tmp_path / "images" / f"class{i % 2}" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(rng.normal(60 + 140 * (i % 2), 8, (8, 8)), 0, 255).astype(np.uint8)).save(path)
    stream = ["--config.data.source=folder", "--config.data.name=toy", f"--config.data.path={tmp_path / 'images'}",
              "--config.data.streaming=True", "--config.cluster.num_clusters=2", "--config.train.batch_size=8",
              "--config.train.embed_batch_size=8", "--config.train.epochs=2", "--config.train.checkpoint_every_steps=3"]
    address = f"127.0.0.1:{free_port()}"
    dist = ["--distributed", f"--coordinator_address={address}", "--num_processes=2"]
    procs = [launch([*dist, f"--process_id={i}", *stream], tmp_path / "run") for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    assert "toy (41 images 8x8x1), 2 epochs x 5 steps" in outputs[0]
    records = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2]  # one record per epoch
    assert [r["epoch"] for r in records if "nmi" in r] == [0, 2]  # E-steps every 5 epochs, and after the last
    # two classes 140 grey levels apart (noise std 8): a correct E-step over all 41 images finds them exactly
    assert records[0]["nmi"] == records[-1]["nmi"] == 1.0
    assert (tmp_path / "run" / "step_checkpoints").is_dir()
