"""jaxclust against PyTorch on one GPU: the training step, the embedding, the E-step and peak memory, one table.

    python bench/gpu.py [--wheels DIR] [--out gpu_table.md] [--torch_clustering DIR] [--budget_s 480]
    python bench/gpu.py --tiny --skip_install        # the same path at tiny sizes, on a CPU in a few minutes

Meant for a machine with an NVIDIA GPU whose Python already holds jax with CUDA, flax, optax, orbax and
torch (a CUDA image). In order, within `--budget_s` (8 minutes) in all:

1. Install only what is missing: every dependency of pyproject.toml that is absent or too old, except
   jax, jaxlib and torch (their CUDA builds are never replaced; a missing jax stops the script), with
   `pip install --no-index --find-links DIR` from `--wheels DIR` (no network) or from the package index
   without it; tqdm too with `--torch_clustering` (the official k-means module imports it); then
   jaxclust itself with `pip install --no-deps --no-build-isolation -e .` if it is not importable (the
   children import this checkout through PYTHONPATH in any case). `--skip_install` touches nothing.
2. `bench/train_step.py` with `--torch` (PyTorch step and embedding in the same run, when the script
   has that flag and torch is importable) for ResNet-18 with the CIFAR stem at batch 256 and 512,
   32x32 (configs/propos_cifar10.py), and ResNet-34 at batch 128, 96x96 (configs/propos_stl10.py).
   Rows: the train step (on-device augmentation included; PyTorch has no counterpart), the step without
   augmentation against PyTorch's step doing the same work, and the eval-mode embedding against
   PyTorch's. Peak memory: the largest `peak_bytes_in_use` over JAX's devices, and PyTorch's if the
   script prints it.
3. The E-step: `jaxclust.kmeans.spherical_kmeans` with the official settings (the `kmeans.*` defaults
   of jaxclust/config.py, as the training loop passes them: 10 k-means++ restarts, at most 300
   iterations, tol 1e-4) on 60,000 x 128 unit features (bench/kmeans.py's synthetic clusters) with
   K = 10 and 1000, against the official `torch_clustering.PyTorchKMeans(metric='cosine')` with the
   same settings on the GPU when it is importable (`--torch_clustering`: the folder holding
   torch_clustering/, a checkout of github.com/Hzzone/torch_clustering; only its k-means modules are
   loaded, not the package's __init__: bench/kmeans_official.py's import_official_kmeans). Time of one
   call after a warm-up call (jaxclust: its compilation); peak device memory of each side.

Every measurement runs in its own subprocess with a timeout: each case gets its share of the time left
(by weight; the short E-step cases run first), so what an early case leaves over goes to the later
ones. A case that fails or times out prints its reason in its cells and the others go on. The table
(markdown: device, date, versions, then one row per measurement: jaxclust ms, PyTorch ms, jaxclust /
PyTorch (< 1: jaxclust faster), peak memory) is printed and, with `--out`, written to a file to paste
into the README. `--logs DIR` keeps every child's output.

The wheel folder, built on a machine with network access: `bash bench/wheels.sh DIR` downloads, for the
GPU machine's Python (PYVER=3.12 by default, x86-64 Linux), what a CUDA image with jax, flax, optax,
orbax and torch usually lacks: ml-collections and tensorboardX (jaxclust's), tqdm (the official k-means
module's); their own dependencies (absl-py, PyYAML, protobuf, numpy, packaging) come with such images.
By hand: `python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --platform
manylinux2014_x86_64 -d DIR ml-collections tensorboardX tqdm`. For a GPU machine that only gets a copy
of the checkout, put both folders inside it, kept out of git (.git/info/exclude):

    bash bench/wheels.sh .whl && cp -r PATH/TO/torch_clustering .torch_clustering      # here
    python3 bench/gpu.py --wheels .whl --torch_clustering .torch_clustering --out gpu_table.md   # there
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.util
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:  # pip always carries it
    from pip._vendor.packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
TRAIN_STEP = BENCH / "train_step.py"
JAXCLUST, TORCH = "jaxclust", "PyTorch"
# CUDA builds the image brings: installing them from a wheel folder or the index would replace them
NEVER_INSTALL = {"jax", "jaxlib", "torch"}


# ----------------------------------------------------------------------------------------------
# Cases: a subprocess, its share of the time, and how its output fills table cells.


@dataclasses.dataclass(frozen=True)
class Measure:
    """One cell: milliseconds (None when not measured, `why` says why) and peak memory in GiB."""
    ms: float | None = None
    peak_gib: float | None = None
    why: str = ""
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]
    weight: float  # share of the time left when the case starts
    cells: tuple[tuple[str, str], ...]  # the (row, side) cells it fills
    parse: Callable[[str], dict]  # stdout -> {(row, side): Measure}
    env: dict = dataclasses.field(default_factory=dict)
    retry: Case | None = None  # run instead if this one fails (not on a timeout)
    retry_why: str = ""  # put in the cells the retry leaves empty, with the failure


def last_line(text: str, limit: int = 160) -> str:
    """The line of a child's output that says what went wrong (the first naming an error, e.g. the
    exception under pip's or a build's noise, else the last), short and safe in a markdown cell."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"(Error|ERROR|Exception):", line)]
    if errors:  # a traceback ends with its exception; pip's first ERROR line says what it lacked
        line = errors[-1] if "Traceback" in text else errors[0]
    else:
        line = lines[-1] if lines else "no output"
    return (line if len(line) <= limit else line[: limit - 3] + "...").replace("|", "/")


