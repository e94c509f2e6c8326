"""launch/evaluate.py's report on a tiny digits run; its pieces (kNN, matching, linear probe, events)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxclust.evaluate import analysis, linear, tensorboard
from jaxclust.evaluate.report import default_config, evaluate
from jaxclust.workdir import load_run_config
from jaxclust.trainer import train_and_evaluate
from test_train_e2e import tiny_digits_config

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {"confusion_matrix.png", "cluster_sizes.png", "training_curves.png", "cluster_samples.png", "tsne.png"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("digits")
    train_and_evaluate(tiny_digits_config(epochs=2), workdir)
    return workdir


def small_report_config():
    r = default_config()
    r.labels = "kmeans"  # the report's own k-means (the default is the run's labels: test below)
    r.kmeans_restarts = 2
    r.tsne_points = 200
    r.tsne_threads = 1
    r.samples_per_cluster = 4
    r.linear_eval = True
    r.linear.epochs = 5
    r.linear.log_every_epochs = 5
    return r


def test_run_saves_its_config(run_dir):
    cfg = tiny_digits_config(epochs=2)
    assert load_run_config(run_dir).to_dict() == cfg.to_dict()


def test_report_of_a_digits_run(run_dir):
    pytest.importorskip("matplotlib")
    report = evaluate(run_dir, rcfg=small_report_config())
    on_disk = json.loads((run_dir / "report" / "report.json").read_text())
    assert on_disk["nmi"] == report["nmi"]
    for key in ("nmi", "acc", "ari", "ami", "uniformity", "imbalance", "knn_acc"):
        assert 0.0 <= report[key] <= 1.0, key
    assert sum(report["cluster_sizes"]) == 1797 and len(report["cluster_sizes"]) == 10
    assert report["source"] == {"checkpoint_epoch": 2, "step": 14}
    assert report["clustering"]["labels_from"] == "kmeans" and len(report["clustering"]["restart_inertias"]) == 2
    assert report["knn_acc"] > 0.5  # even two epochs of a tiny network beat chance (0.1) by far
    lin = report["linear_eval"]
    assert lin["num_train"] + lin["num_test"] == 1797 and 0.0 <= lin["top1"] <= lin["top5"] <= 1.0
    assert set(report["figures"]) == FIGURES
    for name in FIGURES:
        assert (run_dir / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assignments = np.load(run_dir / "report" / "assignments.npz")
    assert assignments["cluster"].shape == (1797,) and assignments["centers"].shape == (10, 16)


def test_earlier_checkpoint_and_missing_one(run_dir, tmp_path):
    r = small_report_config()
    r.figures, r.linear_eval, r.labels = False, False, "method"
    report = evaluate(run_dir, rcfg=r, checkpoint=1, output=tmp_path)
    assert report["source"]["checkpoint_epoch"] == 1 and report["clustering"]["labels_from"] == "method"
    with pytest.raises(FileNotFoundError, match="available"):
        evaluate(run_dir, rcfg=r, checkpoint=99, output=tmp_path)


def test_tensorboard_events_mirror_metrics(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    scalars = tensorboard.read_scalars(run_dir / tensorboard.DIRNAME)
    assert [step for step, _ in scalars["clustering/nmi"]] == [r["epoch"] for r in records] == [0, 1, 2]
    np.testing.assert_allclose([v for _, v in scalars["clustering/nmi"]], [r["nmi"] for r in records], rtol=1e-6)
    assert [s for s, _ in scalars["train/loss"]] == [1, 2]  # epoch 0 has no loss
    # rewriting (what a resume does) replaces the files instead of appending duplicates
    tensorboard.rebuild(run_dir)
    assert len(list((run_dir / tensorboard.DIRNAME).glob("events.out.tfevents.*"))) == 1
    assert tensorboard.read_scalars(run_dir / tensorboard.DIRNAME) == scalars


def test_knn_and_matched_confusion():
    rng = np.random.default_rng(0)
    centers = np.eye(4, 8) * 10
    y = np.repeat(np.arange(4), 25)
    x = centers[y] + rng.normal(size=(100, 8))
    assert analysis.knn_accuracy(x, y, k=5) == 1.0
    # against a brute-force weighted vote on overlapping classes, chunked (chunk < N) and not
    x = centers[y] * 0.3 + rng.normal(size=(100, 8))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = xn @ xn.T
    np.fill_diagonal(sim, -np.inf)
    idx = np.argsort(-sim, axis=1)[:, :20]
    votes = np.zeros((100, 4))
    np.add.at(votes, (np.arange(100)[:, None], y[idx]), np.exp(np.take_along_axis(sim, idx, 1) / 0.07))
    want = votes.argmax(axis=1)
    np.testing.assert_array_equal(analysis.knn_predict(x, x, y, 4, query_offset=0, chunk=32), want)
    assert analysis.knn_accuracy(x, y) == np.mean(want == y) < 1.0
    pred = np.array([2, 0, 3, 1])[y]  # a relabelling: perfect after matching
    matrix, order, match = analysis.matched_confusion(y, pred, 4, 4)
    np.testing.assert_array_equal(np.diag(matrix), [25] * 4)
    np.testing.assert_array_equal(match[pred[::25]], np.arange(4))
    # more clusters than classes: unmatched clusters come last
    matrix, order, match = analysis.matched_confusion(y, np.where(np.arange(100) % 25 == 0, 4, y), 5, 4)
    assert order[-1] == 4 and match[4] == -1 and matrix.shape == (4, 5)


def test_linear_evaluation_on_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.data.astype(np.float32) / 16, digits.target  # the 64 pixels as frozen "features"
    train, test = analysis.stratified_split(y, 0.2, seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(y)
    cfg = linear.default_config()  # ProPos Table 5: 90 epochs, batch 4096 (here: all 1438), cosine, SGD 0.9
    result = linear.train_linear(x[train], y[train], x[test], y[test], 10, cfg, log=lambda _: None)
    assert result["top1"] > 0.9 and result["batch_size"] == len(train) == 1438
    assert result["lr"] == pytest.approx(0.1 * 1438 / 256)


def test_command_line_error_is_one_sentence(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "launch" / "evaluate.py"), f"--workdir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "config.json does not exist" in proc.stderr and "--config=configs/X.py" in proc.stderr


def test_report_reads_the_runs_own_labels_by_default(run_dir, tmp_path):
    """The default report holds the run's last E-step labels: the numbering of jaxclust.load."""
    import jaxclust

    r = default_config()
    r.figures, r.linear_eval, r.knn_queries = False, False, 100
    report = evaluate(run_dir, rcfg=r, output=tmp_path)
    assignments = np.load(tmp_path / "assignments.npz")
    assert report["clustering"]["labels_from"] == "run" and str(assignments["labels_from"]) == "run"
    np.testing.assert_array_equal(assignments["cluster"], jaxclust.load(run_dir).labels)


