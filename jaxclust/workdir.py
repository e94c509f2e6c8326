"""A run's workdir: the files that describe the run, and what a resume may change.

A resumed run (the same command again) compares its config with the workdir's config.json. Keys that
only extend or observe the run (`RESUME_SAFE`: more epochs, logging and checkpoint cadence, where the
data lives, the evaluation) may change; any other change is refused with the differing keys named,
unless the caller accepts it (`launch/main.py --accept_config_change`, `jaxclust.train(...,
accept_config_change=True)`). Either way config.json then holds the config the run goes on with,
and config_history.jsonl one line per resume that changed it: when, from which epoch, what.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import ml_collections

CONFIG_FILE = "config.json"
CONFIG_HISTORY_FILE = "config_history.jsonl"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
STEP_CHECKPOINTS = "step_checkpoints"  # train.checkpoint_every_steps: mid-epoch checkpoints
MIN_FREE_BYTES = 200 * 2**20

# Keys a resume may change without changing what the run computes. train.epochs only upwards; note
# that the epoch-based schedules (cosine learning rate, EMA momentum) then stretch to the new end.
RESUME_SAFE = (
    "train.epochs", "train.log_every_epochs", "train.progress_seconds", "train.checkpoint_every_epochs", "train.checkpoint_every_steps",
    "train.checkpoints_to_keep", "train.embed_batch_size", "kmeans.chunk_size",
    "data.download", "data.data_dir", "eval.",
)


class WorkdirError(RuntimeError):
    """The workdir cannot be used: not writable, nearly full, or holding a different run."""


def check_workdir(workdir: Path) -> None:
    """Fails early, with one sentence, if `workdir` cannot hold a run; writes nothing in it. (Whether
    its checkpoints belong to this config is `trainer.check_compatible`'s question, asked before any restore.)"""
    target = workdir
    while not target.exists():  # the nearest existing ancestor decides writability and free space
        target = target.parent
    if not target.is_dir():
        raise WorkdirError(f"workdir {str(workdir)!r} cannot be created: {str(target)!r} is a file; choose another --workdir.")
    if not os.access(target, os.W_OK | os.X_OK):
        raise WorkdirError(f"workdir {str(workdir)!r} is not writable ({str(target)!r} is read-only); choose another --workdir.")
    free = shutil.disk_usage(target).free
    if free < MIN_FREE_BYTES:
        raise WorkdirError(
            f"only {free / 2**20:.0f} MiB free under {str(target)!r}; free some space or choose another --workdir."
        )


def load_run_config(workdir: str | Path) -> ml_collections.ConfigDict:
    """The config a run saved in WORKDIR/config.json (lists back to tuples, as configs write them)."""
    from jaxclust import methods

    path = Path(workdir) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist (runs started before config.json was saved have none): pass the "
            "run's config and overrides as --config=configs/X.py --config.key=VALUE ..."
        )

    def tuples(x):
        if isinstance(x, dict):
            return {k: tuples(v) for k, v in x.items()}
        return tuple(tuples(v) for v in x) if isinstance(x, list) else x

    def merge(defaults: dict, saved: dict) -> dict:
        out = dict(defaults)
        for key, value in saved.items():
            both = isinstance(value, dict) and isinstance(defaults.get(key), dict)
            out[key] = merge(defaults[key], value) if both else value
        return out

    # keys added to jaxclust after the run started take their defaults
    saved = tuples(json.loads(path.read_text()))
    for key in ("num_clusters", "every"):  # runs saved before these moved from kmeans.* to cluster.*
        if key in saved.get("kmeans", {}):
            saved.setdefault("cluster", {})[key] = saved["kmeans"].pop(key)
    defaults = methods.default_config(saved["method"]["name"]).to_dict()
    return ml_collections.ConfigDict(merge(defaults, saved))


def read_metrics(workdir: str | Path) -> list[dict]:
    """The records of WORKDIR/metrics.jsonl ([] when there is none yet)."""
    path = Path(workdir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def has_checkpoints(workdir: Path) -> bool:
    """Whether `workdir` holds a complete checkpoint (orbax names complete ones by their number)."""
    return any(p.name.isdigit() for d in ("checkpoints", STEP_CHECKPOINTS) if (workdir / d).is_dir()
               for p in (workdir / d).iterdir())


def flatten(config: dict, prefix: str = "") -> dict:
    """{"section.key": value} of a nested config dict (a config.json)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_changes(saved, cfg) -> dict[str, tuple]:
    """{dotted key: (saved value, new value)} of every key whose value differs, or that one side lacks
    ("<absent>"); values compared as their JSON, so tuples and lists are alike."""
    old, new = (flatten(json.loads(c.to_json_best_effort())) for c in (saved, cfg))
    absent = "<absent>"
    return {k: (old.get(k, absent), new.get(k, absent)) for k in sorted(old.keys() | new.keys())
            if old.get(k, absent) != new.get(k, absent)}


def is_resume_safe(key: str, old, new) -> bool:
    if key == "train.epochs":
        return isinstance(old, int) and isinstance(new, int) and new >= old
    return any(key == safe or (safe.endswith(".") and key.startswith(safe)) for safe in RESUME_SAFE)


def check_resume_config(cfg, workdir: Path, accept_config_change: bool = False) -> dict[str, tuple]:
    """The config changes a resume of the run in `workdir` makes ({} for a new run); WorkdirError,
    with the keys named, when one of them changes what the run computes and is not accepted. Reads
    only; `record_config` writes."""
    if not (workdir / CONFIG_FILE).exists() or not has_checkpoints(workdir):
        return {}
    try:
        saved = load_run_config(workdir)
    except (ValueError, KeyError) as error:
        raise WorkdirError(f"{str(workdir / CONFIG_FILE)!r} cannot be read ({error}); fix it or use another --workdir.")
    changes = config_changes(saved, cfg)
    refused = {k: v for k, v in changes.items() if not is_resume_safe(k, *v)}
    if refused and not accept_config_change:
        listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in list(refused.items())[:6])
        more = f" and {len(refused) - 6} more" if len(refused) > 6 else ""
        raise WorkdirError(
            f"resuming {str(workdir)!r} with another config changes what its run computes ({listed}{more}): use "
            "another --workdir, the run's own settings (its config.json), or --accept_config_change to go on "
            "with the change recorded in its config_history.jsonl."
        )
    return changes


def record_config(cfg, workdir: Path, changes: dict[str, tuple], resumed_epoch: int | None) -> None:
    """Writes config.json (the config the run goes on with) and, when a resume changed it, a line of
    config_history.jsonl. Main process only."""
    (workdir / CONFIG_FILE).write_text(cfg.to_json_best_effort(indent=2) + "\n")
    if changes:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "resumed_from_epoch": resumed_epoch,
                "changes": {k: [old, new] for k, (old, new) in changes.items()},
                "accepted": [k for k, v in changes.items() if not is_resume_safe(k, *v)]}
        with (workdir / CONFIG_HISTORY_FILE).open("a") as f:
            f.write(json.dumps(line) + "\n")
