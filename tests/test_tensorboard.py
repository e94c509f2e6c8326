"""The metrics.jsonl -> TensorBoard mirror, read back with TensorBoard's own reader."""
import time

import numpy as np
import pytest

from jaxclust.evaluate import tensorboard

pytest.importorskip("tensorboard")

RECORDS = [
    {"epoch": 0, "step": 0, "nmi": 0.25, "acc": 0.5, "loss": None, "method": "propos"},
    {"epoch": 1, "step": 10, "nmi": 0.3, "acc": 0.6, "loss": 1.7, "lr": 0.05, "flag": True},
    {"epoch": 2, "step": 20, "nmi": 0.35, "acc": 0.7, "loss": 1.2, "lr": 0.04, "sizes": {"a": 1}},
]


def events(logdir):
    return list(logdir.glob("events.out.tfevents.*"))


def check(scalars, expected):
    assert sorted(scalars) == sorted(expected)
    for tag, points in expected.items():
        assert [s for s, _ in scalars[tag]] == [s for s, _ in points], tag
        np.testing.assert_allclose([v for _, v in scalars[tag]], [v for _, v in points], rtol=1e-6)


def test_write_then_rewrite(tmp_path):
    writer = tensorboard.EventWriter(tmp_path)
    for record in RECORDS[:2]:
        writer.write(record)
    writer.close()
    # None, strings, booleans and nested dicts are skipped; "epoch" is the step, not a scalar
    expected = {
        "clustering/nmi": [(0, 0.25), (1, 0.3)], "clustering/acc": [(0, 0.5), (1, 0.6)],
        "train/loss": [(1, 1.7)], "train/lr": [(1, 0.05)],
    }
    check(tensorboard.read_scalars(tmp_path), expected)

    # what a resume does: the directory ends up with exactly the given records, in one file
    writer = tensorboard.EventWriter.rewrite(tmp_path, RECORDS)
    writer.close()
    assert len(events(tmp_path)) == 1
    for tag, value in (("clustering/nmi", 0.35), ("clustering/acc", 0.7), ("train/loss", 1.2), ("train/lr", 0.04)):
        expected[tag].append((2, value))
    check(tensorboard.read_scalars(tmp_path), expected)


def test_records_reach_the_file_without_close(tmp_path):
    writer = tensorboard.EventWriter(tmp_path)
    writer.write(RECORDS[1])
    deadline = time.time() + 10
    while "clustering/nmi" not in tensorboard.read_scalars(tmp_path) and time.time() < deadline:
        time.sleep(0.2)
    assert tensorboard.read_scalars(tmp_path)["clustering/nmi"] == [(1, pytest.approx(0.3))]
    writer.close()