def test_report_of_a_folder_run_names_the_files_and_saves_embeddings_on_request(tmp_path):
    """assignments.npz of a folder source has each row's file; with report.save_embeddings, the
    features, equal to jaxclust.load's `embed` of the same images (float32 unit vectors: atol 1e-5)."""
    from PIL import Image
    import jaxclust
    from jaxclust.data.sources import load_digits

    digits = load_digits()
    for i in range(64):
        folder = tmp_path / "images" / f"class{digits.labels[i] % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(digits.images[i, ..., 0]).save(folder / f"{i:02d}.png")
    cfg = tiny_digits_config(epochs=1)
    cfg.data.source, cfg.data.path, cfg.data.name = "folder", str(tmp_path / "images"), "mine"
    cfg.train.batch_size, cfg.cluster.num_clusters = 32, 2
    train_and_evaluate(cfg, tmp_path / "run")
    r = default_config()
    r.figures, r.knn_queries, r.save_embeddings = False, 20, True
    evaluate(tmp_path / "run", rcfg=r, output=tmp_path / "report")
    saved = np.load(tmp_path / "report" / "assignments.npz")
    files = sorted(str(p) for p in (tmp_path / "images").glob("*/*.png"))
    assert saved["file_names"].tolist() == files  # class folders in order, files sorted within
    run = jaxclust.load(tmp_path / "run")
    images, _, names = run.read_images(tmp_path / "images")
    assert names == files
    np.testing.assert_allclose(saved["embeddings"], run.embed(images), atol=1e-5)
    np.testing.assert_array_equal(saved["cluster"], run.labels)


def test_config_of_a_run_saved_before_the_cluster_section(run_dir, tmp_path):
    """kmeans.num_clusters / kmeans.every of an older config.json are read as cluster.*, not dropped."""
    saved = json.loads((run_dir / "config.json").read_text())
    saved["kmeans"].update(num_clusters=7, every=3)
    del saved["cluster"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    cfg = load_run_config(tmp_path)
    assert (cfg.cluster.num_clusters, cfg.cluster.every) == (7, 3) and "num_clusters" not in cfg.kmeans
