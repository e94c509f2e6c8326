"""Bad input is refused before any work, in one sentence, with nothing in the workdir overwritten;
a NaN loss stops the run and keeps the last good checkpoint."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxclust import api, trainer, workdir
from jaxclust.config import ConfigError
from jaxclust.trainer import check_config
from jaxclust.data.sources import DataError
from test_train_e2e import tiny_digits_config

ROOT = Path(__file__).resolve().parents[1]


def run_script(script, *args):
    return subprocess.run([sys.executable, str(ROOT / "launch" / script), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})


def launch(tmp_path, *args, script="main.py"):
    """launch/<script> on propos_digits; a later --config=FILE in `args` replaces it (absl: the last wins)."""
    return run_script(script, "--config=configs/propos_digits.py", f"--workdir={tmp_path / 'wd'}", *args)


def assert_one_error_line(out, message):
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [l for l in out.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], out.stderr[-2000:]
    assert "Traceback" not in out.stderr


BAD_CONFIG_FILES = {  # written to tmp_path: config files that cannot load
    "syntax.py": "def get_config(:\n",
    "raising.py": "from jaxclust.methods import default_config\n\ndef get_config():\n    return 1 / 0\n",
    "noentry.py": "x = 1\n",
}


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
    # the config file itself: config_flags would raise inside absl's parsing, with a traceback
    (["--config=configs/nope.py"],
     f"config file 'configs/nope.py' not found (relative to the current directory: {ROOT / 'configs' / 'nope.py'})."),
    (["--config={tmp}/nope.py"], "config file '{tmp}/nope.py' not found."),
    (["--config={tmp}/syntax.py"], "config file '{tmp}/syntax.py' has a syntax error at line 1: invalid syntax."),
    (["--config={tmp}/raising.py"], "config file '{tmp}/raising.py' raised ZeroDivisionError at line 4: division by zero."),
    (["--config={tmp}/noentry.py"], "'{tmp}/noentry.py' defines no get_config()."),
    (["--config="], "--config is empty"),
    # values the config gate refuses, through the command line
    (["--config.optim.lr=-0.1"], "optim.lr must be positive, got -0.1."),
    (["--config.method.temperature=0.0"], "method.temperature must be a number > 0, got 0.0."),
    (["--config.augment.flip_prob=1.5"], "augment.flip_prob must be a probability in [0, 1], got 1.5"),
    (["--config.train.epochs=20"], "train.epochs (20) is too short for optim.warmup_epochs (60); for a run this short "
                                   "add --config.optim.warmup_epochs=5."),
])
def test_bad_input_exits_2_with_one_sentence_and_writes_nothing(tmp_path, args, message):
    for name, text in BAD_CONFIG_FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "wd").mkdir()
    (tmp_path / "wd" / "metrics.jsonl").write_text("earlier results\n")
    message = message.replace("{tmp}", str(tmp_path))
    out = launch(tmp_path, *(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert_one_error_line(out, message)
    assert sorted(p.name for p in (tmp_path / "wd").iterdir()) == ["metrics.jsonl"]
    assert (tmp_path / "wd" / "metrics.jsonl").read_text() == "earlier results\n"


@pytest.mark.parametrize("config, overrides, message", [
    ("propos_digits", dict(optim__lr=0.0), "optim.lr must be positive, got 0.0."),
    ("propos_digits", dict(optim__momentum=1.0), "optim.momentum (SGD's momentum, Adam's beta1) must lie in [0, 1)"),
    ("propos_digits", dict(optim__weight_decay=-1e-4), "optim.weight_decay must be >= 0, got -0.0001."),
    ("propos_digits", dict(optim__warmup_epochs=-1), "optim.warmup_epochs (-1) must lie between 0 and train.epochs"),
    ("propos_digits", dict(train__epochs=-5), "train.epochs must be a positive integer, got -5."),
    ("propos_digits", dict(train__embed_batch_size=0), "train.embed_batch_size must be a positive integer, got 0."),
    ("propos_digits", dict(cluster__every=0), "cluster.every must be a positive integer, got 0."),
    ("propos_digits", dict(kmeans__tol=-1e-4), "kmeans.tol must be a number >= 0, got -0.0001."),
    ("propos_digits", dict(model__projector_dim=0), "model.projector_dim must be a positive integer, got 0."),
    ("propos_digits", dict(model__convnet_widths=(32, 0)), "model.convnet_widths must be positive integers, one per stage"),
    ("propos_digits", dict(augment__jitter_prob=-0.1), "augment.jitter_prob must be a probability in [0, 1], got -0.1"),
    ("propos_digits", dict(augment__crop_scale=(0.9, 0.2)), "augment.crop_scale must be (low, high) with low <= high"),
    ("propos_digits", dict(augment__crop_scale=(0.2, 1.5)), "augment.crop_scale must lie in (0, 1] (fractions of the image area)"),
    ("propos_digits", dict(augment__affine_scale=(1.1, 0.9)), "augment.affine_scale must be (low, high) with low <= high"),
    ("propos_digits", dict(augment__brightness=-0.4), "augment.brightness must be >= 0, got -0.4"),
    ("propos_digits", dict(augment__solarize_threshold=2.0), "augment.solarize_threshold must lie in [0, 1]"),
    ("propos_digits", dict(method__psl_weight=-0.5), "method.psl_weight must be a number >= 0, got -0.5."),
    ("propos_digits", dict(method__sigma=-0.001), "method.sigma must be a number >= 0, got -0.001."),
    ("propos_digits", dict(method__ema_momentum=1.5), "method.ema_momentum must be a number in [0, 1], got 1.5."),
    ("propos_digits", dict(method__psl_queue_size=-256), "method.psl_queue_size must be 0 (off) or a positive integer, got -256."),
    ("propos_digits", dict(method__psl_start_epoch=-3),
     "method.psl_start_epoch must be 0 (the end of the learning-rate warm-up) or a positive integer, got -3."),
    ("byol_digits", dict(method__ema_momentum=-0.1), "method.ema_momentum must be a number in [0, 1], got -0.1."),
    ("moco_digits", dict(method__queue_size=0), "method.queue_size must be a positive integer, got 0."),
    ("moco_digits", dict(method__temperature=-1.0), "method.temperature must be a number > 0, got -1.0."),
    ("pcl_digits", dict(method__proto_weight=-1.0), "method.proto_weight must be a number >= 0, got -1.0."),
    ("pcl_digits", dict(method__alpha=0.0), "method.alpha must be a number > 0, got 0.0."),
    ("pcl_digits", dict(method__concentration_percentiles=(90.0, 10.0)), "method.concentration_percentiles must satisfy 0 <= lo <= hi <= 100"),
    ("pcl_digits", dict(train__epochs=20), "train.epochs (20) is too short for optim.warmup_epochs (60); for a run this short "
                                          "add --config.optim.warmup_epochs=5."),  # proto_warmup_epochs follows it
    ("secu_digits", dict(method__label_weight=2.0), "method.label_weight must be a number in [0, 1], got 2.0."),
    ("secu_digits", dict(method__center_temperature=0.0), "method.center_temperature must be a number > 0, got 0.0."),
    ("secu_digits", dict(method__dual_lr=-0.1), "method.dual_lr must be a number >= 0, got -0.1."),
    ("secu_digits", dict(train__epochs=1), "train.epochs (1) is too short for optim.frozen_epochs (1), optim.warmup_epochs (10); "
                                          "for a run this short add --config.optim.frozen_epochs=0 --config.optim.warmup_epochs=0."),
    ("c2bin_digits", dict(method__clust_weight=-1.0), "method.clust_weight must be a number >= 0, got -1.0."),
    ("hadis_digits", dict(method__hsd_temperature=0.0), "method.hsd_temperature must be a number > 0, got 0.0."),
    ("hadis_digits", dict(method__hsd_weight=-0.1), "method.hsd_weight must be a number >= 0, got -0.1."),
])
def test_config_values_that_cannot_work_are_refused_in_one_sentence(config, overrides, message):
    """The gate (`check_config`, before any data is read) names the key, the value and what is allowed."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_config(api.get_config(config, **overrides))


