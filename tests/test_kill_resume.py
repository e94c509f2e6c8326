"""A run killed with SIGKILL (mid-epoch, during the E-step, during a checkpoint write) and started again
with the same command ends with the same metrics.jsonl and summary.json as an uninterrupted run; so does
a run whose newest checkpoint was damaged; another seed gives other numbers.

The kills are made by tests/kill_at.py, which counts calls inside the process, so they land at the
same point on any machine."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = [  # digits, 28 steps per epoch
    "--config=configs/propos_digits.py",
    "--config.train.epochs=4",
    "--config.optim.warmup_epochs=1",
    "--config.model.convnet_widths=(8,16)",
    "--config.model.projector_hidden=32",
    "--config.model.projector_dim=16",
    "--config.model.predictor_hidden=32",
    "--config.train.batch_size=64",
    "--config.train.checkpoint_every_epochs=1",
    "--config.cluster.every=1",
    "--config.kmeans.n_init=2",
]
STEPS_PER_EPOCH = 1797 // 64
TIMING = {"wall_seconds", "session_seconds", "e_step_seconds"}


def run(workdir, *extra, kill=None, full=False):
    """launch/main.py on the tiny config; with kill='point=N', killed there by tests/kill_at.py. Its
    stdout, or with `full` the finished process."""
    prefix = [str(ROOT / "tests" / "kill_at.py"), kill] if kill else [str(ROOT / "launch" / "main.py")]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    out = subprocess.run([sys.executable, *prefix, *TINY, f"--workdir={workdir}", *extra], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    if kill:
        assert out.returncode == -9, f"expected a SIGKILL at {kill}, got exit {out.returncode}: {out.stderr[-2000:]}"
        assert not (workdir / "summary.json").exists()
    else:
        assert out.returncode == 0, out.stderr[-3000:]
        # the console shows progress lines only, no library INFO logs (absl format: I1122 17:37:18...)
        assert not re.search(r"^I\d{4} ", out.stderr, re.MULTILINE), out.stderr[:1000]
    return out if full else out.stdout


def results(workdir):
    records = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((workdir / "summary.json").read_text())
    strip = lambda d: {k: v for k, v in d.items() if k not in TIMING}
    return [strip(r) for r in records], strip(summary)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted run, without step checkpoints."""
    workdir = tmp_path_factory.mktemp("straight")
    run(workdir)
    return workdir


def complete(workdir, directory):
    """Numbers of the checkpoints orbax finished writing (one cut short stays a temporary directory)."""
    return sorted(int(p.name) for p in (workdir / directory).iterdir() if p.name.isdigit())


def expected_resume(workdir):
    """The line a rerun prints: epoch e's checkpoint comes after the step checkpoints of epoch e."""
    epoch = complete(workdir, "checkpoints")[-1]
    step = complete(workdir, "step_checkpoints")[-1]
    if step <= epoch * STEPS_PER_EPOCH:
        return f"resumed from the checkpoint of epoch {epoch} in"
    epoch = (step - 1) // STEPS_PER_EPOCH
    return f"resumed from the checkpoint of step {step} (epoch {epoch + 1}, step {step - epoch * STEPS_PER_EPOCH} of"


def test_killed_mid_epoch_in_e_step_and_in_checkpoint_write_then_rerun_equals_uninterrupted(tmp_path, straight):
    workdir, every = tmp_path / "killed", "--config.train.checkpoint_every_steps=10"
    # Checkpoints are written asynchronously and orbax starts a save only once the previous one is
    # complete, so the newest complete checkpoint is known up to one.
    # 1. killed before global step 80, in epoch 3 (steps 57-84): step 70's write may be cut short
    run(workdir, every, kill="step=80")
    assert complete(workdir, "checkpoints") == [1, 2]
    assert complete(workdir, "step_checkpoints")[-1] in (60, 70)
    # 2. resumed mid-epoch 3; killed in epoch 3's E-step, with step 80's write maybe unfinished
    expected = expected_resume(workdir)
    assert "(epoch 3, step" in expected
    assert expected in run(workdir, every, kill="e_step=1")
    assert complete(workdir, "step_checkpoints")[-1] in (70, 80)
    # 3. resumed mid-epoch 3 again; killed right after its first checkpoint write began
    expected = expected_resume(workdir)
    assert "(epoch 3, step" in expected
    assert expected in run(workdir, every, kill="save=1")
    # 4. to the end, from whatever is the newest complete checkpoint
    expected = expected_resume(workdir)
    assert expected in run(workdir, every)
    assert results(workdir) == results(straight)


