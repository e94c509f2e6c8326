"""End to end on the embedded digits: train, cluster, write metrics.jsonl and summary.json, resume."""
import json
import shutil
from pathlib import Path

import pytest

from jaxclust.config import load_config_file
from jaxclust.trainer import train_and_evaluate

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = {"wall_seconds", "session_seconds", "e_step_seconds"}


def load_config(name):
    return load_config_file(ROOT / "configs" / f"{name}.py")


def tiny_digits_config(epochs: int = 3):
    """propos_digits with a tiny network and run: compiles in seconds, checkpoints every epoch."""
    c = load_config("propos_digits")
    c.model.convnet_widths = (8, 16)
    c.model.projector_hidden = 32
    c.model.projector_dim = 16
    c.model.predictor_hidden = 32
    c.train.epochs = epochs
    c.train.batch_size = 256
    c.train.checkpoint_every_epochs = 1
    c.optim.warmup_epochs = 1  # PSL and the PSA noise switch on from epoch 2
    c.cluster.every = 1
    c.kmeans.n_init = 2
    c.kmeans.max_iter = 20
    return c


def strip_timing(record):
    return {k: v for k, v in record.items() if k not in TIMING_KEYS}


def read_jsonl(path):
    return [strip_timing(json.loads(line)) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("digits")
    summary = train_and_evaluate(tiny_digits_config(), workdir)
    return workdir, summary


def test_run_writes_metrics_and_summary(finished_run):
    workdir, summary = finished_run
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    # one record per E-step: before training, then after every epoch
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    for r in records:
        for key in ("epoch", "step", "nmi", "acc", "ari", "uniformity", "imbalance", "loss"):
            assert key in r
        assert 0.0 <= r["nmi"] <= 1.0 and 0.0 <= r["acc"] <= 1.0
    assert records[0]["loss"] is None and all(isinstance(r["loss"], float) for r in records[1:])
    # from the second E-step on, how much the clusters changed since the one before
    assert "nmi_previous" not in records[0] and all(0.0 <= r["nmi_previous"] <= 1.0 for r in records[1:])
    assert [r["step"] for r in records] == [0, 7, 14, 21]  # 1797 // 256 = 7 steps per epoch
    on_disk = json.loads((workdir / "summary.json").read_text())
    assert on_disk == summary
    assert summary["wall_seconds"] > 0
    assert strip_timing(records[-1]).items() <= strip_timing(summary).items()


def test_nmi_previous_is_the_nmi_between_consecutive_e_steps_labels(finished_run):
    from sklearn.metrics import normalized_mutual_info_score

    import jaxclust

    workdir, _ = finished_run
    records = read_jsonl(workdir / "metrics.jsonl")
    # the two checkpoints kept (epochs 2 and 3) hold the labels of their epochs' E-steps
    before, after = (jaxclust.load(workdir, checkpoint=e).labels for e in (2, 3))
    assert records[3]["nmi_previous"] == pytest.approx(normalized_mutual_info_score(before, after), rel=1e-12)


def test_resume_from_last_checkpoint_continues_exactly(finished_run, tmp_path):
    workdir, summary = finished_run
    resumed = tmp_path / "resumed"
    shutil.copytree(workdir, resumed)
    # Lose the last epoch as a kill after epoch 2's checkpoint would: no epoch-3 checkpoint, no summary.
    shutil.rmtree(resumed / "checkpoints" / "3")
    (resumed / "summary.json").unlink()
    lines = (resumed / "metrics.jsonl").read_text().splitlines()
    (resumed / "metrics.jsonl").write_text("\n".join(lines[:-1]) + "\n")

    again = train_and_evaluate(tiny_digits_config(), resumed)
    assert read_jsonl(resumed / "metrics.jsonl") == read_jsonl(workdir / "metrics.jsonl")
    assert strip_timing(again) == strip_timing(summary)


def test_over_clustering_end_to_end(tmp_path):
    """K = 20 on the 10 digit classes: Hungarian ACC on the non-square confusion matrix, or the
    official rule (ACC = 0 when the number of clusters differs from the number of classes)."""
    cfg = tiny_digits_config()
    cfg.train.epochs, cfg.cluster.num_clusters = 1, 20
    summary = train_and_evaluate(cfg, tmp_path / "hungarian")
    assert 0.0 < summary["acc"] <= 1.0 and 0.0 < summary["nmi"] <= 1.0
    cfg.eval.acc_rule = "official"
    official = train_and_evaluate(cfg, tmp_path / "official")
    assert official["acc"] == 0.0 and official["nmi"] == summary["nmi"]