@pytest.mark.parametrize("epochs", [None, 1, 5, 20])
@pytest.mark.parametrize("config", sorted(p.stem for p in (ROOT / "configs").glob("*_digits*.py")))
def test_shortened_digits_runs_work_or_name_the_flags_that_do(config, epochs, monkeypatch):
    """Every digits config passes the gate as it is; with fewer train.epochs it passes or its error names
    the flags to add, and with those it passes."""
    from jaxclust.methods import secu_self_label

    monkeypatch.setattr(secu_self_label, "secu_method", lambda cfg: None)  # needs a finished SeCu run, not the point
    cfg = api.get_config(config) if epochs is None else api.get_config(config, train__epochs=epochs)
    try:
        check_config(cfg)
        return
    except ConfigError as error:
        assert epochs is not None, error  # the defaults (220 epochs, ...) pass unchanged
        flags = re.findall(r"--config\.(\w+)\.(\w+)=(\d+)", str(error))
        assert flags, error
    for section, key, value in flags:
        cfg[section][key] = int(value)
    check_config(cfg)


@pytest.mark.parametrize("name", ["pcl_digits", "pcl_byol_cifar10", "pcl_byol_cifar20"])
def test_derived_keys_follow_overrides(name):
    """method.proto_warmup_epochs follows optim.warmup_epochs set after loading (the command line,
    api.get_config), also in the config.json a run writes; set itself, it leaves optim alone."""
    warmup = api.get_config(name).optim.warmup_epochs
    cfg = api.get_config(name, optim__warmup_epochs=5)
    assert cfg.method.proto_warmup_epochs == 5
    assert json.loads(cfg.to_json_best_effort())["method"]["proto_warmup_epochs"] == 5
    own = api.get_config(name, method__proto_warmup_epochs=7)
    assert (own.method.proto_warmup_epochs, own.optim.warmup_epochs) == (7, warmup)