def run_child(argv, env_extra: dict, timeout: float, log: Path | None):
    """(returncode or None on timeout, stdout, stderr); the child's whole process group is killed on timeout."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **env_extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except BaseException as e:  # the timeout, or Ctrl-C: no child outlives this script
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # also whatever the child started (data-loader workers)
        out, err = proc.communicate()
        if not isinstance(e, subprocess.TimeoutExpired):
            raise
        code = None
    if log is not None:
        log.write_text(f"$ {' '.join(argv)}\n# exit {code}\n--- stdout\n{out}\n--- stderr\n{err}")
    return code, out, err


def attempt(case: Case, timeout: float, logs: Path | None, echo) -> tuple[dict | None, str, bool]:
    """One run of a case: (its cells or None, why it failed, whether it timed out)."""
    echo(f"[{case.name}] running, timeout {timeout:.0f} s")
    log = logs / (re.sub(r"[^A-Za-z0-9]+", "_", case.name).strip("_") + ".log") if logs else None
    code, out, err = run_child(case.argv, case.env, timeout, log)
    if code is None:
        return None, f"timed out after {timeout:.0f} s", True
    if code != 0:
        return None, f"failed (exit {code}): {last_line(err or out)}", False
    try:
        return case.parse(out), "", False
    except Exception as e:  # an output the parser does not understand fails this case only
        return None, f"unreadable output ({type(e).__name__}: {last_line(str(e))})", False


def run_cases(cases: list[Case], deadline: float, logs: Path | None = None, min_timeout: float = 5.0,
              echo: Callable[[str], None] = print) -> dict:
    """Run every case in turn; each gets timeout = time left * its weight / the weights still to run.
    Returns {(row, side): Measure}, with a Measure(why=...) for every cell a case could not fill."""
    cells = {}
    for i, case in enumerate(cases):
        left = deadline - time.monotonic()
        timeout = left * case.weight / sum(c.weight for c in cases[i:])
        if timeout < min_timeout:
            why = f"skipped: the time budget was spent ({max(left, 0):.0f} s left)"
            echo(f"[{case.name}] {why}")
            cells.update({cell: Measure(why=why) for cell in case.cells})
            continue
        t0 = time.monotonic()
        got, why, timed_out = attempt(case, timeout, logs, echo)
        remaining = timeout - (time.monotonic() - t0)
        if got is None and case.retry is not None and not timed_out and remaining >= min_timeout:
            echo(f"[{case.name}] {why}; trying {case.retry.name}")
            got, retry_failed, _ = attempt(case.retry, remaining, logs, echo)
            why = f"{case.retry_why}: {why}" if got is not None else retry_failed
        echo(f"[{case.name}] {'done' if got is not None else why} ({time.monotonic() - t0:.0f} s)")
        got = got or {}
        cells.update({cell: got.get(cell, Measure(why=why or "not in the output")) for cell in case.cells})
    return cells


# ----------------------------------------------------------------------------------------------
# bench/train_step.py: its table rows "name  compile s  images/s  ms/step  speed x ...".

TABLE_ROW = re.compile(r"^(?P<name>[A-Za-z][^|]*?)\s+(?P<compile>-|\d+(?:\.\d+)?)\s+(?P<rate>\d+(?:\.\d+)?)\s+"
                       r"(?P<ms>\d+(?:\.\d+)?)\s+(?P<speed>\d+(?:\.\d+)?)x")
PEAK = re.compile(r"peak.*?(\d+(?:\.\d+)?)\s*GiB", re.I)
# which row of bench/train_step.py each of our rows reads; PyTorch rows are those naming torch
STEP_ROWS = {"train step (with augmentation)": "train step", "step, no augmentation": "step, no augmentation",
             "embed (eval forward)": "forward only (embed)"}


def is_torch(name: str) -> bool:
    return "torch" in name.lower()


def torch_counterpart(row: str, torch_rows: dict) -> str | None:
    """The PyTorch row measuring the same work as our `row`; none for the augmented train step."""
    if row.startswith("train step"):
        return None
    wants_embed = row.startswith("embed")
    for name in torch_rows:
        embeds = "embed" in name.lower() or "forward" in name.lower()
        if embeds == wants_embed:
            return name
    return None


def parse_train_step(title: str, with_torch: bool, torch_why: str | None = None) -> Callable[[str], dict]:
    """stdout of bench/train_step.py -> cells of the rows `title: ...`. Without --torch, `torch_why` fills the
    PyTorch cells (None: they are left to the caller)."""

    def parse(out: str) -> dict:
        rows = {m["name"].strip(): m for m in map(TABLE_ROW.match, out.splitlines()) if m}
        jax_rows = {n: m for n, m in rows.items() if not is_torch(n)}
        torch_rows = {n: m for n, m in rows.items() if is_torch(n)}
        peaks = [(is_torch(line), float(m[1])) for line in out.splitlines() if (m := PEAK.search(line))]
        jax_peak = next((p for t, p in peaks if not t), None)
        torch_peak = next((p for t, p in peaks if t), None)
        cells = {}
        for row, source in STEP_ROWS.items():
            key = f"{title}: {row}"
            if source not in jax_rows:
                raise ValueError(f"no '{source}' row in bench/train_step.py's table")
            m = jax_rows[source]
            cells[(key, JAXCLUST)] = Measure(float(m["ms"]), jax_peak, note=f"compile {m['compile']} s")
            other = torch_counterpart(row, torch_rows)
            if other is not None:
                cells[(key, TORCH)] = Measure(float(torch_rows[other]["ms"]), torch_peak)
            elif row.startswith("train step"):
                cells[(key, TORCH)] = Measure(why="no counterpart (augmentation on device): bench/augment.py")
            elif with_torch:
                cells[(key, TORCH)] = Measure(why="no PyTorch row in bench/train_step.py's output")
            elif torch_why is not None:
                cells[(key, TORCH)] = Measure(why=torch_why)
        return cells

    return parse


def train_step_case(title: str, config: str, batch: int, image: int, steps: int, reps: int, weight: float,
                    torch_why: str | None) -> Case:
    argv = [sys.executable, str(TRAIN_STEP), "--config", config, "--batch_size", str(batch), "--image_size",
            str(image), "--steps", str(steps), "--reps", str(reps)]
    cells = tuple((f"{title}: {row}", side) for row in STEP_ROWS for side in (JAXCLUST, TORCH))
    if torch_why is not None:
        return Case(title, argv, weight, cells, parse_train_step(title, False, torch_why))
    # JAX and PyTorch share the GPU in one process: JAX takes less than its default 75% up front
    env = {"XLA_PYTHON_CLIENT_MEM_FRACTION": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", ".45")}
    without = Case(f"{title} without --torch", argv, weight, cells, parse_train_step(title, False))
    return Case(f"{title} --torch", [*argv, "--torch"], weight, cells, parse_train_step(title, True), env,
                retry=without, retry_why="the run with --torch failed")


# ----------------------------------------------------------------------------------------------
# The E-step: each side in its own process (`--_estep_child jax|torch`), one JSON line out.


def load_bench_kmeans():
    """bench/kmeans.py as a module (its synthetic clusters on the sphere), without the name `kmeans`."""
    spec = importlib.util.spec_from_file_location("bench_kmeans", REPO / "bench" / "kmeans.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def estep_child(args) -> dict:
    features, _ = load_bench_kmeans().make_blobs(args.n, args.d, args.k, spread=3.0, seed=args.seed)
    if args._estep_child == "jax":
        return estep_jax(features, args)
    return estep_official(features, args)


def estep_jax(features, args) -> dict:
    import jax

    from jaxclust.config import base_config
    from jaxclust.kmeans import spherical_kmeans
    from jaxclust.methods.common import kmeans_options

    solver = base_config().kmeans
    x = jax.device_put(features, jax.devices()[0])
    options = kmeans_options(solver, x, solver.n_init)  # what the training loop's E-step passes
    key = jax.random.key(args.seed)
    t0 = time.perf_counter()
    result = jax.block_until_ready(spherical_kmeans(key, x, args.k, **options))  # compiles
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        result = jax.block_until_ready(spherical_kmeans(key, x, args.k, **options))
        times.append(time.perf_counter() - t0)
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return dict(ms=1000 * statistics.median(times), peak_gib=peak / 2**30 if peak else None,
                note=f"first call {first_s:.1f} s; {solver.n_init} restarts, best ran {int(result.n_iter)} iter")


def official_path(torch_clustering: str | None) -> str | None:
    """What import_official_kmeans gets from --torch_clustering: the checkout, or None (the Python path)."""
    return os.path.abspath(torch_clustering) if torch_clustering else None


def estep_official(features, args) -> dict:
    import torch
    from kmeans_official import import_official_kmeans  # bench/ is this script's sys.path[0]

    PyTorchKMeans = import_official_kmeans(official_path(args.torch_clustering))[0]

    from jaxclust.config import base_config

    solver = base_config().kmeans  # the official settings are its defaults
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x = torch.from_numpy(features).to(device)

    def fit(rows, k=args.k, n_init=solver.n_init):
        km = PyTorchKMeans(metric="cosine", init="k-means++", random_state=0, n_clusters=k, n_init=n_init,
                           max_iter=solver.max_iter, tol=solver.tol, distributed=False, verbose=False)
        labels = km.fit_predict(rows)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return labels

    # warm-up (CUDA context, cuBLAS, kernels): one restart with few centres, as k-means++ costs K steps
    fit(x[:256], k=min(args.k, 8), n_init=1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        fit(x)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return dict(ms=1000 * statistics.median(times), peak_gib=peak,
                note=f"official on {device.type}, {solver.n_init} restarts")


def parse_estep(cell) -> Callable[[str], dict]:
    def parse(out: str) -> dict:
        got = json.loads(out.strip().splitlines()[-1])
        return {cell: Measure(got["ms"], got["peak_gib"], note=got["note"])}

    return parse


def estep_cases(n: int, d: int, ks_weights, reps: int, torch_clustering: str | None,
                official_why: str | None) -> tuple[list[Case], dict]:
    """The E-step cases, and the cells known without a run (why there is no official row)."""
    cases, preset = [], {}
    for k, weight in ks_weights:
        row = f"E-step k-means, {n:,} x {d}, K={k}"
        argv = [sys.executable, str(Path(__file__).resolve()), "--n", str(n), "--d", str(d), "--k", str(k),
                "--reps", str(reps)]
        cases.append(Case(f"{row} jaxclust", [*argv, "--_estep_child", "jax"], weight, ((row, JAXCLUST),),
                          parse_estep((row, JAXCLUST))))
        if official_why is None:
            extra = ["--torch_clustering", torch_clustering] if torch_clustering else []
            cases.append(Case(f"{row} official", [*argv, "--_estep_child", "torch", *extra], weight,
                              ((row, TORCH),), parse_estep((row, TORCH))))
        else:
            preset[(row, TORCH)] = Measure(why=official_why)
    return cases, preset


# ----------------------------------------------------------------------------------------------
# Installation and environment.


def requirement_status(pyproject: Path) -> list[tuple[str, str, str | None]]:
    """(requirement, distribution name, installed version or None) of each jaxclust dependency that is
    missing or does not satisfy its pin."""
    import tomllib

    out = []
    for spec in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        req = Requirement(spec)
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            have = None
        if have is None or not req.specifier.contains(have, prereleases=True):
            out.append((str(req), req.name, have))
    return out


def pip(args: list[str], wheels: str | None) -> str:
    """Runs pip; '' on success, else its last line."""
    index = ["--no-index", "--find-links", wheels] if wheels else []
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-input", *index, *args],
                          capture_output=True, text=True)
    return "" if proc.returncode == 0 else last_line(proc.stderr or proc.stdout)


def install_missing(args) -> list[str]:
    """Installs what is missing (see the module docstring); returns the notes for the table's header."""
    notes = []
    bad = requirement_status(REPO / "pyproject.toml")
    frozen = [(req, have) for req, name, have in bad if name in NEVER_INSTALL]
    if any(have is None and Requirement(req).name == "jax" for req, have in frozen):
        sys.exit("jax is not installed in this Python: install jax with CUDA first (pip install -U 'jax[cuda12]').")
    for req, have in frozen:
        notes.append(f"warning: {req} wanted, {have} installed (left as it is)")
    wanted = [req for req, name, _ in bad if name not in NEVER_INSTALL]
    if args.torch_clustering and importlib.util.find_spec("tqdm") is None:
        wanted.append("tqdm")  # imported by the official torch_clustering/kmeans/kmeans.py
    if args.skip_install:
        if wanted:
            notes.append(f"missing (--skip_install): {', '.join(wanted)}")
    elif wanted:
        print(f"installing {', '.join(wanted)}" + (f" from {args.wheels}" if args.wheels else ""), flush=True)
        failed = pip(wanted, args.wheels)
        names = ", ".join(wanted)
        notes.append(f"installed {names}" if not failed else f"pip could not install {names}: {failed}")
    if not args.skip_install and importlib.util.find_spec("jaxclust") is None:
        print("installing jaxclust (editable, no dependencies)", flush=True)
        failed = pip(["--no-deps", "--no-build-isolation", "-e", str(REPO)], args.wheels)
        notes.append("installed jaxclust -e ." if not failed else f"jaxclust not installed ({failed}); "
                     "the benchmarks import this checkout through PYTHONPATH")
    return notes


