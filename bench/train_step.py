"""ProPos training-step throughput (images/s) on whatever devices JAX sees, with baselines from the same run.

    python bench/train_step.py --config configs/propos_cifar10.py [--backbone resnet18] [--batch_size 64]
                               [--image_size 32] [--steps 10] [--reps 3]
    python bench/train_step.py --config configs/propos_digits.py --batch_size 128
    python bench/train_step.py --torch --threads 2 --config configs/propos_digits.py --image_size 28
    python bench/train_step.py --torch --threads 2 --backbone resnet18 --batch_size 64 --image_size 32

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

With `--torch`, the same run also times `bench/torch_step.py`, a PyTorch twin (CUDA when torch sees a GPU,
else the CPU) with the same networks (parameter counts checked equal), shapes, losses and optimiser:

- `PyTorch step, no augmentation`: the work of `step, no augmentation` (uint8 -> normalised views, mirror,
  target under no_grad, online + predictor on both views, alignment both ways, PSL at the weight and
  PSA noise jaxclust uses at these steps, backward, EMA, SGD momentum + weight decay);
- `PyTorch forward only (embed)`: the target network in eval mode under inference_mode, l2-normalised;

in its fastest memory layout (`--torch_memory_format auto` times both on a few steps and keeps the
faster), and prints the jaxclust / PyTorch ratios. `--threads N` pins the process to N cores before JAX
starts (XLA:CPU sizes its thread pool from the CPU affinity) and gives PyTorch torch.set_num_threads(N),
so both sides run on the same cores.

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
from jaxclust.models import count_params

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: threads.py here, torch_step.py with --torch
from threads import pin_to_cores  # noqa: E402


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
    p.add_argument("--convnet_widths", default=None, help="model.convnet_widths override, e.g. 32,64,128")
    p.add_argument("--torch", action="store_true", help="also time the same step and embedding in PyTorch")
    p.add_argument("--torch_memory_format", default="auto", choices=("auto", "channels_last", "contiguous"),
                   help="PyTorch's image and conv-weight layout (auto: the faster on a short probe)")
    p.add_argument("--torch_profile", action="store_true",
                   help="--torch, and print where the PyTorch CPU step's time goes (torch.profiler, per conv layer)")
    p.add_argument("--threads", type=int, default=0,
                   help="run on the first N cores only, both JAX (CPU affinity) and PyTorch (default: all)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    args.torch = args.torch or args.torch_profile
    cores = pin_to_cores(args.threads)
    cfg = load_config(args.config)
    if args.backbone:
        cfg.model.backbone = args.backbone
    if args.convnet_widths:
        try:
            cfg.model.convnet_widths = tuple(int(w) for w in args.convnet_widths.split(","))
        except ValueError:
            sys.exit(f"--convnet_widths must be comma-separated integers, e.g. 32,64,128; got {args.convnet_widths!r}.")
    if args.batch_size:
        cfg.train.batch_size = args.batch_size
    if args.image_size:
        cfg.data.image_size = args.image_size
    batch, size = cfg.train.batch_size, cfg.data.image_size
    channels = len(cfg.augment.mean)
    num = args.num_images or max(4 * batch, 1024)
    torch_step = import_torch_step(cfg, args.threads) if args.torch else None

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
    # what the PyTorch twin needs from the state, read before the steps donate it
    jax_param_count = count_params(state.params)
    pseudo_labels = np.asarray(jax.device_get(state.extra["pseudo_labels"])) if args.torch else None

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

    torch_results, torch_info = [], ""
    if torch_step is not None:
        torch_results, torch_info = time_torch(torch_step, cfg, run, batches, pseudo_labels, jax_param_count, args)

    base = results[0][2]
    print(f"\n## {cfg.model.backbone} batch {batch} {size}x{size}: median of {args.reps} rounds x {args.steps} steps")
    head = f"{'function':30s} {'compile s':>9s} {'images/s':>9s} {'ms/step':>8s} {'speed vs step':>13s}  rounds (images/s)"
    print(head)
    print("-" * len(head))
    for name, compile_s, rate, rates in results + torch_results:
        compiled = "-" if compile_s is None else f"{compile_s:.1f}"
        print(f"{name:30s} {compiled:>9s} {rate:9.1f} {1000 * batch / rate:8.1f} {rate / base:12.2f}x  "
              f"{', '.join(f'{r:.0f}' for r in rates)}")
    peaks = [d.memory_stats().get("peak_bytes_in_use") for d in devices if d.memory_stats()]
    if peaks and all(p is not None for p in peaks):
        print(f"peak device memory: {max(peaks) / 2**30:.2f} GiB (largest over devices)")
    losses = {k: float(v) for k, v in jax.device_get(losses).items()}
    print("last loss: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
    if torch_results:
        rates = {name: rate for name, _, rate, _ in results + torch_results}
        threads = f"{args.threads} threads" if args.threads else f"all {len(cores)} cores"
        print(f"\n## jaxclust / PyTorch, same work and shapes, {threads} (cores {cores}); {torch_info}")
        print("| network, batch, images | function | jaxclust ms/step | PyTorch ms/step | jaxclust / PyTorch |")
        print("|---|---|---|---|---|")
        shape = f"{network_name(cfg.model)}, {batch}, {size}x{size}x{channels}"
        for ours, theirs in (("step, no augmentation", "PyTorch step, no augmentation"),
                             ("forward only (embed)", "PyTorch forward only (embed)")):
            ms_ours, ms_theirs = 1000 * batch / rates[ours], 1000 * batch / rates[theirs]
            print(f"| {shape} | {ours} | {ms_ours:.1f} | {ms_theirs:.1f} | {ms_ours / ms_theirs:.2f} |")


def print_torch_profile(torch_step, model, step, images):
    """The PyTorch step's time by kind of op (torch.profiler, self time), then each conv layer of the
    online backbone timed alone: forward, input gradient, weight gradient, and their total per step
    (each conv runs forward 4 times, twice online and twice in the target, and backward twice; the
    first layer needs no input gradient)."""
    split = torch_step.profile_split(lambda: step(0))
    total = sum(ms for _, ms in split)
    print(f"\n## PyTorch step by kind of op (torch.profiler self time, {total:.0f} ms/step profiled)")
    for kind, ms in split:
        print(f"  {kind:38s} {ms:8.1f} ms  {100 * ms / total:5.1f}%")
    rows = torch_step.conv_layer_times(model, images)
    print("\n## PyTorch online-backbone convolutions, each op alone (median ms per call)")
    print(f"  {'layer':32s} {'input':>18s} {'out':>5s} {'forward':>8s} {'input grad':>10s} {'weight grad':>11s}")
    per_step = [0.0, 0.0, 0.0]
    for i, (name, shape, out, fwd, igrad, wgrad) in enumerate(rows):
        print(f"  {name:32s} {'x'.join(map(str, shape)):>18s} {out:5d} {fwd:8.2f} {igrad:10.2f} {wgrad:11.2f}")
        per_step[0] += 4 * fwd
        per_step[1] += 2 * igrad if i else 0.0
        per_step[2] += 2 * wgrad
    print(f"  per step (x4 forward, x2 backward): forward {per_step[0]:.0f} ms, input grad {per_step[1]:.0f} ms, "
          f"weight grad {per_step[2]:.0f} ms")


def network_name(model_cfg) -> str:
    if model_cfg.backbone == "convnet":
        return "ConvNet " + "-".join(str(w) for w in model_cfg.convnet_widths)
    return f"{model_cfg.backbone.replace('resnet', 'ResNet-')} {model_cfg.stem} stem"


def import_torch_step(cfg, threads: int):
    """bench/torch_step.py, after checking that torch imports and that the config is a step it mirrors."""
    try:
        import torch
    except ImportError:
        sys.exit("--torch needs PyTorch; install it with pip install -e '.[torch]' (the CPU build is enough).")
    if threads:
        torch.set_num_threads(threads)
    import torch_step  # bench/torch_step.py (bench/ is on sys.path, see the imports)

    try:
        torch_step.check_config(cfg)
    except ValueError as error:
        sys.exit(f"--torch: {error}")
    return torch_step


def time_torch(torch_step, cfg, run, batches, pseudo_labels, jax_param_count, args):
    """Rows (name, None, median images/s, rates) of the PyTorch step and embedding, and a line saying how
    PyTorch ran. The step takes the schedule values (lr, PSL weight, PSA sigma, EMA momentum) jaxclust's
    step uses at the same step count; during the warm-up PSL is still computed and back-propagated at
    weight 0, as in jaxclust."""
    import torch

    from jaxclust import optim

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")  # TF32 matmuls, as XLA's default precision on GPUs
    batch = cfg.train.batch_size
    steps_per_epoch = run.steps_per_epoch
    _, lr_fn = optim.make_optimizer(cfg.optim, steps_per_epoch, cfg.train.epochs, batch)
    total_steps = steps_per_epoch * cfg.train.epochs

    def schedule(step):
        after_warmup = float(step // steps_per_epoch >= cfg.optim.warmup_epochs)
        momentum = optim.ema_momentum(step + 1, cfg.method.ema_momentum, total_steps, cfg.method.ema_increase)
        return (float(lr_fn(step)), cfg.method.psl_weight * after_warmup, cfg.method.sigma * after_warmup,
                float(momentum))

    data = [(torch.from_numpy(np.array(images)).to(device),
             torch.from_numpy(pseudo_labels[np.asarray(indices)].astype(np.int64)).to(device))
            for images, indices in batches]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def build(memory_format):
        model = torch_step.ProPosTorch(cfg, len(cfg.augment.mean), device, memory_format == "channels_last")
        ours = model.count = torch_step.count_parameters(model.net, model.predictor)
        if ours != jax_param_count:
            sys.exit(f"the PyTorch networks have {ours:,} parameters, jaxclust's {jax_param_count:,}: not the same work.")
        return model

    def step(model, i):
        images, labels = data[i % len(data)]
        return model.step_on_images(images, labels, *schedule(i))[0]

    formats = ["channels_last", "contiguous"] if args.torch_memory_format == "auto" else [args.torch_memory_format]
    probes = {}
    for memory_format in formats:
        model = build(memory_format)
        if len(formats) == 1:
            break
        step(model, 0)  # warm-up
        sync()
        t0 = time.perf_counter()
        for i in range(3):
            loss = step(model, i + 1)
        loss.item()
        sync()
        probes[memory_format] = (time.perf_counter() - t0) / 3
    if probes:
        memory_format = min(probes, key=probes.get)
        print("  PyTorch layout probe (3 steps): " + ", ".join(f"{k} {1000 * v:.0f} ms/step" for k, v in probes.items())
              + f"; keeping {memory_format}")
        model = build(memory_format)
    print(f"  parameters: jaxclust {jax_param_count:,}, PyTorch {model.count:,}")

    def measure(name, fn):
        for i in range(2):  # warm-up
            fn(i)
        sync()
        rates = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            for i in range(args.steps):
                out = fn(i)
            out.sum().item()
            sync()
            rates.append(args.steps * batch / (time.perf_counter() - t0))
        print(f"  measured {name}: {statistics.median(rates):.1f} images/s", flush=True)
        return name, None, statistics.median(rates), rates

    rows = [measure("PyTorch step, no augmentation", lambda i: step(model, i)),
            measure("PyTorch forward only (embed)", lambda i: model.embed(data[i % len(data)][0]))]
    if args.torch_profile and device == "cuda":
        print("  --torch_profile splits the CPU step only (self CPU time of each op); skipped on CUDA.")
    elif args.torch_profile:
        print_torch_profile(torch_step, model, lambda i: step(model, i), data[0][0])
    info = (f"PyTorch {torch.__version__} on {device} ({torch.get_num_threads()} threads), {memory_format}, "
            f"SGD {model.optimizer_kind}, eager")
    return rows, info


if __name__ == "__main__":
    main()
