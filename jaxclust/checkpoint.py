"""Checkpoints of the TrainState, with orbax's CheckpointManager: at epoch ends, and optionally
every N training steps (a separate directory, so that epoch checkpoints keep their epoch numbers).

Reading another run's checkpoint (a warm start, a fine-tuning stage): `checkpoint_directory` checks
that a workdir has checkpoints, `restore_newest` reads its newest one (as saved, or into a given
structure), `require_same_structure` compares what was taken from it with what a config expects; each
raises a ConfigError naming the config key that gave the workdir.
"""
from __future__ import annotations

import logging
import sys
import time
import warnings
from pathlib import Path
from traceback import format_exception

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxclust.config import ConfigError

DIRECTORY = "checkpoints"  # Checkpointer's default: the epoch checkpoints


class Checkpointer:
    """Saves `state` plus a JSON `meta` dict (and the E-step's `labels`, when given) under
    WORKDIR/<directory>/<number>; keeps the newest few.

    The number is the epoch (`checkpoints/`) or the global step (`step_checkpoints/`). orbax writes
    each one to a temporary directory and renames it when complete, so one that a kill cut short is
    never listed and `latest_epoch` falls back to the previous one.
    """

    def __init__(self, workdir: str | Path, max_to_keep: int = 2, directory: str = DIRECTORY):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self.directory = Path(workdir).absolute() / directory
        handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler(),
                    "labels": ocp.StandardCheckpointHandler()}
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

    def save(self, epoch: int, state, meta: dict, labels: np.ndarray | None = None) -> None:
        """`labels`: the last E-step's cluster of every image, kept with the state they came from (the
        state of SeCu or C2BIN does not hold them), for `jaxclust.load(...).labels`."""
        items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta)}
        if labels is not None:
            items["labels"] = ocp.args.StandardSave({"labels": np.asarray(labels, np.int32)})
        self._manager.save(epoch, args=ocp.args.Composite(**items))

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

    def set_aside(self, number: int) -> Path:
        """Renames the checkpoint `number` (one that cannot be read) to unreadable_<number>, out of orbax's
        listing, so that a new checkpoint of that number can be written; returns its new path."""
        self._manager.wait_until_finished()
        target = self.directory / f"unreadable_{number}"
        suffix = 1
        while target.exists():
            target, suffix = self.directory / f"unreadable_{number}_{suffix}", suffix + 1
        if jax.process_index() == 0:  # one process renames; the others wait for it (a shared file system)
            (self.directory / str(number)).rename(target)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"set aside checkpoint {number}")
        self._manager.reload()
        return target

    def saved_labels(self, epoch: int) -> np.ndarray | None:
        """The E-step labels saved with `epoch`, or None when it has none (saved before they were kept)."""
        if not (self.directory / str(epoch) / "labels").is_dir():
            return None
        restored = self._manager.restore(epoch, args=ocp.args.Composite(labels=ocp.args.StandardRestore()))
        return np.asarray(restored.labels["labels"])

    def saved_structure(self, epoch: int) -> dict[str, tuple]:
        """`leaf_specs` of the state saved as `epoch`, read from its metadata (no array is loaded)."""
        return leaf_specs(self._manager.item_metadata(epoch)["state"].tree)

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def restore_first_readable(candidates, like_state, warn, check=None):
    """(checkpointer, number, state, meta, labels) of the first of `candidates` ([(checkpointer,
    number)], in the order to try) whose checkpoint reads into `like_state`'s structure, or None when
    none does. `check(checkpointer, number)` runs before each read (its errors stop the search); each
    checkpoint that cannot be read (orbax lists only complete ones: damaged after it was written) is
    named by `warn(message)` and skipped."""
    hook = _quiet_abandoned_reads()
    for checkpointer, number in candidates:
        if check is not None:
            check(checkpointer, number)
        try:
            state, meta = checkpointer.restore(number, like_state)
            return checkpointer, number, state, meta, checkpointer.saved_labels(number)
        except Exception as error:  # noqa: BLE001 - any unreadable checkpoint: the caller decides what next
            _let_abandoned_reads_settle(hook)
            first_line = (str(error).strip().splitlines() or [""])[0].split(". See full")[0][:160]
            warn(f"warning: the checkpoint {checkpointer.directory.name}/{number} cannot be read "
                 f"({type(error).__name__}: {first_line}).")
    return None


