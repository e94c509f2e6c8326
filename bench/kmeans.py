"""Spherical k-means: jaxclust vs faiss-cpu vs scikit-learn at equal work, and jaxclust at ImageNet scale.

    python bench/kmeans.py [--ks 10,200] [--n 60000] [--restarts 3] [--iters 10] [--reps 3]
    python bench/kmeans.py --large          # adds N=1.28M, D=256, K=1000 (several minutes on 2 cores)
    python bench/kmeans.py --large_only
    python bench/kmeans.py --devices_only [--fake_devices 2]   # restarts row-sharded vs spread over devices
    python bench/kmeans.py --official       # only: against torch_clustering.PyTorchKMeans (bench/kmeans_official.py)

Needs `pip install -e ".[bench]"` (faiss-cpu).

Data: synthetic clusters on the unit sphere with known labels: K random unit centres in D dimensions,
each point a centre plus isotropic Gaussian noise of norm about `--spread` (relative to the unit
centre), then l2-normalised. With the default spread 3 a point's cosine to its own centre is about 0.3,
so clusters overlap in every direction but one and NMI says how good a solution is.

Equal work: every method runs the same number of restarts (`--restarts`), each k-means++ seeded,
followed by exactly `--iters` Lloyd iterations on all N points:
- jaxclust `spherical_kmeans(..., tol=0, early_stop=False)`: the official ProPos algorithm (greedy
  k-means++ with 2 + log K candidates per centre, plain-mean centres, cosine assignment, best inertia
  over every iteration of every restart); early_stop=False disables both convergence rules, so each
  restart runs exactly `--iters` iterations; a second row with `n_local_trials=1`, plain k-means++
  (one candidate per centre), which does the seeding work of faiss's k-means++ (one D^2-sampled
  candidate per centre; jaxclust samples by D, the official potential, at the same cost);
- faiss `faiss.Kmeans(spherical=True, nredo=restarts, niter=iters)` with k-means++ init (and a second
  row with faiss's default random init), `max_points_per_centroid=N` (faiss otherwise trains on a
  subsample of 256 K points) and `early_stop_threshold=-1` (faiss >= 1.12 otherwise stops when the
  objective stops improving); the time includes the final `index.search` that gives the labels;
- scikit-learn `KMeans(n_init=1, max_iter=iters, tol=0, algorithm="lloyd")` on the l2-normalised
  features, once per restart with seeds seed..seed+restarts-1, keeping the lowest inertia: the same
  computation as `n_init=restarts`, but each restart's iteration count is known. scikit-learn always
  stops when the labels no longer change; the `iters` column shows what it really ran. (Its k-means++
  computes the distances of float32 data in float64 blocks, which is why its seeding is slow.)
Columns: `total s` (wall, median over `--reps` rounds), `cpu s` (process CPU time, all threads),
`s/iter` = (t(iters) - t(1)) / (Lloyd iterations of the first run - those of the second), where t(1) is
the same call with one Lloyd iteration per restart, `init s` = total - iterations x s/iter (k-means++
seeding of every restart plus set-up), `iters` the Lloyd iterations run over all restarts, NMI against
the generating labels, and `objective` = sum_i (1 - cos(x_i, unit mean of its cluster)), the spherical
k-means cost of each method's labels (lower is better; it scores every method's labels the same way).
Ratios are the row's time over faiss k-means++'s or scikit-learn's (>1 = slower). jaxclust's compile
time (lowering + XLA compilation, once per shape and setting) is printed apart from the run times.

Threads: by default each library uses its own thread pools (XLA, faiss's OpenMP, OpenBLAS); on a machine
shared with other jobs, OpenMP/BLAS threads that spin-wait for busy cores can slow some calls down by
10x. `--single_thread` pins the process to one core (the first it may use; choose it with `taskset`) and
runs every library on one thread, a per-core comparison that such load distorts least. `cpu s` is the process's CPU time (all threads), a second view when wall time is noisy.

Devices section (run when JAX sees several devices, or alone with --devices_only): the official
k-means (greedy k-means++, tol 1e-4, `--device_restarts` restarts of at most `--iters` iterations) on
features row-sharded over every device, with each restart using all devices (restart_mesh=None)
against the restarts spread over the devices, each on a whole copy (restart_mesh=mesh, the auto
choice of `kmeans.restarts_over_devices` when the device count divides the restarts), and whether
each gives the one-device labels. Simulated CPU devices share the machine's cores, so only real
accelerators say which is faster there.

--large: jaxclust seconds per Lloyd iteration and peak memory at N=1.28M, D=256, K=1000, for two
assignment chunk sizes, each in a fresh subprocess. Seconds per iteration = (time of max_iter=1+M
minus time of max_iter=1) / M with a random init (k-means++ there would take longer than the
iterations). Peak memory = the process's resident-set high-water mark (Linux VmHWM, reset through
/proc/self/clear_refs just before each call) minus the resident set at that moment, which already holds
the (N, D) input, so it counts what a call allocates on top of its input (largest over the max_iter=1+M
calls, a real E-step loops; they run first, as XLA's CPU client keeps memory it freed for later calls);
XLA's own buffer plan (`compiled.memory_analysis()`, temporaries) is printed next to it. faiss runs the same iterations in
its own subprocess as the baseline.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

# ----------------------------------------------------------------------------------------------
# Data and scoring.


def make_blobs(n: int, d: int, k: int, spread: float, seed: int = 0, block: int = 65536):
    """(x (n, d) float32 unit rows, y (n,) int32): K random unit centres + noise of norm ~spread."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = rng.integers(0, k, n).astype(np.int32)
    x = np.empty((n, d), np.float32)
    for s in range(0, n, block):  # blockwise: no (n, d) float64 temporaries at N = 1.28M
        e = min(s + block, n)
        b = centres[y[s:e]] + (spread / math.sqrt(d)) * rng.standard_normal((e - s, d), dtype=np.float32)
        x[s:e] = b / np.linalg.norm(b, axis=1, keepdims=True)
    return x, y


