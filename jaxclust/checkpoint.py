"""Checkpoints of the TrainState, with orbax's CheckpointManager: at epoch ends, and optionally
every N training steps (a separate directory, so that epoch checkpoints keep their epoch numbers).

Reading another run's checkpoint (a warm start, a fine-tuning stage): `checkpoint_directory` checks
that a workdir has checkpoints, `restore_newest` reads its newest one (as saved, or into a given
structure), `require_same_structure` compares what was taken from it with what a config expects; each
raises a ConfigError naming the config key that gave the workdir.
"""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxclust.config import ConfigError

DIRECTORY = "checkpoints"  # Checkpointer's default: the epoch checkpoints


class Checkpointer:
    """Saves `state` plus a JSON `meta` dict under WORKDIR/<directory>/<number>; keeps the newest few.

    The number is the epoch (`checkpoints/`) or the global step (`step_checkpoints/`). orbax writes
    each one to a temporary directory and renames it when complete, so one that a kill cut short is
    never listed and `latest_epoch` falls back to the previous one.
    """

    def __init__(self, workdir: str | Path, max_to_keep: int = 2, directory: str = DIRECTORY):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self.directory = Path(workdir).absolute() / directory
        handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

    def latest_epoch(self) -> int | None:
        return self._manager.latest_step()

    def all_epochs(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def choose_epoch(self, epoch: int | None = None) -> int:
        """`epoch`, or the last one saved; FileNotFoundError, in one sentence, when there is none."""
        available = self.all_epochs()
        if not available:
            raise FileNotFoundError(f"no checkpoint in {self.directory}; train there first.")
        epoch = available[-1] if epoch is None else epoch
        if epoch not in available:
            raise FileNotFoundError(f"{self.directory} has no checkpoint of epoch {epoch}; it has {available} available.")
        return epoch

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

    def saved_meta(self, epoch: int) -> dict:
        """The JSON meta saved with `epoch`, without loading its state."""
        return self._manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta

    def saved_structure(self, epoch: int) -> dict[str, tuple]:
        """`leaf_specs` of the state saved as `epoch`, read from its metadata (no array is loaded)."""
        return leaf_specs(self._manager.item_metadata(epoch)["state"].tree)

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def leaf_specs(tree) -> dict[str, tuple]:
    """{path: (shape, dtype)} of every array of `tree` (a state, its abstract shapes, or orbax's
    metadata of a saved one); paths are the names of the keys, attributes and fields, '/'-joined."""

    def name(entry):
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                return str(getattr(entry, attr))
        return str(entry)

    leaves, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: hasattr(x, "shape") and hasattr(x, "dtype"))
    return {"/".join(name(k) for k in path): (tuple(x.shape), str(np.dtype(x.dtype))) for path, x in leaves}


def structure_differences(saved: dict, expected: dict, limit: int = 5) -> list[str]:
    """What differs between two `leaf_specs`: leaves only one side has, or of another shape or dtype."""
    out = [f"{p}: {saved[p][0]} {saved[p][1]} saved, {expected[p][0]} {expected[p][1]} expected"
           for p in sorted(saved.keys() & expected.keys()) if saved[p] != expected[p]]
    out += [f"{p}: saved, not expected" for p in sorted(saved.keys() - expected.keys())]
    out += [f"{p}: expected, not saved" for p in sorted(expected.keys() - saved.keys())]
    return out[:limit] + ([f"... {len(out) - limit} more"] if len(out) > limit else [])


# ------------------------------------------------------------------------------------------------
# Another run's checkpoint, named by a config key (method.init_from, method.init_workdir, ...)


def checkpoint_directory(workdir: str | Path, key: str) -> Path:
    """WORKDIR/checkpoints of the run named by config `key`; ConfigError if it is missing. Call it
    before opening a Checkpointer there, which would create the directory (and from a method's
    `validate`, so that a wrong path stops the run before the data is loaded)."""
    directory = Path(workdir) / DIRECTORY
    if not directory.is_dir():
        raise ConfigError(f"{key} {str(workdir)!r} has no checkpoint (no {str(directory)!r}); train a run in that "
                          "workdir first or pass the workdir of one.")
    return directory


def restore_newest(workdir: str | Path, key: str, like=None):
    """The state in the newest epoch checkpoint of the run in `workdir` (named by config `key` in errors).

    With `like` (a state or its `jax.eval_shape`), a state of that structure, with its dtypes and
    shardings; a checkpoint of another structure is a ConfigError naming the differing leaves. With
    `like=None`, the saved tree as nested dicts of whatever shapes it has (then take what is needed and
    compare it with `require_same_structure`)."""
    checkpoint_directory(workdir, key)
    checkpointer = Checkpointer(workdir)
    try:
        epoch = checkpointer.latest_epoch()
        if epoch is None:
            raise ConfigError(f"{key} {str(workdir)!r} has no complete checkpoint; train a run in that workdir "
                              "first or pass the workdir of one.")
        if like is not None:
            try:
                saved = checkpointer.saved_structure(epoch)
            except Exception:  # noqa: BLE001 - unreadable metadata: the restore below says so
                saved = None
            if saved is not None:
                require_same_structure(saved, leaf_specs(like), key, workdir, f"a state (its checkpoint of epoch "
                                       f"{epoch}) of another structure than this config's", "use the settings of that run")
        try:
            state, _ = checkpointer.restore(epoch, like)
        except (ValueError, KeyError, TypeError) as error:  # orbax: the saved tree does not fit `like`
            raise ConfigError(f"{key} {str(workdir)!r}: its checkpoint of epoch {epoch} does not fit this config "
                              f"({type(error).__name__}: {str(error)[:200]}); use the settings of that run.") from error
    finally:
        checkpointer.close()
    return state


def require_same_structure(got: dict, expected: dict, key: str, workdir: str | Path, what: str, hint: str) -> None:
    """ConfigError unless two `leaf_specs` (of what was taken from the run in `workdir`, and of what this
    config expects) have the same leaves: paths, shapes and dtypes. The message reads
    "KEY 'WORKDIR' holds WHAT (the differing leaves); HINT." """
    differences = structure_differences(got, expected)
    if differences:
        raise ConfigError(f"{key} {str(workdir)!r} holds {what} ({'; '.join(differences)}); {hint}.")