def environment(timeout: float) -> dict:
    """Device and versions, from a child (this process never starts a GPU client of its own)."""
    code = ("import json, jax, platform\n"
            "d = jax.devices()\n"
            "info = dict(python=platform.python_version(), jax=jax.__version__, platform=d[0].platform,\n"
            "            device=f'{len(d)} x {d[0].device_kind}')\n"
            "try:\n"
            "    import torch\n"
            "    info['torch'] = torch.__version__\n"
            "    info['torch_device'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'\n"
            "except ImportError:\n"
            "    info['torch'] = None\n"
            "print(json.dumps(info))\n")
    env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    rc, out, err = run_child([sys.executable, "-c", code], env, timeout, None)
    if rc != 0:
        return dict(error=f"could not read the devices: {last_line(err) if rc is not None else 'timed out'}")
    return json.loads(out.strip().splitlines()[-1])


def commit() -> str:
    """The checkout's commit, for the table's header ('unknown' without git or a .git folder)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True)
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + (" (modified)" if dirty.stdout.strip() else "")


def train_step_has_torch_flag() -> bool:
    proc = subprocess.run([sys.executable, str(TRAIN_STEP), "--help"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    return "--torch" in proc.stdout


def official_importable(torch_clustering: str | None, timeout: float) -> str | None:
    """None if the official k-means imports as estep_official imports it (in a child: it imports torch),
    else why not."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import torch; "
            "from kmeans_official import import_official_kmeans; import_official_kmeans(sys.argv[2] or None)")
    argv = [sys.executable, "-c", code, str(BENCH), official_path(torch_clustering) or ""]
    rc, _, err = run_child(argv, {}, timeout, None)
    if rc == 0:
        return None
    if rc is None:
        return "torch_clustering: its import timed out"
    hint = "" if torch_clustering else "; pass --torch_clustering DIR"
    return f"torch_clustering not importable ({last_line(err, 80)}){hint}"