def spherical_objective(x: np.ndarray, labels: np.ndarray, k: int) -> float:
    """sum_i 1 - cos(x_i, unit mean of its cluster) for unit rows x = N - sum_k |sum of cluster k|."""
    from scipy import sparse

    labels = np.asarray(labels).reshape(-1)
    onehot = sparse.csr_matrix((np.ones(len(labels), np.float64), (labels, np.arange(len(labels)))), shape=(k, len(labels)))
    sums = onehot @ x.astype(np.float64)
    return float(len(labels) - np.linalg.norm(sums, axis=1).sum())


def nmi(y, labels) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(y, np.asarray(labels).reshape(-1)))


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return r.ru_utime + r.ru_stime


def clock(fn):
    """(wall seconds, process CPU seconds, result) of one call of fn()."""
    c0, t0 = _cpu_seconds(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, _cpu_seconds() - c0, out


# ----------------------------------------------------------------------------------------------
# The three implementations at equal work. Each is a Contender whose `run(iters)` clusters with
# `iters` Lloyd iterations per restart and returns (labels, Lloyd iterations actually run).


class Contender:
    def __init__(self, method, init, run, compile_s=None):
        self.method, self.init, self.run, self.compile_s = method, init, run, compile_s
        self.wall, self.cpu, self.short_wall = [], [], []
        self.labels, self.iters, self.short_iters = None, 0, 0


def jaxclust_contender(x, k, restarts, iters, chunk_size, seed, n_local_trials=None):
    import jax

    from jaxclust import kmeans as km

    xj = jax.device_put(x)
    key = jax.random.key(seed)
    compiled, compile_s = {}, None
    for m in {iters, 1}:
        fn = jax.jit(functools.partial(km.spherical_kmeans, k=k, n_init=restarts, max_iter=m, tol=0.0,
                                       chunk_size=chunk_size, early_stop=False, n_local_trials=n_local_trials))
        t0 = time.perf_counter()
        compiled[m] = fn.lower(key, xj).compile()
        if m == iters:
            compile_s = time.perf_counter() - t0

    def run(m):
        res = jax.block_until_ready(compiled[m](key, xj))
        assert int(res.n_iter) == m, "early_stop=False runs exactly max_iter iterations"
        return np.asarray(res.labels), restarts * m

    init = "k-means++ greedy" if n_local_trials is None else f"k-means++ {n_local_trials} cand."
    return Contender("jaxclust spherical_kmeans", init, run, compile_s)


def _faiss_kmeans(d, k, n, restarts, iters, seed, init):
    import faiss

    kw = dict(niter=iters, nredo=restarts, spherical=True, seed=seed, verbose=False,
              max_points_per_centroid=n, min_points_per_centroid=1)  # all n points, no subsampling
    if hasattr(faiss.ClusteringParameters(), "early_stop_threshold"):
        kw["early_stop_threshold"] = -1.0  # run exactly niter iterations
    if init == "k-means++":
        kw["init_method"] = faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS
    return faiss.Kmeans(d, k, **kw)


def faiss_contender(x, k, restarts, seed, init):
    n, d = x.shape

    def run(m):
        km = _faiss_kmeans(d, k, n, restarts, m, seed, init)
        km.train(x)
        _, labels = km.index.search(x, 1)  # the labels of the final centroids
        return labels[:, 0], restarts * m  # exactly, with early_stop_threshold < 0

    return Contender("faiss Kmeans spherical", init, run)


def sklearn_contender(x, k, restarts, seed):
    from sklearn.cluster import KMeans

    def run(m):
        best, n_iter = None, 0
        for i in range(restarts):  # = KMeans(n_init=restarts), with each restart's n_iter_ known
            km = KMeans(k, init="k-means++", n_init=1, max_iter=m, tol=0.0, algorithm="lloyd",
                        random_state=seed + i).fit(x)
            n_iter += int(km.n_iter_)
            if best is None or km.inertia_ < best.inertia_:
                best = km
        return best.labels_, n_iter

    return Contender("sklearn KMeans (l2-normed)", "k-means++ greedy", run)


def measure(contenders, iters, reps):
    """`reps` rounds; each round runs every contender with `iters` and then with 1 Lloyd iteration per
    restart, so load drift on a shared machine hits all of them alike. jaxclust runs once untimed first."""
    for c in contenders:
        if c.method.startswith("jaxclust"):
            c.run(iters)
    for _ in range(reps):
        for c in contenders:
            wall, cpu, (c.labels, c.iters) = clock(lambda: c.run(iters))
            c.wall.append(wall)
            c.cpu.append(cpu)
        for c in contenders:
            wall, _, (_, c.short_iters) = clock(lambda: c.run(1))
            c.short_wall.append(wall)


def print_small_table(contenders, k, args, x, y):
    med = statistics.median
    rows = []
    for c in contenders:
        total, short = med(c.wall), med(c.short_wall)
        per_iter = max(total - short, 0.0) / max(c.iters - c.short_iters, 1)
        rows.append(dict(c=c, total=total, cpu=med(c.cpu), per_iter=per_iter, init=total - c.iters * per_iter,
                         nmi=nmi(y, c.labels), objective=spherical_objective(x, c.labels, k)))
    sk = next((r for r in rows if r["c"].method.startswith("sklearn")), None)
    fa = next((r for r in rows if r["c"].method.startswith("faiss") and r["c"].init == "k-means++"), None)
    plain = next((r for r in rows if r["c"].init.startswith("k-means++ 1 ")), None)

    def ratio(a, b):
        return f"{a / b:.2f}" if b and b > 0 and not math.isnan(b) else "-"

    print(f"\n## K={k}  N={len(x)} D={x.shape[1]}  {args.restarts} restarts x {args.iters} Lloyd iterations  "
          f"spread={args.spread}  median of {args.reps} interleaved rounds")
    head = (f"{'method':27s} {'init':16s} {'total s':>7s} {'cpu s':>6s} {'init s':>6s} {'s/iter':>6s} {'iters':>5s} "
            f"{'NMI':>6s} {'objective':>9s} | {'total/faiss':>11s} {'total/sklearn':>13s} {'iter/faiss':>10s} "
            f"{'iter/sklearn':>12s}")
    print(head)
    print("-" * len(head))
    for r in rows:
        c = r["c"]
        print(f"{c.method:27s} {c.init:16s} {r['total']:7.2f} {r['cpu']:6.2f} {r['init']:6.2f} {r['per_iter']:6.3f} "
              f"{c.iters:5d} {r['nmi']:6.4f} {r['objective']:9.1f} | "
              f"{ratio(r['total'], fa and fa['total']):>11s} {ratio(r['total'], sk and sk['total']):>13s} "
              f"{ratio(r['per_iter'], fa and fa['per_iter']):>10s} {ratio(r['per_iter'], sk and sk['per_iter']):>12s}")
    for jx in contenders:
        if jx.compile_s is not None:
            print(f"jaxclust ({jx.init}) compile (lower + XLA compile, once per shape and setting): {jx.compile_s:.2f} s, "
                  f"not in 'total'; its run times: {', '.join(f'{t:.2f}' for t in jx.wall)} s")
    if plain and fa:
        print(f"equal work (one k-means++ candidate per centre, as faiss): jaxclust / faiss total {plain['total'] / fa['total']:.2f}, "
              f"per iteration {plain['per_iter'] / fa['per_iter']:.2f}, seeding {plain['init'] / max(fa['init'], 1e-9):.2f}; "
              f"NMI {plain['nmi']:.4f} vs {fa['nmi']:.4f}")
    if sk and sk["c"].iters < args.restarts * args.iters:
        print(f"note: scikit-learn stopped at strict convergence after {sk['c'].iters} of "
              f"{args.restarts * args.iters} iterations (it cannot be told not to); compare s/iter for it.")


def small_section(args):
    for k in args.ks:
        x, y = make_blobs(args.n, args.d, k, args.spread, seed=args.seed)
        contenders = [jaxclust_contender(x, k, args.restarts, args.iters, args.chunk_size, args.seed),
                      jaxclust_contender(x, k, args.restarts, args.iters, args.chunk_size, args.seed, n_local_trials=1)]
        if not args.no_faiss:
            contenders.append(faiss_contender(x, k, args.restarts, args.seed, "k-means++"))
            contenders.append(faiss_contender(x, k, args.restarts, args.seed, "random"))
        if not args.no_sklearn:
            contenders.append(sklearn_contender(x, k, args.restarts, args.seed))
        measure(contenders, args.iters, args.reps)
        print_small_table(contenders, k, args, x, y)
        sys.stdout.flush()


# ----------------------------------------------------------------------------------------------
# Devices section: row-sharded restarts vs restarts spread over the devices.


def devices_section(args):
    """`kmeans.restarts_over_devices`: every restart on the row-sharded features (one collective per
    k-means++ centre and per Lloyd iteration) vs each device running its share of the restarts on a
    whole copy (none); with the official algorithm (greedy k-means++, early stopping as configured)."""
    import jax

    from jaxclust import kmeans as km
    from jaxclust import parallel

    mesh = parallel.make_mesh()
    print(f"\n## Restarts over {mesh.size} devices: N={args.n} D={args.d}, {args.device_restarts} restarts, "
          f"max_iter {args.iters}, median of {args.reps}")
    print(f"{'K':>5s} {'row-sharded s':>13s} {'spread s':>9s} {'spread/sharded':>14s} {'spread == 1 device':>18s} "
          f"{'sharded == 1 device':>19s}")
    for k in args.ks:
        x, _ = make_blobs(args.n, args.d, k, args.spread, seed=args.seed)
        n = len(x) - len(x) % mesh.size  # rows split evenly over the devices
        x = x[:n]
        xs = jax.device_put(x, parallel.batch_sharded(mesh))
        key = jax.random.key(args.seed)
        call = functools.partial(km.spherical_kmeans, k=k, n_init=args.device_restarts, max_iter=args.iters)
        one = jax.device_get(call(key, jax.device_put(x, jax.devices()[0])))
        times, same = {}, {}
        for name, restart_mesh in (("sharded", None), ("spread", mesh)):
            run = lambda: jax.block_until_ready(call(key, xs, restart_mesh=restart_mesh))  # noqa: E731
            res = run()  # compile
            times[name] = statistics.median(clock(run)[0] for _ in range(args.reps))
            same[name] = bool(np.array_equal(jax.device_get(res.labels), one.labels))
        print(f"{k:5d} {times['sharded']:13.3f} {times['spread']:9.3f} {times['spread'] / times['sharded']:14.2f} "
              f"{str(same['spread']):>18s} {str(same['sharded']):>19s}")
        sys.stdout.flush()


# ----------------------------------------------------------------------------------------------
# Large section: every measurement in a fresh subprocess.


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+)", f.read(), re.M).group(1))


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux >= 4.0: reset VmHWM to the current resident set
        return True
    except OSError:
        return False


