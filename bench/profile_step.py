"""Where the time of a training step goes on XLA:CPU (or any backend): per-op times from jax.profiler,
summed by kind of work.

    python bench/profile_step.py --config configs/propos_digits.py --backbone convnet --batch_size 128 --image_size 28
    python bench/profile_step.py --config configs/propos_cifar10.py --backbone resnet18 --batch_size 64 --image_size 32

It builds the real training run the way `bench/train_step.py` does (synthetic bank of the configured
size), jits the method's step without augmentation (view 1 the test-time transform, view 2 its mirror
image) and traces `--steps` executions with `jax.profiler`. XLA:CPU reports one event per executed
kernel (thunk) when `--xla_cpu_enable_xprof_traceme=true` is in XLA_FLAGS (this script adds it before
importing jax); each event is matched to its instruction in the compiled HLO and put in one group:

- `conv forward`, `conv input-grad`, `conv weight-grad`: the convolutions (forward = no `transpose(` in
  the op name; weight-grad = a convolution whose output has the shape of a kernel of the network);
- `layout transposes/copies`: transpose and copy fusions XLA inserts (mostly the activations and
  gradients re-laid out for the weight-gradient convolutions);
- `BatchNorm + ReLU (network elementwise)`: the other kernels whose op names lie inside the networks;
- `dense (heads, losses)`: dot products;
- `optimiser, EMA, losses, other`: the rest (the parameter, momentum and target updates, the loss
  arithmetic, the label gather).

Times are summed over the threads XLA runs kernels on, so with 2 threads the groups add up to up to
twice the wall time of a step; the shares are what matters. Printed: wall ms/step, the groups with
their share, and the `--top` most expensive kernels with their HLO. Needs a jaxlib that ships
`jax._src.lib._profile_data` (jaxlib >= 0.4.30).
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_xprof_traceme=true").strip()

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import load_config, write_bank  # noqa: E402

GROUPS = ("conv forward", "conv input-grad", "conv weight-grad", "layout transposes/copies",
          "BatchNorm + ReLU (network elementwise)", "dense (heads, losses)", "optimiser, EMA, losses, other")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/propos_digits.py")
    p.add_argument("--backbone", default=None)
    p.add_argument("--batch_size", type=int, default=None)
    p.add_argument("--image_size", type=int, default=None)
    p.add_argument("--steps", type=int, default=3, help="traced steps (times are averaged over them)")
    p.add_argument("--top", type=int, default=15, help="most expensive kernels listed")
    return p.parse_args(argv)


def hlo_instructions(hlo_text: str) -> tuple[dict, dict]:
    """(instruction name -> its HLO line, computation name -> its body lines) of an optimised module."""
    lines, bodies, current = {}, {}, None
    for line in hlo_text.splitlines():
        if line and not line.startswith(" ") and line.rstrip().endswith("{"):
            current = line.split()[1 if line.startswith("ENTRY") else 0].lstrip("%")
            bodies[current] = []
            continue
        m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = ", line)
        if m:
            lines[m.group(1)] = line.strip()
            if current:
                bodies[current].append(line.strip())
    return lines, bodies


def shape_of(line: str) -> tuple[int, ...]:
    m = re.search(r"= f32\[([\d,]*)\]", line)
    return tuple(int(v) for v in m.group(1).split(",") if v) if m else ()


def classify(name: str, lines: dict, bodies: dict, kernel_shapes: set) -> str:
    """The group of the kernel `name` (an instruction of the entry computation, or a fusion)."""
    line = lines.get(name, "")
    called = re.search(r"calls=%?([\w.\-]+)", line)
    inner = bodies.get(called.group(1), []) if called else []
    conv = next((x for x in [line, *inner] if " convolution(" in x), None)
    if conv is not None:
        if tuple(sorted(shape_of(conv))) in kernel_shapes:
            return "conv weight-grad"
        op_name = re.search(r'op_name="([^"]*)"', conv) or re.search(r'op_name="([^"]*)"', line)
        return "conv input-grad" if op_name and "transpose(" in op_name.group(1) else "conv forward"
    if re.match(r"(transpose|copy)", name) or re.match(r"wrapped_(transpose|copy)", name):
        return "layout transposes/copies"
    if any(" dot(" in x for x in [line, *inner]):
        return "dense (heads, losses)"
    op_name = " ".join(re.findall(r'op_name="([^"]*)"', " ".join([line, *inner])))
    if re.search(r"backbone|projector|predictor|/bn|BatchNorm|Conv", op_name):
        return "BatchNorm + ReLU (network elementwise)"
    return "optimiser, EMA, losses, other"


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    if args.backbone:
        cfg.model.backbone = args.backbone
    if args.batch_size:
        cfg.train.batch_size = args.batch_size
    if args.image_size:
        cfg.data.image_size = args.image_size
    batch, size = cfg.train.batch_size, cfg.data.image_size

    import jax
    import jax.numpy as jnp

    try:
        from jax._src.lib import _profile_data
    except ImportError:
        sys.exit("this jaxlib has no jax._src.lib._profile_data to read profiles with; install jaxlib >= 0.4.30.")
    from jaxclust.data.augment import eval_batch
    from jaxclust.trainer import Run

    with tempfile.TemporaryDirectory() as tmp:
        bank = Path(tmp) / "synthetic.npz"
        write_bank(bank, max(4 * batch, 256), size, len(cfg.augment.mean), max(cfg.cluster.num_clusters, 2), 0)
        cfg.data.source, cfg.data.path, cfg.data.name = "npz", str(bank), "synthetic"
        cfg.data.channels, cfg.data.imbalance_ratio, cfg.data.streaming = 0, 1.0, False
        run = Run(cfg, Path(tmp))
    state = run.init_state()
    images, indices = run.feeder.batch(np.arange(batch))
    x = eval_batch(images, run.aug, size)
    inputs = (x, jnp.flip(x, axis=2), indices, jax.random.PRNGKey(0))
    step = jax.jit(run.method.train_step).lower(state, *inputs).compile()
    kernel_shapes = {tuple(sorted(p.shape)) for p in jax.tree.leaves(state.params) if p.ndim == 4}

    for _ in range(2):  # warm-up
        jax.block_until_ready(step(state, *inputs))
    t0 = time.perf_counter()
    for _ in range(args.steps):
        jax.block_until_ready(step(state, *inputs))
    wall_ms = 1000 * (time.perf_counter() - t0) / args.steps

    trace_dir = tempfile.mkdtemp()
    with jax.profiler.trace(trace_dir):
        for _ in range(args.steps):
            jax.block_until_ready(step(state, *inputs))
    trace = next(Path(trace_dir).rglob("*.xplane.pb"))
    per_kernel = collections.Counter()
    for plane in _profile_data.ProfileData.from_file(str(trace)).planes:
        for line in plane.lines:
            for event in line.events:
                if not event.name.startswith(("ThunkExecutor", "end:", "SlinkyThreadPool")):
                    per_kernel[event.name] += event.duration_ns / 1e6 / args.steps
    lines, bodies = hlo_instructions(step.as_text())
    per_kernel = collections.Counter({k: v for k, v in per_kernel.items() if k in lines})
    if not per_kernel:
        sys.exit("the profile holds no per-kernel events (this backend does not report them to jax.profiler).")
    groups = collections.Counter()
    for name, ms in per_kernel.items():
        groups[classify(name, lines, bodies, kernel_shapes)] += ms
    total = sum(groups.values())

    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}; {cfg.method.name}, {cfg.model.backbone}, "
          f"batch {batch}, {size}x{size}x{len(cfg.augment.mean)}, forward {cfg.method.get('forward', '-')}")
    print(f"wall {wall_ms:.1f} ms/step; kernels {total:.1f} ms/step summed over threads\n")
    print(f"{'group':40s} {'ms/step':>8s} {'share':>6s}")
    for group in GROUPS:
        print(f"{group:40s} {groups[group]:8.1f} {100 * groups[group] / total:5.1f}%")
    print(f"\nthe {args.top} most expensive kernels:")
    for name, ms in per_kernel.most_common(args.top):
        line = re.sub(r",? metadata=\{.*?\}", "", lines[name])
        called = re.search(r"calls=%?([\w.\-]+)", line)
        inner = next((x for x in bodies.get(called.group(1), []) if " convolution(" in x or " dot(" in x), "") \
            if called else ""
        what = re.sub(r",? metadata=\{.*?\}", "", inner or line)
        print(f"{ms:7.1f} ms  {classify(name, lines, bodies, kernel_shapes):26s} {what[:150]}")


if __name__ == "__main__":
    main()