def damage(checkpoint: Path) -> None:
    """Truncates the array data of a checkpoint (its metadata intact, as after a disk filled up or a
    partial copy): orbax lists it as complete, and reading it fails half way through its arrays."""
    data = [p for p in (checkpoint / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert data, "no array data found to damage in the checkpoint"
    for path in data:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_damaged_newest_checkpoint_is_skipped_with_a_warning(tmp_path, straight):
    """One warning line and one line saying where the damaged checkpoint went, no tracebacks; it is set
    aside so the run writes that epoch's checkpoint again; the numbers are the uninterrupted run's."""
    workdir = tmp_path / "damaged"
    shutil.copytree(straight, workdir)
    (workdir / "summary.json").unlink()
    damage(workdir / "checkpoints" / "4")
    out = run(workdir, full=True)
    assert "warning: the checkpoint checkpoints/4 cannot be read" in out.stdout
    assert "set the unreadable checkpoint checkpoints/4 aside as unreadable_4" in out.stdout
    assert "resumed from the checkpoint of epoch 3" in out.stdout
    assert out.stderr.strip() == "" and "Traceback" not in out.stdout
    assert results(workdir) == results(straight)
    import jaxclust

    assert jaxclust.load(workdir).epoch == 4  # the new checkpoint of epoch 4 reads


def test_evaluate_and_load_fall_back_past_a_damaged_checkpoint_and_name_the_flag(tmp_path, straight):
    workdir = tmp_path / "damaged"
    shutil.copytree(straight, workdir)
    damage(workdir / "checkpoints" / "4")
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    evaluate = [sys.executable, str(ROOT / "launch" / "evaluate.py"), f"--workdir={workdir}", "--report.figures=False",
                "--report.knn_queries=50"]
    out = subprocess.run(evaluate, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "warning: using the checkpoint of epoch 3, the newest that can be read; choose one with --checkpoint" in out.stdout
    assert json.loads((workdir / "report" / "report.json").read_text())["source"]["checkpoint_epoch"] == 3
    out = subprocess.run(evaluate + ["--checkpoint=4", f"--output={tmp_path / 'r4'}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "the checkpoint of epoch 4 cannot be read (damaged); choose another with --checkpoint=EPOCH" in out.stderr
    import jaxclust  # the API falls back the same way

    with pytest.warns(UserWarning) as caught:
        assert jaxclust.load(workdir).epoch == 3
    assert [str(w.message).split(" (")[0] for w in caught] == [
        "the checkpoint checkpoints/4 cannot be read",
        "using the checkpoint of epoch 3, the newest that can be read; choose one with jaxclust.load(workdir, checkpoint=EPOCH)."]
    with pytest.warns(UserWarning, match="checkpoints/4 cannot be read"), \
            pytest.raises(FileNotFoundError, match="epoch 4 cannot be read"):
        jaxclust.load(workdir, checkpoint=4)


def test_a_workdir_whose_checkpoints_all_fail_is_never_overwritten(tmp_path, straight):
    workdir = tmp_path / "all_damaged"
    shutil.copytree(straight, workdir)
    (workdir / "summary.json").unlink()
    for checkpoint in (workdir / "checkpoints").iterdir():
        damage(checkpoint)
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    out = subprocess.run([sys.executable, str(ROOT / "launch" / "main.py"), *TINY, f"--workdir={workdir}"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and "none of the 2 checkpoints" in out.stderr and "Traceback" not in out.stderr
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == before


def test_another_seed_gives_other_numbers(tmp_path, straight):
    run(tmp_path / "seed1", "--config.seed=1")
    assert results(tmp_path / "seed1")[0] != results(straight)[0]


def test_an_abandoned_orbax_read_coroutine_is_not_reported_and_others_are():
    """A failed restore can leave orbax's metadata coroutine unawaited; Python's RuntimeWarning for it,
    printed whenever it is collected (even at exit), would break the one-sentence error. Only it."""
    import gc
    import warnings

    from jaxclust.checkpoint import _quiet_abandoned_reads

    class Store:
        async def _get_array_metadatas(self):
            pass

    async def user_coroutine():
        pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _quiet_abandoned_reads()  # what a restore sets up (again, though an earlier test installed its hooks)
        Store()._get_array_metadatas(), user_coroutine()  # both created, neither awaited
        gc.collect()
    assert [str(w.message) for w in caught] == [f"coroutine '{user_coroutine.__qualname__}' was never awaited"]
