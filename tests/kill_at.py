"""Runs launch/main.py and kills its own process with SIGKILL at a chosen point, for the resume tests.

    python tests/kill_at.py POINT=N [launch/main.py flags]

POINT=N is one of
    step=N     just before the N-th training step of this process;
    e_step=N   inside the N-th E-step of this process, once its features are computed;
    save=N     right after the N-th checkpoint (epoch or step) was handed to orbax, whose write is asynchronous,
               so the process dies while that checkpoint is being written.
Counting calls inside the process makes the kill land at the same place on a fast or a slow machine.
"""
import functools
import os
import runpy
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaxclust import checkpoint, trainer  # noqa: E402


def kill_at_call(function, at: int, after: bool):
    """`function` wrapped to SIGKILL the process at its `at`-th call, before or after running it."""
    calls = 0

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == at and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        result = function(*args, **kwargs)
        if calls == at and after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    return wrapper


def install(point: str, at: int) -> None:
    if point == "step":  # Run keeps its compiled step as an attribute: wrap it once built
        build = trainer.Run.__init__

        def patched_init(self, *args, **kwargs):
            build(self, *args, **kwargs)
            self.step = kill_at_call(self.step, at, after=False)

        trainer.Run.__init__ = patched_init
    elif point == "e_step":  # embed_all is the E-step's first half; the clustering never runs
        trainer.Run.embed_all = kill_at_call(trainer.Run.embed_all, at, after=True)
    elif point == "save":
        checkpoint.Checkpointer.save = kill_at_call(checkpoint.Checkpointer.save, at, after=True)
    else:
        raise SystemExit(f"unknown kill point {point!r}; use step, e_step or save.")


if __name__ == "__main__":
    point, at = sys.argv[1].split("=")
    install(point, int(at))
    sys.argv = [str(ROOT / "launch" / "main.py"), *sys.argv[2:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
