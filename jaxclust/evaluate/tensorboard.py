"""TensorBoard event files of the metrics records, written with tensorboardX.

The training loop mirrors every metrics.jsonl record into WORKDIR/tensorboard/ (one scalar per
numeric key, the epoch as the step), so `tensorboard --logdir WORKDIR` shows the curves live. On a
resume the directory is rewritten from the records kept, as metrics.jsonl is, so curves never hold
the epochs a killed run computed after its last checkpoint.

For a run made before this existed, or to rebuild the files:

    python -m jaxclust.evaluate.tensorboard WORKDIR

`read_scalars(dir)` reads the files back ({tag: [(step, value), ...]}) with TensorBoard's own
reader (the `tensorboard` package, installed by the test extra).
"""
from __future__ import annotations

import sys
from pathlib import Path

from jaxclust.workdir import METRICS_FILE, read_metrics

DIRNAME = "tensorboard"
_NOT_SCALARS = {"epoch", "step"}
_GROUPS = {
    "nmi": "clustering", "acc": "clustering", "ari": "clustering", "ami": "clustering",
    "imbalance": "clustering", "kmeans_inertia": "clustering",
    "uniformity": "features",
    "lr": "train", "ema_momentum": "train",
}


def tag_of(key: str) -> str:
    group = _GROUPS.get(key, "train" if key.endswith("loss") else "e_step")
    return f"{group}/{key}"


def record_scalars(record: dict) -> dict[str, float]:
    """The numeric values of a metrics record, keyed by TensorBoard tag."""
    return {
        tag_of(k): float(v) for k, v in record.items()
        if k not in _NOT_SCALARS and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _summary_writer_class():
    try:  # imported on first use: `import jaxclust.trainer` stays light
        from tensorboardX import SummaryWriter
    except ImportError as e:
        raise ImportError("TensorBoard event files need tensorboardX: pip install tensorboardX") from e
    return SummaryWriter


class EventWriter:
    """Appends metrics records to one event file in `logdir`."""

    def __init__(self, logdir: str | Path):
        self.logdir = Path(logdir)
        # tensorboardX writes from a background thread; flush_secs=1 makes that thread flush each
        # record within a second, so a running `tensorboard` picks the curves up live.
        self._writer = _summary_writer_class()(str(self.logdir), flush_secs=1)

    @classmethod
    def rewrite(cls, logdir: str | Path, records: list[dict]) -> "EventWriter":
        """A writer on a fresh directory holding exactly `records` (older event files removed)."""
        for old in Path(logdir).glob("events.out.tfevents.*"):
            old.unlink()
        writer = cls(logdir)
        for record in records:
            writer.write(record)
        return writer

    def write(self, record: dict) -> None:
        for tag, value in record_scalars(record).items():
            self._writer.add_scalar(tag, value, int(record["epoch"]))

    def close(self) -> None:
        self._writer.close()  # drains the queue of the background thread and closes the file


def read_scalars(logdir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} from every event file in `logdir`, in file then write order."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util.tensor_util import make_ndarray

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
        # every event, not EventAccumulator's view, which drops out-of-order steps: a duplicate
        # left by a resume must show up here. The loader turns simple_value into a scalar tensor.
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    out.setdefault(value.tag, []).append((event.step, make_ndarray(value.tensor).item()))
    return out


def rebuild(workdir: str | Path) -> Path:
    """Rewrites WORKDIR/tensorboard from WORKDIR/metrics.jsonl; returns the directory."""
    workdir = Path(workdir)
    EventWriter.rewrite(workdir / DIRNAME, read_metrics(workdir)).close()
    return workdir / DIRNAME


if __name__ == "__main__":
    from jaxclust.cli import fail

    if len(sys.argv) != 2:
        fail("give the run's workdir: python -m jaxclust.evaluate.tensorboard WORKDIR")
    if not (Path(sys.argv[1]) / METRICS_FILE).is_file():
        fail(f"{sys.argv[1]!r} holds no metrics.jsonl; give the workdir of a run.")
    print(f"wrote {rebuild(sys.argv[1])}; view with: tensorboard --logdir {sys.argv[1]}")
