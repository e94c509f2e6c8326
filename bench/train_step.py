"""ProPos training-step throughput (images/s) on whatever devices JAX sees, with baselines from the same run.

    python bench/train_step.py --config configs/propos_cifar10.py [--backbone resnet18] [--batch_size 64]
                               [--image_size 32] [--steps 10] [--reps 3]
    python bench/train_step.py --config configs/propos_digits.py --batch_size 128

It builds the real training run (`jaxclust.trainer.Run`) from the config, on a synthetic uint8 image bank
written to a temporary npz file (random pixels of the configured size and channels: the work of a step
does not depend on the pixel values), and times, one after the other on the same state:

- `train step`: the jitted step the training loop runs (`Run.step`, on a batch the feeder gathered from the on-device
  bank, two augmented views, ProPos loss, gradients, SGD, EMA), the number to report;
- `step, no augmentation`: the same method step fed the deterministic test-time transform as view 1 and
  its mirror image as view 2 (two distinct inputs, so XLA cannot merge the two views' forward passes):
  what the step costs when augmentation is free;
- `augmentation only`: the two augmented views of a batch, jitted alone;
- `forward only`: the target network's eval-mode embedding of a batch (`Run.embed`, what the E-step runs).

Images/s counts each image of the batch once (its two views are not counted twice). Printed: the devices,
compile time of each function (lowering + XLA compilation), steady-state images/s (median over `--reps`
timed rounds of `--steps` steps each, after two warm-up steps) and each row's speed relative to the train
step; on GPU also the peak device memory.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jaxclust.config import ConfigError, load_config_file


def load_config(path: str):
    try:
        return load_config_file(path)
    except ConfigError as e:
        sys.exit(f"cannot read the config file: {e}")


def write_bank(path: Path, num: int, size: int, channels: int, classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(num, size, size, channels), dtype=np.uint8)
    labels = rng.integers(0, classes, size=num).astype(np.int32)
    np.savez(path, images=images, labels=labels)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/propos_cifar10.py", help="a configs/*.py file")
    p.add_argument("--backbone", default=None, help="model.backbone override: resnet18 | resnet34 | resnet50 | convnet")
    p.add_argument("--batch_size", type=int, default=None, help="global batch (default: the config's)")
    p.add_argument("--image_size", type=int, default=None, help="side of the images (default: the config's)")
    p.add_argument("--steps", type=int, default=10, help="steps per timed round")
    p.add_argument("--reps", type=int, default=3, help="timed rounds (median reported)")
    p.add_argument("--num_images", type=int, default=0, help="bank size (default: 4 batches, at least 1024)")
    return p.parse_args(argv)


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
    channels = len(cfg.augment.mean)
    num = args.num_images or max(4 * batch, 1024)

    import jax
    import jax.numpy as jnp

    from jaxclust.data.augment import eval_batch
    from jaxclust.trainer import Run, two_views

    devices = jax.devices()
    print(f"jax {jax.__version__}; {len(devices)} device(s): "
          f"{', '.join(sorted({f'{d.platform}:{d.device_kind}' for d in devices}))} {[str(d) for d in devices]}")
    print(f"config {args.config}: {cfg.method.name}, backbone {cfg.model.backbone} (stem {cfg.model.stem}), "
          f"global batch {batch}, {size}x{size}x{channels} images, forward {cfg.method.get('forward', '-')}")

    with tempfile.TemporaryDirectory() as tmp:
        bank_path = Path(tmp) / "synthetic.npz"
        write_bank(bank_path, num, size, channels, max(cfg.cluster.num_clusters, 2), cfg.seed)
        cfg.data.source, cfg.data.path, cfg.data.name = "npz", str(bank_path), "synthetic"
        cfg.data.channels, cfg.data.imbalance_ratio, cfg.data.streaming = 0, 1.0, False
        run = Run(cfg, Path(tmp))  # loads the bank into memory
    state = run.init_state()

    rng = np.random.default_rng(0)
    # (images, indices) global arrays: the batches the loop's feeder gathers from the on-device bank
    batches = [run.feeder.batch(rng.choice(num, batch, replace=False)) for _ in range(4)]
    keys = [jax.random.fold_in(run.train_key, i) for i in range(4)]
    aug, views, method = run.aug, run.views, run.method

    @jax.jit
    def augment_only(images, indices, key):
        return two_views(key, images, indices, views, size)

    def step_no_aug(state, images, indices, key):
        x = eval_batch(images, aug, size)
        # view 2: the same images mirrored (per image, no cross-device traffic), so XLA cannot merge
        # the two views' passes as it would for two identical inputs
        return method.train_step(state, x, jnp.flip(x, axis=2), indices, key)

    step_no_aug = jax.jit(step_no_aug, donate_argnums=0)

    # name, jitted function, its arguments for step i; functions that take the state return (state, metrics)
    cases = [
        ("train step", run.step, lambda i: (state, *batches[i % 4], keys[i % 4])),
        ("step, no augmentation", step_no_aug, lambda i: (state, *batches[i % 4], keys[i % 4])),
        ("augmentation only", augment_only, lambda i: (*batches[i % 4], keys[i % 4])),
        ("forward only (embed)", run.embed, lambda i: (state, batches[i % 4][0])),
    ]
    results, losses = [], {}
    for name, fn, arguments in cases:
        threads_state = fn in (run.step, step_no_aug)
        t0 = time.perf_counter()
        compiled = fn.lower(*arguments(0)).compile()
        compile_s = time.perf_counter() - t0

        def go(i):
            nonlocal state
            out = compiled(*arguments(i))
            if threads_state:  # the step donates the old state; carry the new one
                state, out = out
                losses[name] = out["loss"]
            return out

        for i in range(2):  # warm-up
            jax.block_until_ready(go(i))
        rates = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            for i in range(args.steps):
                out = go(i)
            jax.block_until_ready((out, state))
            rates.append(args.steps * batch / (time.perf_counter() - t0))
        results.append((name, compile_s, statistics.median(rates), rates))
        print(f"  measured {name}: {statistics.median(rates):.1f} images/s", flush=True)

    base = results[0][2]
    print(f"\n## {cfg.model.backbone} batch {batch} {size}x{size}: median of {args.reps} rounds x {args.steps} steps")
    head = f"{'function':24s} {'compile s':>9s} {'images/s':>9s} {'ms/step':>8s} {'speed vs step':>13s}  rounds (images/s)"
    print(head)
    print("-" * len(head))
    for name, compile_s, rate, rates in results:
        print(f"{name:24s} {compile_s:9.1f} {rate:9.1f} {1000 * batch / rate:8.1f} {rate / base:12.2f}x  "
              f"{', '.join(f'{r:.0f}' for r in rates)}")
    peaks = [d.memory_stats().get("peak_bytes_in_use") for d in devices if d.memory_stats()]
    if peaks and all(p is not None for p in peaks):
        print(f"peak device memory: {max(peaks) / 2**30:.2f} GiB (largest over devices)")
    losses = {k: float(v) for k, v in jax.device_get(losses).items()}
    print("last loss: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))


if __name__ == "__main__":
    main()
