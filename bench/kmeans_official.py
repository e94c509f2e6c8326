"""The `--official` section of bench/kmeans.py: jaxclust against the official `torch_clustering.PyTorchKMeans`.

    python bench/kmeans.py --official [--official_path DIR] [--official_ks 10,100,1000] [--official_threads 1,2]
                                      [--official_n 20000] [--official_restarts 3] [--official_iters 30] [--reps 3]

What runs (both sides the official ProPos E-step algorithm, at equal work):
- official: for each restart r, `torch_clustering`'s k-means++ (`_kmeans_plusplus`, cosine potential,
  2 + int(log K) greedy candidates, `random_state = seed + r`, exactly what `fit_predict` calls), then
  `PyTorchKMeans(metric='cosine', init=<those centres>, max_iter=I, tol=0)`'s Lloyd loop from them;
- jaxclust: `kmeans_plusplus(..., n_init=restarts)` (the same seeding with jax.random draws: the same
  work, other rows; all restarts seeded together, as `spherical_kmeans` does), then for each restart
  `kmeans_from_init` from the *official* centres with the same max_iter and tol, so both run the same
  Lloyd trajectory and the same number of iterations.
tol = 0 on both sides: the centre-shift rule only fires on a zero shift and the loops end at strict
convergence (labels unchanged) or at max_iter, which is checked: the `iters` column is each side's
Lloyd iterations over all restarts, and `same labels` says that every restart gave exactly the same
labels (inertia: the largest relative difference).
Times: the median over `--reps` rounds of the sum over restarts of seeding + Lloyd, official and
jaxclust interleaved so that load drift on a shared machine hits both alike; `s/iter` = the Lloyd
part over the iterations run (step-0 assignment included).
Threads: each thread count runs in its own process pinned to that many cores (sched_setaffinity,
as `taskset`): XLA sizes its intra-op thread pool from the cores the process may use (1 thread also
sets --xla_cpu_multi_thread_eigen=false), torch gets `torch.set_num_threads(threads)`.

torch_clustering is imported from `--official_path` (default: $TORCH_CLUSTERING_PATH, else a checkout
next to this repository: ../torch_clustering or ../official/torch_clustering), else from the Python
path. Only its k-means files are loaded (its package __init__ also imports evaluation helpers that
need munkres); the section is skipped with a message when they cannot be imported.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import types

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_official_path() -> str | None:
    """The torch_clustering checkout to use when --official_path is not given (None: the Python path)."""
    candidates = [os.environ.get("TORCH_CLUSTERING_PATH", ""), os.path.join(REPO, "..", "torch_clustering"),
                  os.path.join(REPO, "..", "official", "torch_clustering")]
    return next((os.path.abspath(c) for c in candidates if c and os.path.isdir(os.path.join(c, "torch_clustering"))),
                None)


def import_official_kmeans(path: str | None):
    """(PyTorchKMeans, _kmeans_plusplus, pairwise_cosine) of torch_clustering, without its package __init__:
    from the checkout `path` (the folder holding torch_clustering/), else from the Python path (found, not
    run, unless it was already imported)."""
    if path is not None:
        if not os.path.isdir(os.path.join(path, "torch_clustering")):
            raise ImportError(f"{path} holds no torch_clustering/ folder")
        folders = [os.path.join(path, "torch_clustering")]
    elif "torch_clustering" in sys.modules:
        folders = None  # imported already: its k-means modules come from there
    else:
        spec = importlib.util.find_spec("torch_clustering")  # a top-level package: its __init__ does not run
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("no torch_clustering package on the Python path")
        folders = list(spec.submodule_search_locations)
    if folders is not None:
        package = types.ModuleType("torch_clustering")  # a bare package: only the k-means modules are loaded
        package.__path__ = folders
        sys.modules["torch_clustering"] = package
    kmeans = importlib.import_module("torch_clustering.kmeans.kmeans")
    plusplus = importlib.import_module("torch_clustering.kmeans.kmeans_plus_plus")
    base = importlib.import_module("torch_clustering.__base__")
    return kmeans.PyTorchKMeans, plusplus._kmeans_plusplus, base.pairwise_cosine


# ----------------------------------------------------------------------------------------------
# One thread count, in its own process.


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def child(args) -> list[dict]:
    """Every K at one thread count: the official and jaxclust restarts, interleaved, `reps` rounds."""
    from threads import pin_to_cores  # bench/threads.py

    # before torch and jax are imported: XLA's pool sized from the affinity, OpenMP/BLAS from their variables
    pin_to_cores(args.threads, flag="--official_threads", limit_pools=True)
    import torch

    torch.set_num_threads(args.threads)
    PyTorchKMeans, official_plusplus, pairwise_cosine = import_official_kmeans(args.official_path)
    import jax

    from jaxclust import kmeans as km
    from kmeans import make_blobs  # bench/kmeans.py

    rows = []
    for k in args.ks:
        x, _ = make_blobs(args.n, args.d, k, args.spread, seed=args.seed)
        xt, xj = torch.from_numpy(x), jax.device_put(x)
        # all restarts seeded at once, as spherical_kmeans does (one pass over x per centre for all of them)
        seeding = jax.jit(functools.partial(km.kmeans_plusplus, k=k, n_init=args.restarts)).lower(
            jax.random.key(args.seed), xj).compile()
        lloyd = jax.jit(functools.partial(km.kmeans_from_init, max_iter=args.iters, tol=0.0)).lower(
            xj, jax.device_put(x[:k])).compile()

        def official_run(r):
            t_seed, (init, _) = _timed(lambda: official_plusplus(xt, k, args.seed + r, pairwise_cosine))
            model = PyTorchKMeans(metric="cosine", init=init, n_clusters=k, max_iter=args.iters, tol=0.0,
                                  random_state=args.seed + r, verbose=False)
            predict, calls = model.predict, []
            model.predict = lambda *a: calls.append(1) or predict(*a)  # one call per Lloyd iteration + step 0
            t_lloyd, labels = _timed(lambda: model.fit_predict(xt))
            inertia = float(predict(xt, model.cluster_centers_)[1])
            return t_seed, t_lloyd, len(calls) - 1, init.numpy(), labels.numpy(), inertia

        def jax_seeding():
            return _timed(lambda: jax.block_until_ready(seeding(jax.random.key(args.seed), xj)))[0]

        def jax_run(init):
            t_lloyd, res = _timed(lambda: jax.block_until_ready(lloyd(xj, jax.device_put(init))))
            return t_lloyd, int(res.n_iter), np.asarray(res.labels), float(res.inertia)

        jax_seeding(), jax_run(x[:k])  # first calls of the compiled programs out of the timings
        totals = {"official": [], "jaxclust": []}
        for rep in range(args.reps):
            parts = {"official": np.zeros(3), "jaxclust": np.zeros(3)}  # seeding s, Lloyd s, iterations
            same, inertia_diff = True, 0.0
            parts["jaxclust"][0] = jax_seeding()
            for r in range(args.restarts):
                o_seed, o_lloyd, o_iters, init, o_labels, o_inertia = official_run(r)
                j_lloyd, j_iters, j_labels, j_inertia = jax_run(init)
                parts["official"] += (o_seed, o_lloyd, o_iters)
                parts["jaxclust"] += (0.0, j_lloyd, j_iters)
                same &= bool(np.array_equal(o_labels, j_labels)) and o_iters == j_iters
                inertia_diff = max(inertia_diff, abs(o_inertia - j_inertia) / abs(o_inertia))
            for side, p in parts.items():
                totals[side].append(p)
        row = dict(k=k, threads=args.threads, same=same, inertia_rel_diff=inertia_diff)
        for side, ps in totals.items():
            seed_s, lloyd_s, iters = (statistics.median(p[i] for p in ps) for i in range(3))
            row[side] = dict(total=statistics.median(p[0] + p[1] for p in ps), seeding=seed_s, lloyd=lloyd_s,
                             iters=int(iters), per_iter=lloyd_s / max(iters, 1))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


# ----------------------------------------------------------------------------------------------
# The section: one child per thread count, one table.


def official_section(args):
    path = args.official_path or default_official_path()
    try:
        import torch  # noqa: F401

        import_official_kmeans(path)
    except ImportError as err:
        print(f"\n## torch_clustering.PyTorchKMeans: skipped, cannot import it ({err}); pass --official_path "
              f"DIR (the checkout holding torch_clustering/) or set TORCH_CLUSTERING_PATH.")
        return
    print(f"\n## jaxclust vs official torch_clustering.PyTorchKMeans (cosine), from {path or 'the Python path'}: "
          f"N={args.official_n} D={args.d} spread={args.spread}, {args.official_restarts} restarts of k-means++ (2 + log K "
          f"candidates) + at most {args.official_iters} Lloyd iterations (tol 0), median of {args.reps} rounds")
    print("each thread count in its own process pinned to that many cores; torch.set_num_threads, XLA's pool "
          "from the affinity")
    head = (f"{'K':>5s} {'threads':>7s} {'official s':>10s} {'jaxclust s':>10s} {'ratio':>6s} | {'seeding o/j s':>13s} "
            f"{'ratio':>5s} | {'iters':>5s} {'s/iter o/j':>15s} {'ratio':>5s} | {'same labels':>11s} {'inertia rel':>11s}")
    print(head)
    print("-" * len(head))
    for threads in args.official_threads:
        cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(threads), "--ks", ",".join(map(str, args.official_ks)),
               "--n", str(args.official_n), "--d", str(args.d), "--spread", str(args.spread), "--seed", str(args.seed),
               "--restarts", str(args.official_restarts), "--iters", str(args.official_iters), "--reps", str(args.reps)]
        if path:
            cmd += ["--official_path", path]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            o, j = r["official"], r["jaxclust"]
            iters = str(o["iters"]) if o["iters"] == j["iters"] else f"{o['iters']}/{j['iters']}"
            print(f"{r['k']:5d} {r['threads']:7d} {o['total']:10.3f} {j['total']:10.3f} {o['total'] / j['total']:6.2f} | "
                  f"{o['seeding']:6.3f}/{j['seeding']:6.3f} {o['seeding'] / j['seeding']:5.1f} | {iters:>5s} "
                  f"{o['per_iter']:7.4f}/{j['per_iter']:7.4f} {o['per_iter'] / j['per_iter']:5.2f} | "
                  f"{str(r['same']):>11s} {r['inertia_rel_diff']:11.1e}", flush=True)
        if proc.wait() != 0:
            print(f"threads={threads}: the child failed:\n{proc.stderr.read()[-3000:]}")
    print("ratio = official / jaxclust (> 1: jaxclust faster); o/j = official / jaxclust; iters: Lloyd iterations "
          "over all restarts (one number when both ran the same).")


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(description="child of bench/kmeans.py --official (one thread count)")
    ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--ks", type=ints, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--d", type=int, required=True)
    p.add_argument("--spread", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--restarts", type=int, required=True)
    p.add_argument("--iters", type=int, required=True)
    p.add_argument("--reps", type=int, required=True)
    p.add_argument("--official_path", default=None)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    child(p.parse_args(argv))


if __name__ == "__main__":
    main()
