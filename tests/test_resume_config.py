"""A resume never changes what a run computes silently: a changed config is refused with the keys
named and the workdir untouched, unless accepted (then config.json holds the new config and
config_history.jsonl the change); more epochs continue to the new end exactly as a run of that length."""
import hashlib
import json
from pathlib import Path

import pytest

from jaxclust.trainer import WorkdirError, train_and_evaluate
from jaxclust.workdir import CONFIG_HISTORY_FILE, config_changes, is_resume_safe, load_run_config
from test_train_e2e import read_jsonl, tiny_digits_config

TIMING = {"wall_seconds", "session_seconds"}


def config(epochs):
    """The tiny digits run on schedules that do not depend on the run's length (constant learning rate
    and EMA momentum), so that 2 epochs then 3 more is the same computation as 5 at once."""
    c = tiny_digits_config(epochs)
    c.optim.schedule = "constant"
    c.optim.warmup_epochs = 0
    c.method.ema_increase = False
    return c


def snapshot(workdir: Path) -> dict:
    return {str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(workdir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("two")
    train_and_evaluate(config(2), workdir)
    return workdir


def test_changed_learning_rate_is_refused_with_the_key_named(two_epochs):
    before = snapshot(two_epochs)
    cfg = config(2)
    cfg.optim.lr = 0.5
    cfg.method.psl_weight = 0.0
    with pytest.raises(WorkdirError, match=r"method\.psl_weight: 0\.5 -> 0\.0; optim\.lr: 0\.05 -> 0\.5.*--accept_config_change"):
        train_and_evaluate(cfg, two_epochs)
    assert snapshot(two_epochs) == before  # nothing written, nothing loaded


def test_more_epochs_continue_to_the_new_end_as_a_run_of_that_length(two_epochs, tmp_path):
    import shutil

    workdir = tmp_path / "extended"
    shutil.copytree(two_epochs, workdir)
    (workdir / "summary.json").unlink()
    extended = train_and_evaluate(config(4), workdir)  # train.epochs upwards: accepted
    straight = train_and_evaluate(config(4), tmp_path / "straight")
    strip = lambda d: {k: v for k, v in d.items() if k not in TIMING}
    assert strip(extended) == strip(straight)
    assert read_jsonl(workdir / "metrics.jsonl") == read_jsonl(tmp_path / "straight" / "metrics.jsonl")
    history = [json.loads(line) for line in (workdir / CONFIG_HISTORY_FILE).read_text().splitlines()]
    assert history[-1]["changes"] == {"train.epochs": [2, 4]} and history[-1]["accepted"] == []
    assert history[-1]["resumed_from_epoch"] == 2
    assert load_run_config(workdir).train.epochs == 4  # config.json is the config the run went on with


def test_accepted_change_is_recorded(two_epochs, tmp_path):
    import shutil

    workdir = tmp_path / "accepted"
    shutil.copytree(two_epochs, workdir)
    cfg = config(3)
    cfg.optim.lr = 0.02
    summary = train_and_evaluate(cfg, workdir, accept_config_change=True)
    assert summary["epoch"] == 3
    line = json.loads((workdir / CONFIG_HISTORY_FILE).read_text().splitlines()[-1])
    assert line["changes"] == {"optim.lr": [0.05, 0.02], "train.epochs": [2, 3]} and line["accepted"] == ["optim.lr"]
    assert load_run_config(workdir).optim.lr == 0.02


def test_which_changes_are_safe():
    old, new = config(5), config(5)
    new.train.epochs, new.train.log_every_epochs, new.eval.acc_rule = 7, 3, "official"
    new.kmeans.n_init = 9
    changes = config_changes(old, new)
    assert set(changes) == {"train.epochs", "train.log_every_epochs", "eval.acc_rule", "kmeans.n_init"}
    assert [k for k, v in changes.items() if not is_resume_safe(k, *v)] == ["kmeans.n_init"]
    assert not is_resume_safe("train.epochs", 5, 4)  # fewer epochs than the run was set to: a change