def restore_readable(checkpointer: Checkpointer, epoch: int | None, like_state, how_to_choose: str, check, warn):
    """(checkpointer, epoch, state, meta, labels) of the checkpoint of `epoch`, or with None of the newest
    that can be read (`restore_first_readable`); FileNotFoundError in one sentence, which names
    `how_to_choose` (e.g. "--checkpoint=EPOCH"), when there is none or it cannot be read."""
    available = checkpointer.all_epochs()
    epochs = [checkpointer.choose_epoch(epoch)] if epoch is not None else available[::-1]
    if not epochs:
        checkpointer.choose_epoch(None)  # raises: no checkpoint
    found = restore_first_readable([(checkpointer, e) for e in epochs], like_state, warn, check)
    if found is None:
        what = f"the checkpoint of epoch {epoch} cannot" if epoch is not None else "none of its checkpoints can"
        raise FileNotFoundError(f"{checkpointer.directory}: {what} be read (damaged); choose another with "
                                f"{how_to_choose} (saved: {available}).")
    if epoch is None and found[1] != epochs[0]:
        warn(f"warning: using the checkpoint of epoch {found[1]}, the newest that can be read; choose one with {how_to_choose}.")
    return found


def _quiet_abandoned_reads():
    """When a restore fails, orbax closes its event loop while the other arrays' reads are still in
    flight; each one then reports, as it completes or is collected, a `RuntimeError: Event loop is
    closed` or its own read error (hundreds of lines around the one useful warning). Those reads'
    results are not wanted: drop exactly these reports from the two hooks and the asyncio log they
    come through (any other report goes on as before), and return the hook, whose `last` is when it
    last dropped one."""
    # a read abandoned before it started: its coroutine object is collected unawaited (at any time, even
    # at exit), which Python reports as a RuntimeWarning. Set on every call: a caller's
    # warnings.catch_warnings() may have dropped it since the hooks below were installed.
    warnings.filterwarnings("ignore", message=ABANDONED_COROUTINES, category=RuntimeWarning)
    if getattr(sys.excepthook, "quiets_abandoned_reads", False):
        return sys.excepthook
    previous_except, previous_unraisable = sys.excepthook, sys.unraisablehook

    def abandoned(kind, value, obj=None) -> bool:
        closed_loop = kind is RuntimeError and str(value) == "Event loop is closed"
        return closed_loop or getattr(obj, "__name__", None) == ABANDONED_READ

    def hook(kind, value, traceback):
        if abandoned(kind, value):
            hook.last = time.time()
            return
        previous_except(kind, value, traceback)

    def unraisable(report):
        if abandoned(report.exc_type, report.exc_value, report.object):
            hook.last = time.time()
            return
        previous_unraisable(report)

    def log_filter(record) -> bool:  # asyncio's "Task/Future exception was never retrieved" of an abandoned read
        text = record.getMessage() + ("".join(format_exception(*record.exc_info)) if record.exc_info else "")
        if "never retrieved" in text and any(name in text for name in ABANDONED_READ_MARKS):
            hook.last = time.time()
            return False
        return True

    hook.quiets_abandoned_reads, hook.last = True, 0.0
    sys.excepthook, sys.unraisablehook = hook, unraisable
    logging.getLogger("asyncio").addFilter(log_filter)
    return hook


ABANDONED_READ = "_read_array_index_and_device_put"  # orbax's coroutine reading one array of a restore
# what the asyncio report of an abandoned read of a checkpoint's arrays names: orbax's coroutines, or the
# tensorstore error of opening / reading an array
ABANDONED_READ_MARKS = (ABANDONED_READ, "async_deserialize", "tensorstore", '"zarr" driver', "OCDBT database")
# the RuntimeWarning of an orbax coroutine of a restore collected before it was awaited
ABANDONED_COROUTINES = rf"coroutine '[^']*(_get_array_metadatas|{ABANDONED_READ})' was never awaited"


def _let_abandoned_reads_settle(hook, quiet: float = 0.25, limit: float = 3.0) -> None:
    """Waits until the reads a failed restore abandoned have stopped reporting (`quiet` seconds without
    one, at most `limit`), so none reports after the process has started to exit, past the hook."""
    start = hook.last = time.time()
    while time.time() - hook.last < quiet and time.time() - start < limit:
        time.sleep(0.05)


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
