"""Pinning a benchmark process to its first N cores: the one helper of the bench scripts that do it
(bench/train_step.py --threads, bench/kmeans_official.py's children, bench/kmeans.py --single_thread)."""
from __future__ import annotations

import os
import sys

POOL_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
SINGLE_THREAD_EIGEN = "--xla_cpu_multi_thread_eigen=false"


def pin_to_cores(threads: int, flag: str = "--threads", limit_pools: bool = False) -> list[int]:
    """Restricts this process, and the processes it starts later, to the first `threads` of the cores it
    may use (sched_setaffinity, as `taskset`). Returns the cores kept; `threads` = 0 leaves everything as
    it is and returns all the allowed cores.

    Must run before jax and torch start: XLA:CPU sizes its intra-op thread pool from the CPU affinity when
    its CPU client starts (a note is printed if it already has), and OpenMP / BLAS read their variables
    when they load. `limit_pools` also sets OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS to
    `threads` and, for one thread, XLA's --xla_cpu_multi_thread_eigen=false (XLA_FLAGS), so that XLA's
    Eigen matmuls run on the calling thread.

    `flag` names the command-line option that asked for `threads`, in the messages: more threads than
    allowed cores exits (SystemExit) with `flag {threads} asks for {threads} cores, ...`.
    """
    cores = sorted(os.sched_getaffinity(0))
    if threads < 0 or threads > len(cores):
        raise SystemExit(f"{flag} {threads} asks for {threads} cores, this process may use {len(cores)}.")
    if not threads:
        return cores
    if "jax" in sys.modules:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            print(f"note: JAX had started before {flag} {threads}: XLA:CPU keeps the thread pool it sized then")
    cores = cores[:threads]
    os.sched_setaffinity(0, cores)
    if limit_pools:
        for var in POOL_VARS:
            os.environ[var] = str(threads)
        flags = os.environ.get("XLA_FLAGS", "")
        if threads == 1 and SINGLE_THREAD_EIGEN not in flags.split():
            os.environ["XLA_FLAGS"] = f"{flags} {SINGLE_THREAD_EIGEN}".strip()
    return cores
