"""Bad input is refused before any work, in one sentence, with nothing in the workdir overwritten;
a NaN loss stops the run and keeps the last good checkpoint."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxclust import trainer
from jaxclust.config import ConfigError
from jaxclust.trainer import check_config
from jaxclust.data.sources import DataError
from test_train_e2e import tiny_digits_config

ROOT = Path(__file__).resolve().parents[1]


def launch(tmp_path, *args):
    cmd = [sys.executable, str(ROOT / "launch" / "main.py"), "--config=configs/propos_digits.py",
           f"--workdir={tmp_path / 'wd'}", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("args, message", [
    (["--config.train.epoch=3"], "unknown config key 'epoch'; did you mean \"epochs\"?"),
    (["--config.train.epochs=abc"], "invalid literal for int() with base 10: 'abc'"),
    (["--config.cluster.num_clusters=5000"], "cluster.num_clusters (5000) is larger than the data set (1797 images)"),
    (["--config.cluster.num_clusters=1"], "cluster.num_clusters must be an integer >= 2"),
    (["--config.train.batch_size=0"], "train.batch_size must be a positive integer"),
    (["--config.train.batch_size=4096"], "train.batch_size (4096) is larger than the data set"),
    (["--config.method.name=nope"], "method.name must be one of"),
    (["--config.model.backbone=vgg"], "model.backbone must be one of"),
    (["--config.data.source=npz", "--config.data.path=/nonexistent.npz"], "npz data set not found"),
    (["--config.model.backbone=resnet18", "--config.model.stem=imagenet"],
     "data.image_size (8) is smaller than the 32x downsampling of model.backbone='resnet18' with model.stem='imagenet'"),
    (["--config.model.convnet_widths=(8,8,8,8,8)"], "data.image_size (8) is smaller than the 16x downsampling"),
    (["--config.train.checkpoint_every_steps=-5"], "train.checkpoint_every_steps must be 0 (off) or a positive integer"),
])
def test_bad_input_exits_2_with_one_sentence_and_writes_nothing(tmp_path, args, message):
    (tmp_path / "wd").mkdir()
    (tmp_path / "wd" / "metrics.jsonl").write_text("earlier results\n")
    out = launch(tmp_path, *args)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [l for l in out.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert sorted(p.name for p in (tmp_path / "wd").iterdir()) == ["metrics.jsonl"]
    assert (tmp_path / "wd" / "metrics.jsonl").read_text() == "earlier results\n"


def test_batch_must_divide_over_devices():
    cfg = tiny_digits_config()
    cfg.train.batch_size = 100
    with pytest.raises(ConfigError, match=r"divisible by the number of devices \(8\)"):
        check_config(cfg, device_count=8)


def test_workdir_checks(tmp_path, monkeypatch):
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(trainer.WorkdirError, match="is a file"):
        trainer.check_workdir(afile / "run")
    monkeypatch.setattr(trainer.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 2**20))
    with pytest.raises(trainer.WorkdirError, match="1 MiB free"):
        trainer.check_workdir(tmp_path / "run")


def test_checkpoint_of_another_structure_is_refused(tmp_path):
    """Checkpoint compatibility is structural: a config whose state differs from the checkpoint's in
    any leaf (here the network's widths; a queue size or a head count alike) is refused, naming the
    leaves, before any restore; the same config resumes."""
    from contextlib import closing

    from jaxclust.checkpoint import Checkpointer

    run = trainer.Run(tiny_digits_config(), tmp_path)
    with closing(Checkpointer(tmp_path)) as checkpointer:
        checkpointer.save(1, run.init_state(), {"epoch": 1, "wall_seconds": 0.0, **run.identity})
    other = tiny_digits_config()
    other.model.convnet_widths = (8, 32)
    with pytest.raises(trainer.WorkdirError, match=r"another structure than this config's \(batch_stats/net/backbone/"):
        trainer.restore_state(trainer.Run(other, tmp_path))
    state, meta = trainer.restore_state(run)  # the same run resumes
    assert meta["epoch"] == 1


def test_bad_npz_files(tmp_path):
    from jaxclust.data.sources import load_npz

    cases = {
        "nan": (dict(images=np.full((4, 8, 8), np.nan, np.float32)), "NaN values"),
        "shape": (dict(images=np.zeros((4, 8, 8, 2), np.uint8)), "C = 1 or 3"),
        "labels": (dict(images=np.zeros((4, 8, 8), np.uint8), labels=np.zeros(3, np.int64)), r"labels must have shape \(4,\)"),
        "flabels": (dict(images=np.zeros((4, 8, 8), np.uint8), labels=np.zeros(4, np.float32)), "labels must be integers"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(DataError, match=message):
            load_npz(str(tmp_path / f"{name}.npz"))


def test_unreadable_folder_images_fail_or_are_skipped(tmp_path):
    from PIL import Image
    from jaxclust.data.sources import load_source

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "b" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "c").mkdir()  # a class of unreadable files only: the grey/colour detection skips them
    (tmp_path / "c" / "text.jpg").write_text("not a jpeg either")
    cfg = tiny_digits_config()
    cfg.data.source, cfg.data.path, cfg.data.name, cfg.data.image_size = "folder", str(tmp_path), "mine", 8
    with pytest.raises(DataError, match=r"cannot read .*broken.png.*data.skip_unreadable=True"):
        load_source(cfg.data)
    cfg.data.skip_unreadable = True
    bank = load_source(cfg.data)
    assert bank.num_examples == 6 and list(bank.labels) == [0, 0, 0, 1, 1, 1]
    assert bank.class_names == ("a", "b", "c")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = tiny_digits_config()
    cfg.train.epochs = 3
    cfg.optim.warmup_epochs = 1
    cfg.train.checkpoint_every_steps = 1  # a step checkpoint is written only of a state with finite losses
    cfg.method.psl_weight = 1e38  # PSL switches on in epoch 2; the update overflows the weights
    with pytest.raises(FloatingPointError, match=r"non-finite loss at epoch 2, step (8|9|1[0-4]): .*'psl_loss'") as error:
        trainer.train_and_evaluate(cfg, tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == ["1"]
    bad_step = int(str(error.value).split("step ")[1].split(":")[0])
    newest = max(int(p.name) for p in (tmp_path / "step_checkpoints").iterdir() if p.name.isdigit())
    assert newest == bad_step - 1
    assert not (tmp_path / "summary.json").exists()