def child_large_jax(args) -> dict:
    import jax
    import jax.numpy as jnp

    from jaxclust import kmeans as km

    x, _ = make_blobs(args.large_n, args.d, args.large_k, args.spread, seed=args.seed)
    input_bytes = x.nbytes
    xj = jnp.asarray(x)
    init = xj[np.random.default_rng(args.seed).choice(args.large_n, args.large_k, replace=False)]
    del x
    jax.block_until_ready((xj, init))
    out = dict(chunk=args.chunk_size, input_gb=input_bytes / 1e9)
    compiled = {}
    for m in (1 + args.large_iters, 1):  # the looping call first: its first run measures a fresh process
        fn = jax.jit(functools.partial(km.kmeans_from_init, max_iter=m, tol=0.0, chunk_size=args.chunk_size,
                                       early_stop=False))
        t0 = time.perf_counter()
        compiled[m] = fn.lower(xj, init).compile()
        out[f"compile_s_{m}"] = time.perf_counter() - t0
        if m > 1:  # memory of the looping executable (a real E-step loops)
            out["xla_temp_gb"] = getattr(compiled[m].memory_analysis(), "temp_size_in_bytes", float("nan")) / 1e9
    times = {m: [] for m in compiled}
    peaks = []
    for _ in range(args.large_reps):
        for m, c in compiled.items():
            out["hwm_reset"] = _reset_peak()  # peak of this call alone
            base = _status_kb("VmRSS")
            t0 = time.perf_counter()
            res = jax.block_until_ready(c(xj, init))
            times[m].append(time.perf_counter() - t0)
            if m > 1:
                peaks.append((_status_kb("VmHWM") - base) * 1024 / 1e9)
            assert int(res.n_iter) == m
            del res
    short, long_ = statistics.median(times[1]), statistics.median(times[1 + args.large_iters])
    out.update(peak_extra_gb=max(peaks), per_iter=(long_ - short) / args.large_iters, t_short=short, t_long=long_,
               times_short=times[1], times_long=times[1 + args.large_iters])
    return out


