"""SeCu, C2BIN and HaDis end to end on the embedded digits: the loop logs the same fields from each
method's own labels (SeCu and C2BIN run no k-means), and SeCu's extra state survives a resume."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from jaxclust.config import load_config_file
from jaxclust.methods import METHODS, default_config
from jaxclust.trainer import train_and_evaluate

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("epoch", "step", "nmi", "acc", "ari", "ami", "uniformity", "imbalance", "loss", "lr")
TIMING = {"wall_seconds", "session_seconds", "e_step_seconds"}


def tiny_digits_config(method):
    c = load_config_file(ROOT / "configs" / f"{method}_digits.py")
    c.model.convnet_widths = (8, 16)
    c.model.projector_hidden, c.model.projector_dim = 32, 16
    c.model.predictor_hidden = 32
    c.train.epochs, c.train.batch_size, c.train.checkpoint_every_epochs = 2, 256, 1
    c.optim.warmup_epochs = 0
    c.cluster.every, c.kmeans.n_init, c.kmeans.max_iter = 1, 2, 20
    if method == "secu":
        c.method.num_heads = 2
    return c


# the registered members of the family (a method removed from the registry leaves these tests whole)
FAMILY = [m for m in ("secu", "c2bin", "hadis") if m in METHODS]


@pytest.fixture(scope="module", params=FAMILY)
def finished_run(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(request.param)
    return request.param, workdir, train_and_evaluate(tiny_digits_config(request.param), workdir)


def test_same_metrics_fields_as_propos(finished_run):
    method, workdir, summary = finished_run
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2]
    for r in records[1:]:
        assert all(key in r for key in FIELDS), sorted(r)
        assert 0.0 <= r["nmi"] <= 1.0 and 0.0 <= r["acc"] <= 1.0 and 0.0 <= r["imbalance"] <= 1.0
    assert summary["method"] == method
    assert all(key in summary for key in ("nmi", "acc", "ari", "wall_seconds"))


def test_secu_resumes_exactly(finished_run, tmp_path):
    method, workdir, summary = finished_run
    if method != "secu":
        pytest.skip("resuming is the loop's; SeCu is the method with per-instance state and no target network")
    resumed = tmp_path / "resumed"
    shutil.copytree(workdir, resumed)
    shutil.rmtree(resumed / "checkpoints" / "2")
    (resumed / "summary.json").unlink()
    lines = (resumed / "metrics.jsonl").read_text().splitlines()
    (resumed / "metrics.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    again = train_and_evaluate(tiny_digits_config("secu"), resumed)
    assert {k: v for k, v in again.items() if k not in TIMING} == {k: v for k, v in summary.items() if k not in TIMING}


def test_secu_self_label_stage_starts_from_the_secu_run(finished_run, tmp_path):
    method, workdir, summary = finished_run
    if method != "secu":
        pytest.skip("the self-labeling stage fine-tunes a SeCu run")
    cfg = tiny_digits_config("secu")
    cfg.method = default_config("secu_self_label").method
    cfg.method.init_workdir = str(workdir)
    cfg.method.warmup_epochs = 1
    cfg.optim.frozen_epochs = 0
    records_path = tmp_path / "self_label" / "metrics.jsonl"
    again = train_and_evaluate(cfg, tmp_path / "self_label")
    first = json.loads(records_path.read_text().splitlines()[0])
    # before any fine-tuning step its head-K predictions are the SeCu run's final ones
    assert first["nmi"] == pytest.approx(summary["nmi"], abs=1e-9) and first["acc"] == pytest.approx(summary["acc"])
    assert again["epoch"] == 2


def test_predict_reproduces_the_last_e_step(finished_run):
    """jaxclust.load(W).predict on the training images gives the last E-step's labels (`.labels`, saved
    with the checkpoint, as every method's state does not hold them) exactly: scored, the same
    NMI/ACC as the run's final record, by each method's own rule (SeCu's head-K centres, C2BIN's head,
    HaDis' k-means centroids)."""
    import jaxclust
    from jaxclust.data.sources import load_digits
    from jaxclust.metrics import cluster_metrics

    method, workdir, summary = finished_run
    digits = load_digits()
    run = jaxclust.load(workdir)
    clusters, _ = run.predict(digits.images)
    np.testing.assert_array_equal(clusters, run.labels)  # the labels saved with the checkpoint
    scores = cluster_metrics(digits.labels, clusters)
    assert (scores["nmi"], scores["acc"]) == (pytest.approx(summary["nmi"], abs=1e-12), pytest.approx(summary["acc"], abs=1e-12))