def test_help_exits_0_and_points_to_config_help():
    out = run_script("main.py", "--help")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--workdir" in out.stdout and "--config=FILE --config_help" in out.stdout


def test_config_help_lists_the_keys_and_exits_0():
    out = run_script("main.py", "--config=configs/pcl_digits.py", "--config.optim.warmup_epochs=5", "--config_help")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--config.section.key=VALUE" in out.stdout
    assert {"optim.warmup_epochs = 5", "method.proto_warmup_epochs = 5", "augment.crop_scale = (0.08, 1.0)",
            "method.negatives = 'all'"} <= set(out.stdout.splitlines())
    out = run_script("main.py", "--config_help")  # no --config: the keys every config has
    assert out.returncode == 0, out.stderr[-2000:]
    assert "train.epochs = 1000" in out.stdout.splitlines() and "method.*: the method's own keys" in out.stdout


def test_evaluate_refuses_a_file_that_is_no_torch_checkpoint(tmp_path):
    pytest.importorskip("torch")
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "wd").mkdir()
    out = launch(tmp_path, f"--torch_checkpoint={tmp_path / 'random.pt'}", script="evaluate.py")
    assert_one_error_line(out, f"'{tmp_path / 'random.pt'}' is not a PyTorch checkpoint that torch.load can read")
    assert not any((tmp_path / "wd").iterdir())


def test_torch_files_that_hold_no_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    from jaxclust.convert import ConversionError, load_torch_state_dict

    torch.save({"x": 1}, tmp_path / "other.pt")
    cases = {"missing.pt": "no PyTorch checkpoint at", "other.pt": "the checkpoint holds no tensors (a dict of 'x')",
             ".": "is not a PyTorch checkpoint that torch.load can read (IsADirectoryError)"}
    for name, message in cases.items():
        with pytest.raises(ConversionError, match=re.escape(message)):
            load_torch_state_dict(str(tmp_path / name))


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
    monkeypatch.setattr(workdir.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 2**20))
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
    assert bank.file_names == tuple(str(tmp_path / c / f"{i}.png") for c in "ab" for i in range(3))  # broken.png left out
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


@pytest.mark.parametrize("command, message", [
    (["launch/compare_official.py"], "--official_repo is required (or --replay=DIR)."),
    (["launch/compare_official.py", "--official_repo=/nonexistent"], "is not a checkout of Hzzone/ProPos"),
    (["launch/predict.py", "--workdir=/nonexistent", "--images=x.npz", "--out=o"], "holds no jaxclust run"),
    (["-m", "jaxclust.evaluate.tensorboard", "/nonexistent"], "holds no metrics.jsonl"),
])
def test_tools_tell_a_mistake_in_one_sentence(command, message):
    out = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and out.stderr.startswith("error: ") and message in out.stderr, out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1