def child_large_faiss(args) -> dict:
    x, _ = make_blobs(args.large_n, args.d, args.large_k, args.spread, seed=args.seed)
    out = dict(input_gb=x.nbytes / 1e9, hwm_reset=_reset_peak())
    base = _status_kb("VmRSS")
    km = _faiss_kmeans(args.d, args.large_k, args.large_n, 1, args.large_iters, args.seed, "random")
    t0 = time.perf_counter()
    km.train(x)
    out["t_train"] = time.perf_counter() - t0
    stamps = [s["time"] for s in km.iteration_stats]  # cumulative seconds at the end of each iteration
    out.update(per_iter=stamps[-1] / len(stamps), peak_extra_gb=(_status_kb("VmHWM") - base) * 1024 / 1e9)
    return out


def _run_child(kind: str, args, extra=()) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--_child", kind, "--large_n", str(args.large_n),
           "--large_k", str(args.large_k), "--large_iters", str(args.large_iters), "--large_reps",
           str(args.large_reps), "--d", str(args.d), "--spread", str(args.spread), "--seed", str(args.seed), *extra]
    if args.single_thread:
        cmd.append("--single_thread")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} subprocess failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def large_section(args):
    from jaxclust.kmeans_rows import _block_rows  # the rows per assignment block k-means uses

    n, d, k = args.large_n, args.d, args.large_k
    gflop = 2 * n * k * d / 1e9
    print(f"\n## ImageNet scale: N={n} D={d} K={k}  ({gflop:.0f} GFLOP per assignment; input {n * d * 4 / 1e9:.2f} GB; "
          f"a dense N x K distance matrix would be {n * k * 4 / 1e9:.2f} GB)")
    print(f"s/iter = (t(max_iter=1+{args.large_iters}) - t(max_iter=1)) / {args.large_iters}, "
          f"median of {args.large_reps} run(s); each row a fresh process")
    head = (f"{'implementation':22s} {'chunk':>7s} {'s/iter':>7s} {'GFLOP/s':>8s} {'peak extra GB':>13s} "
            f"{'XLA temp GB':>11s} {'(N,K)-block GB':>14s} {'compile s':>9s}")
    print(head)
    print("-" * len(head))
    rows = []
    for chunk in args.large_chunks:
        r = _run_child("large_jax", args, ["--chunk_size", str(chunk)])
        rows.append(r)
        print(f"{'jaxclust':22s} {chunk:7d} {r['per_iter']:7.2f} {gflop / r['per_iter']:8.1f} {r['peak_extra_gb']:13.2f} "
              f"{r['xla_temp_gb']:11.2f} {_block_rows(chunk, k) * k * 4 / 1e9:14.3f} {r['compile_s_1'] + r[f'compile_s_{1 + args.large_iters}']:9.1f}"
              f"   t(1) {', '.join(f'{t:.1f}' for t in r['times_short'])} s; "
              f"t({1 + args.large_iters}) {', '.join(f'{t:.1f}' for t in r['times_long'])} s")
        sys.stdout.flush()
    if not args.no_faiss:
        f = _run_child("large_faiss", args)
        print(f"{'faiss (random init)':22s} {'-':>7s} {f['per_iter']:7.2f} {gflop / f['per_iter']:8.1f} "
              f"{f['peak_extra_gb']:13.2f} {'-':>11s} {'-':>14s} {'-':>9s}")
        for r in rows:
            print(f"jaxclust chunk {r['chunk']}: s/iter / faiss = {r['per_iter'] / f['per_iter']:.2f}")
    if not all(r["hwm_reset"] for r in rows):
        print("note: could not reset the peak-RSS mark; peak includes the set-up of the input.")
    print("peak extra = resident-set high-water mark during a call minus the resident set just before it "
          "(input already loaded), largest over the max_iter=1+M calls.")


