"""bench/gpu.py: the table from failing, timed-out and retried cases, bench/train_step.py's output read
into cells, and the whole script at tiny sizes on the CPU (about 1-2 minutes)."""
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_gpu():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gpu = load_gpu()
J, T = gpu.JAXCLUST, gpu.TORCH


def python_case(name, code, cells, parse, weight=1.0, **kw):
    return gpu.Case(name, [sys.executable, "-c", code], weight, cells, parse, **kw)


def prints_measure(ms, peak=None, note=""):
    return f"print('noise'); print({json.dumps(dict(ms=ms, peak_gib=peak, note=note))!r})"


def table_cells(table: str) -> dict:
    """{row: [cells after the row name]} of a markdown table."""
    rows = {}
    for line in table.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(parts) == 6 and parts[0] != "case":
            rows[parts[0]] = parts[1:]
    return rows


def test_failed_timed_out_skipped_and_retried_cases_say_why_and_the_rest_go_on():
    ok, fails, slow, late, retried = "fast", "fails", "hangs", "after the budget", "retried"
    cases = [
        python_case("jax side", prints_measure(12.0, 1.5, "compile 3 s"), ((ok, J),), gpu.parse_estep((ok, J))),
        python_case("torch side", prints_measure(24.0, 0.5), ((ok, T),), gpu.parse_estep((ok, T))),
        python_case("crash", "import sys; sys.exit('no CUDA device found')", ((fails, J), (fails, T)),
                    gpu.parse_estep((fails, J))),
        # with the torch flag it fails; the retry fills the jaxclust cell, the PyTorch cell says why it is empty
        python_case("with torch", "raise RuntimeError('cuDNN missing')", ((retried, J), (retried, T)),
                    gpu.parse_estep((retried, J)),
                    retry=python_case("without torch", prints_measure(7.0), ((retried, J), (retried, T)),
                                      gpu.parse_estep((retried, J))),
                    retry_why="the run with --torch failed"),
        python_case("sleeper", "import time; time.sleep(60)", ((slow, J),), gpu.parse_estep((slow, J))),
        # its share of what the sleeper leaves is under min_timeout
        python_case("never runs", prints_measure(1.0), ((late, J),), gpu.parse_estep((late, J)), weight=0.01),
    ]
    t0 = time.monotonic()  # the first cases get about 2 s each, the sleeper what is left
    cells = gpu.run_cases(cases, deadline=t0 + 10.0, min_timeout=0.5, echo=lambda line: None)
    assert time.monotonic() - t0 < 20, "the hanging child was not killed at its timeout"
    table = gpu.format_table([ok, fails, retried, slow, late], cells, ["## header"])
    rows = table_cells(table)
    assert table.startswith("## header\n")
    assert rows[ok] == ["12.0", "24.0", "0.50", "1.50 / 0.50", "compile 3 s"]
    assert rows[fails][0] == rows[fails][1] == "failed (exit 1): no CUDA device found"
    assert rows[fails][2] == "-"
    assert rows[retried][0] == "7.0"
    assert rows[retried][1] == "the run with --torch failed: failed (exit 1): RuntimeError: cuDNN missing"
    assert rows[slow][0].startswith("timed out after ")
    assert rows[late][0].startswith("skipped: the time budget was spent")


TRAIN_STEP_OUTPUT = """\
jax 0.10.2; 1 device(s): cpu:cpu ['cpu:0']
  measured train step: 1673.2 images/s
  measured PyTorch step, no augmentation: 1197.8 images/s

## convnet batch 16 8x8: median of 1 rounds x 2 steps
function                       compile s  images/s  ms/step speed vs step  rounds (images/s)
--------------------------------------------------------------------------------------------
train step                           4.3    1673.2      9.6         1.00x  1673
step, no augmentation                4.0    1906.7      8.4         1.14x  1907
augmentation only                    0.5   59584.0      0.3        35.61x  59584
forward only (embed)                 0.4   18453.1      0.9        11.03x  18453
PyTorch step, no augmentation          -    1197.8     13.4         0.72x  1198
PyTorch forward only (embed)           -   12625.1      1.3         7.55x  12625
peak device memory: 3.25 GiB (largest over devices)
PyTorch peak device memory: 2.00 GiB
"""


