"""Checkpoints of the TrainState, with orbax's CheckpointManager: at epoch ends, and optionally
every N training steps (a separate directory, so that epoch checkpoints keep their epoch numbers)."""
from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    """Saves `state` plus a JSON `meta` dict under WORKDIR/<directory>/<number>; keeps the newest few.

    The number is the epoch (`checkpoints/`) or the global step (`step_checkpoints/`). orbax writes
    each one to a temporary directory and renames it when complete, so one that a kill cut short is
    never listed and `latest_epoch` falls back to the previous one.
    """

    def __init__(self, workdir: str | Path, max_to_keep: int = 2, directory: str = "checkpoints"):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self.directory = Path(workdir).absolute() / directory
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_epoch(self) -> int | None:
        return self._manager.latest_step()

    def all_epochs(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, epoch: int, state, meta: dict) -> None:
        self._manager.save(
            epoch,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        )

    def restore(self, epoch: int, like_state):
        """(state, meta) of `epoch`; arrays get the shardings and dtypes of `like_state`."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
        restored = self._manager.restore(
            epoch,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()),
        )
        return restored.state, restored.meta

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