# ----------------------------------------------------------------------------------------------


def add_xla_flag(flag: str):
    """Before jax is imported (and for the subprocesses of --large)."""
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def set_single_thread():
    """Before jax is imported: the process pinned to one core (XLA sizes its CPU thread pool from the
    cores it may run on, and otherwise runs independent ops in parallel), XLA's Eigen matmuls
    single-threaded, BLAS and OpenMP pools limited to 1."""
    from threads import pin_to_cores  # bench/threads.py

    pin_to_cores(1, flag="--single_thread", limit_pools=True)  # affinity and variables: inherited by --large's children
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # the BLAS and OpenMP libraries numpy/scipy/sklearn already loaded
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except ImportError:
        pass


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    p.add_argument("--ks", type=ints, default=[10, 200], help="numbers of clusters (comma-separated)")
    p.add_argument("--n", type=int, default=60_000)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--spread", type=float, default=3.0, help="noise norm relative to the unit cluster centre")
    p.add_argument("--restarts", type=int, default=3, help="k-means++ restarts (n_init / nredo)")
    p.add_argument("--iters", type=int, default=10, help="Lloyd iterations per restart (max_iter / niter)")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions (median reported)")
    p.add_argument("--chunk_size", type=int, default=32768,
                   help="jaxclust's most rows per assignment block (chunk_size; large K uses fewer, see kmeans_rows._block_rows)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_faiss", action="store_true", help="skip faiss (if faiss-cpu is not installed)")
    p.add_argument("--no_sklearn", action="store_true", help="skip scikit-learn")
    p.add_argument("--single_thread", action="store_true",
                   help="one thread for XLA, faiss (OpenMP), BLAS and scikit-learn: per-core comparison")
    p.add_argument("--large", action="store_true", help="also run the N=1.28M, K=1000 section")
    p.add_argument("--large_only", action="store_true", help="run only the N=1.28M, K=1000 section")
    p.add_argument("--large_n", type=int, default=1_281_167)  # ImageNet-1k train images
    p.add_argument("--large_k", type=int, default=1000)
    p.add_argument("--large_iters", type=int, default=4, help="M: extra iterations timed for s/iter")
    p.add_argument("--large_reps", type=int, default=2)
    p.add_argument("--large_chunks", type=ints, default=[4096, 32768],
                   help="chunk_size values compared (caps: at K=1000 both give 262-row blocks)")
    p.add_argument("--devices_only", action="store_true",
                   help="run only the restarts-over-devices section (row-sharded vs spread restarts)")
    p.add_argument("--fake_devices", type=int, default=0,
                   help="simulate this many CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count)")
    p.add_argument("--device_restarts", type=int, default=8, help="n_init of the devices section")
    p.add_argument("--official", action="store_true",
                   help="run only the section against the official torch_clustering.PyTorchKMeans (bench/kmeans_official.py)")
    p.add_argument("--official_path", default=None,
                   help="checkout holding torch_clustering/ (default $TORCH_CLUSTERING_PATH, ../torch_clustering, "
                        "../official/torch_clustering, else the Python path)")
    p.add_argument("--official_ks", type=ints, default=[10, 100, 1000], help="K of the --official section")
    p.add_argument("--official_n", type=int, default=20_000, help="N of the --official section")
    p.add_argument("--official_threads", type=ints, default=[1, 2], help="thread counts of the --official section")
    p.add_argument("--official_restarts", type=int, default=3, help="k-means++ restarts of the --official section")
    p.add_argument("--official_iters", type=int, default=30, help="max Lloyd iterations of the --official section")
    p.add_argument("--_child", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.iters < 2:
        p.error("--iters must be >= 2 (seconds per iteration come from the difference with 1 iteration)")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.official:  # its own processes, one per thread count
        from kmeans_official import official_section

        official_section(args)
        return
    if args.fake_devices:
        add_xla_flag(f"--xla_force_host_platform_device_count={args.fake_devices}")
    if args.single_thread:
        set_single_thread()
    if args._child:
        out = {"large_jax": child_large_jax, "large_faiss": child_large_faiss}[args._child](args)
        print(json.dumps(out))
        return
    import jax

    print(f"jax {jax.__version__} on {[str(dv) for dv in jax.devices()]}; {os.cpu_count()} CPU cores; "
          f"{platform.processor() or platform.machine()}")
    if not args.no_faiss:
        try:
            import faiss
        except ImportError:
            sys.exit("faiss is not installed: pip install -e '.[bench]' (faiss-cpu), or pass --no_faiss.")
        print(f"faiss {faiss.__version__} ({faiss.omp_get_max_threads()} OpenMP threads)")
    import sklearn
    from threadpoolctl import threadpool_info

    pools = ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info())
    print(f"scikit-learn {sklearn.__version__}; thread pools: {pools}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    if args.devices_only or jax.device_count() > 1:
        devices_section(args)
    if args.devices_only:
        return
    if not args.large_only:
        small_section(args)
    if args.large or args.large_only:
        large_section(args)


if __name__ == "__main__":
    main()