def test_train_step_rows_pair_each_jaxclust_row_with_the_pytorch_row_of_the_same_work():
    cells = gpu.parse_train_step("R18", with_torch=True)(TRAIN_STEP_OUTPUT)
    assert cells[("R18: step, no augmentation", J)] == gpu.Measure(8.4, 3.25, note="compile 4.0 s")
    assert cells[("R18: step, no augmentation", T)] == gpu.Measure(13.4, 2.0)
    assert cells[("R18: embed (eval forward)", J)].ms == 0.9
    assert cells[("R18: embed (eval forward)", T)].ms == 1.3
    assert cells[("R18: train step (with augmentation)", J)].ms == 9.6
    assert "no counterpart" in cells[("R18: train step (with augmentation)", T)].why

    without = "\n".join(line for line in TRAIN_STEP_OUTPUT.splitlines() if "PyTorch" not in line)
    cells = gpu.parse_train_step("R18", with_torch=True)(without)
    assert cells[("R18: step, no augmentation", T)].why == "no PyTorch row in bench/train_step.py's output"
    cells = gpu.parse_train_step("R18", with_torch=False, torch_why="torch is not installed")(without)
    assert cells[("R18: embed (eval forward)", T)] == gpu.Measure(why="torch is not installed")
    assert ("R18: embed (eval forward)", T) not in gpu.parse_train_step("R18", with_torch=False)(without)


def test_an_output_without_the_table_fails_the_case_with_its_reason():
    case = python_case("garbage", "print('no table here')", (("g", J),), gpu.parse_train_step("g", True))
    cells = gpu.run_cases([case], deadline=time.monotonic() + 30, echo=lambda line: None)
    assert cells[("g", J)].why == "unreadable output (ValueError: no 'train step' row in bench/train_step.py's table)"


def test_tiny_run_prints_every_row(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device, as a user runs it
    out = tmp_path / "table.md"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--tiny", "--skip_install", "--out",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = out.read_text()
    assert table in proc.stdout
    assert "- device: 1 x cpu; date: " in table
    rows = table_cells(table)
    args = gpu.parse_args(["--tiny"])
    _, expected, _ = gpu.plan(args, torch_why=None, official_why=None)
    assert list(rows) == expected and len(expected) == 11
    torch_rows_expected = importlib.util.find_spec("torch") is not None and "--torch" in subprocess.run(
        [sys.executable, str(ROOT / "bench" / "train_step.py"), "--help"], cwd=ROOT, env=env, capture_output=True,
        text=True).stdout
    for row, (ours, theirs, ratio, peak, notes) in rows.items():
        assert (number(ours) or 0) > 0, (row, ours)  # every jaxclust case ran
        assert theirs, row
        if row.endswith("step, no augmentation") or row.endswith("embed (eval forward)"):
            if torch_rows_expected:
                assert (number(theirs) or 0) > 0 and (number(ratio) or 0) > 0, (row, theirs)
            else:
                assert "torch" in theirs, (row, theirs)  # why there is no PyTorch number
        elif row.startswith("E-step"):
            assert "restarts" in notes, (row, notes)
            assert number(theirs) is not None or "torch" in theirs, (row, theirs)


def number(cell: str) -> float | None:
    try:
        return float(cell.replace(",", ""))
    except ValueError:
        return None


def test_requirement_status_lists_the_missing_and_the_too_old(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["numpy>=1.0", "surely-not-a-package-here>=1", '
                         '"numpy>=999"]\n')
    from importlib.metadata import version

    assert gpu.requirement_status(pyproject) == [("surely-not-a-package-here>=1", "surely-not-a-package-here", None),
                                                 ("numpy>=999", "numpy", version("numpy"))]
