"""Progress lines a person can follow in a terminal, a log file or a cluster's stdout: whole lines, at
most one every `every_seconds` (no carriage returns), with the rate and the time left."""
from __future__ import annotations

import time

import jax


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class StepProgress:
    """Reports the training steps of a run: `step(done_in_epoch, latest)` after each step. The first
    step of the session compiles: a notice before it, and its time after. `latest` (any array of that
    step) is waited for only when a line is due, so the rate counts finished steps."""

    def __init__(self, log, steps_per_epoch: int, total_steps: int, batch_size: int, every_seconds: float):
        self.log, self.steps_per_epoch, self.total_steps = log, steps_per_epoch, total_steps
        self.batch_size, self.every = batch_size, every_seconds
        self.compiled = False
        self.start = self.last = None  # wall time and global step after the first (compiled) step
        self.start_step = 0

    def before_first(self) -> None:
        if not self.compiled:
            self.log("compiling the training step (the first step of a session; seconds to minutes) ...")
            self.t_compile = time.time()

    def step(self, epoch: int, epochs: int, done_in_epoch: int, global_step: int, latest) -> None:
        now = time.time()
        if not self.compiled:
            jax.block_until_ready(latest)
            now = time.time()
            self.log(f"compiled and ran the first step in {now - self.t_compile:.1f}s")
            self.compiled, self.start, self.start_step, self.last = True, now, global_step, now
            self.epoch_mark = (now, global_step)
            return
        if done_in_epoch == 1:  # the epoch's rate starts here (after the E-step and checkpoint before it)
            self.epoch_mark = (now, global_step)
        if self.every <= 0 or now - self.last < self.every or done_in_epoch == self.steps_per_epoch:
            return
        jax.block_until_ready(latest)
        now = time.time()
        self.printed()
        epoch_rate = (global_step - self.epoch_mark[1]) / max(now - self.epoch_mark[0], 1e-9)  # training steps/s
        run_rate = (global_step - self.start_step) / max(now - self.start, 1e-9)  # E-steps and saves included
        if epoch_rate <= 0 or run_rate <= 0:
            return
        self.log(f"epoch {epoch}/{epochs} | step {done_in_epoch}/{self.steps_per_epoch} | "
                 f"{epoch_rate * self.batch_size:.0f} images/s | epoch ends in "
                 f"{duration((self.steps_per_epoch - done_in_epoch) / epoch_rate)} | run ends in about "
                 f"{duration((self.total_steps - global_step) / run_rate)}")

    def due(self) -> bool:
        """Whether `every_seconds` have passed since the last line: the loop then logs its epoch line
        even between its `train.log_every_epochs`, so that no silence is longer than that."""
        return self.every > 0 and self.last is not None and time.time() - self.last >= self.every

    def printed(self) -> None:
        self.last = time.time()

    def run_left(self, global_step: int) -> str:
        """The time the run has left at `global_step`, at its rate so far ("" before it has one)."""
        if not self.compiled or global_step <= self.start_step:
            return ""
        rate = (global_step - self.start_step) / max(time.time() - self.start, 1e-9)
        return duration((self.total_steps - global_step) / rate)
