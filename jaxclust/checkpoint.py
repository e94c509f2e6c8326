"""Checkpoints of the TrainState at epoch ends, with orbax's CheckpointManager."""
from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    """Saves `state` plus a JSON `meta` dict under WORKDIR/checkpoints/<epoch>; keeps the newest few.

    orbax writes each step to a temporary directory and renames it when complete, so a step that a
    kill cut short is never listed and `latest_epoch` falls back to the previous one.
    """

    def __init__(self, workdir: str | Path, max_to_keep: int = 2):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints", options=options)

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