# ----------------------------------------------------------------------------------------------
# The table.


def cell_text(m: Measure | None) -> str:
    if m is None:
        return "not run"
    return f"{m.ms:,.1f}" if m.ms is not None else m.why.replace("|", "/")


def format_table(rows: list[str], cells: dict, header: list[str]) -> str:
    """Markdown: the header lines, then one row per measurement with both sides, their ratio and peak memory."""
    lines = [*header, "",
             f"| case | {JAXCLUST} ms | {TORCH} ms | {JAXCLUST} / {TORCH} | peak GiB ({JAXCLUST} / {TORCH}) | notes |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        ours, theirs = cells.get((row, JAXCLUST)), cells.get((row, TORCH))
        both = ours and theirs and ours.ms is not None and theirs.ms is not None and theirs.ms > 0
        ratio = "-"
        if both:  # two decimals, or two significant digits below 0.1
            ratio = f"{ours.ms / theirs.ms:.2f}" if ours.ms >= 0.1 * theirs.ms else f"{ours.ms / theirs.ms:.2g}"
        peaks = [m.peak_gib if m is not None else None for m in (ours, theirs)]
        peak = " / ".join("-" if p is None or math.isnan(p) else f"{p:.2f}" for p in peaks)
        notes = "; ".join(m.note.replace("|", "/") for m in (ours, theirs) if m is not None and m.note)
        lines.append(f"| {row} | {cell_text(ours)} | {cell_text(theirs)} | {ratio} | {peak} | {notes} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------


def plan(args, torch_why: str | None, official_why: str | None) -> tuple[list[Case], list[str], dict]:
    """(cases, table rows, cells known without a run): the GPU sizes of issue #19, or tiny ones (the same
    code path) with --tiny."""
    if args.tiny:
        steps, reps = 2, 1
        train = [("ConvNet, batch 8, 8x8 (tiny)", "configs/propos_digits.py", 8, 8, 1.0),
                 ("ConvNet, batch 16, 8x8 (tiny)", "configs/propos_digits.py", 16, 8, 1.0),
                 ("ConvNet, batch 8, 16x16 (tiny)", "configs/propos_digits.py", 8, 16, 1.0)]
        n, d, ks_weights = 256, 16, ((4, 0.5), (8, 0.5))
    else:
        steps, reps = 10, 3
        train = [("ResNet-18 CIFAR stem, batch 256, 32x32", "configs/propos_cifar10.py", 256, 32, 3.0),
                 ("ResNet-18 CIFAR stem, batch 512, 32x32", "configs/propos_cifar10.py", 512, 32, 3.0),
                 ("ResNet-34, batch 128, 96x96", "configs/propos_stl10.py", 128, 96, 4.0)]
        # k-means++ costs K sequential steps per restart: K=1000 gets the larger share
        n, d, ks_weights = 60_000, 128, ((10, 0.5), (1000, 1.5))
    steps_cases = [train_step_case(title, config, batch, image, steps, reps, weight, torch_why)
                   for title, config, batch, image, weight in train]
    estep, preset = estep_cases(n, d, ks_weights, args.estep_reps, args.torch_clustering, official_why)
    rows = list(dict.fromkeys(row for case in steps_cases + estep for row, _ in case.cells))
    # the short E-step cases first: the time they leave over goes to the training steps
    return estep + steps_cases, rows, preset


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="", help="also write the table (markdown) to this file")
    p.add_argument("--wheels", default=None, help="a folder of wheels to install missing packages from (no network)")
    p.add_argument("--skip_install", action="store_true", help="never run pip")
    p.add_argument("--tiny", action="store_true", help="tiny sizes: the same path on a CPU in a few minutes")
    p.add_argument("--budget_s", type=float, default=480.0, help="seconds for everything (install included)")
    p.add_argument("--torch_clustering", default=None,
                   help="folder holding torch_clustering/ (github.com/Hzzone/torch_clustering), for the official row")
    p.add_argument("--no_torch", action="store_true", help="jaxclust rows only")
    p.add_argument("--estep_reps", type=int, default=1, help="timed E-step calls per side (median)")
    p.add_argument("--logs", default=None, help="write each child's command and output to this folder")
    # the E-step children
    p.add_argument("--_estep_child", choices=("jax", "torch"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=60_000, help=argparse.SUPPRESS)
    p.add_argument("--d", type=int, default=128, help=argparse.SUPPRESS)
    p.add_argument("--k", type=int, default=10, help=argparse.SUPPRESS)
    p.add_argument("--reps", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.budget_s <= 0 or args.estep_reps < 1:
        p.error("--budget_s must be positive and --estep_reps at least 1")
    if args.wheels and not Path(args.wheels).is_dir():
        p.error(f"--wheels {args.wheels} is not a folder")
    if args.torch_clustering and not (Path(args.torch_clustering) / "torch_clustering").is_dir():
        p.error(f"--torch_clustering {args.torch_clustering} holds no torch_clustering/ folder")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args._estep_child:
        print(json.dumps(estep_child(args)))
        return
    start = time.monotonic()
    deadline = start + args.budget_s
    notes = install_missing(args)
    info = environment(max(min(60.0, deadline - time.monotonic()), 1.0))
    if args.no_torch:
        torch_why = official_why = "not run (--no_torch)"
    elif importlib.util.find_spec("torch") is None:
        torch_why = official_why = "torch is not installed"
    else:
        torch_why = None if train_step_has_torch_flag() else "bench/train_step.py has no --torch flag yet"
        official_why = official_importable(args.torch_clustering, max(min(60.0, deadline - time.monotonic()), 1.0))
    if not args.tiny and info.get("platform") not in ("gpu", "cuda", None):
        notes.append(f"warning: JAX runs on {info.get('platform')}, not a GPU: these are not GPU numbers")
    cases, rows, preset = plan(args, torch_why, official_why)
    logs = Path(args.logs) if args.logs else None
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    cells = {**preset, **run_cases(cases, deadline, logs)}
    torch_text = (f"torch {info['torch']} ({info.get('torch_device')})" if info.get("torch")
                  else "torch not installed")
    header = [f"## jaxclust vs PyTorch{' (tiny sizes, --tiny)' if args.tiny else ''}",
              "",
              f"- device: {info.get('device', info.get('error'))}; date: {datetime.date.today().isoformat()}",
              f"- jax {info.get('jax')} ({info.get('platform')}), {torch_text}, python {info.get('python')}, "
              f"jaxclust {commit()}",
              f"- wall time {time.monotonic() - start:.0f} s of a {args.budget_s:.0f} s budget; ms: median per step "
              "(train step rows) or per whole E-step call; ratio < 1: jaxclust faster",
              *[f"- {note}" for note in notes]]
    table = format_table(rows, cells, header)
    print("\n" + table, end="")
    if args.out:
        Path(args.out).write_text(table)
        print(f"\n(written to {args.out})")


if __name__ == "__main__":
    main()
