"""Two-view augmentation throughput: jaxclust's on-device pipeline vs the tf.data host pipeline a user
would otherwise write, measured in the same run on the same images.

    python bench/augment.py [--batch 512] [--size 32] [--steps 20]

Both sides do, per image and per view, the ProPos CIFAR recipe: RandomResizedCrop(scale 0.08-1, ratio
3/4-4/3), horizontal flip 0.5, ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8 in a random order,
RandomGrayscale 0.2, normalisation; from a uint8 bank, batches gathered by index.
- jaxclust: `jaxclust.trainer.two_views` inside one jitted function (the way the training step runs it),
  on JAX's default device.
- tf.data: `tf.image` ops mapped in parallel (AUTOTUNE) with SimCLR's random-order jitter, batched and
  prefetched; the images/s a host pipeline delivers to the accelerator.
- PyTorch: the pipeline a PyTorch user runs: a torch Dataset whose items are two views of an image,
  batched by a DataLoader with `--workers` worker processes (default: one per core), the transforms
  chosen by `--torch_transforms`: `v1_pil` (default: the official ProPos code's torchvision.transforms
  on PIL images, and the fastest of the three on a 2-core CPU at 32x32, batch 512, 2 workers: 2,500-2,655
  images/s against 2,308-2,490 and 1,912-1,933, torch 2.14.1 / torchvision 0.29.1), `v2_pil` or
  `v2_tensor` (torchvision.transforms.v2 on PIL images or on uint8 tensors). Skipped, with one
  sentence, where torch or torchvision does not import.
Prints one line per pipeline (images/s, counting each image once for its two views) and the ratios.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def bench_jax(bank: np.ndarray, batch: int, size: int, steps: int) -> float:
    import jax

    from jaxclust.config import base_config
    from jaxclust.data.augment import view_configs
    from jaxclust.trainer import two_views

    views = view_configs(base_config().augment)  # the official CIFAR-10 train transform, both views
    images = jax.device_put(bank)
    n = len(bank)

    @jax.jit
    def step(key, i):
        idx = jax.random.randint(jax.random.fold_in(key, i), (batch,), 0, n)
        # the views themselves, as the host pipelines deliver them (a sum to keep them alive would
        # cost XLA:CPU about a quarter of the augmentation's own time)
        return two_views(jax.random.fold_in(key, i), images[idx], idx, views, size)

    key = jax.random.key(0)
    jax.block_until_ready(step(key, 0))  # compile
    t0 = time.perf_counter()
    for i in range(steps):
        out = step(key, i + 1)
    jax.block_until_ready(out)
    return steps * batch / (time.perf_counter() - t0)


def bench_tf(bank: np.ndarray, batch: int, size: int, steps: int) -> float:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    mean = tf.constant([0.4914, 0.4822, 0.4465])
    std = tf.constant([0.2023, 0.1994, 0.2010])

    def jitter(x):
        ops = [
            lambda x: x * tf.random.uniform([], 0.6, 1.4),
            lambda x: tf.image.adjust_contrast(x, tf.random.uniform([], 0.6, 1.4)),
            lambda x: tf.image.adjust_saturation(x, tf.random.uniform([], 0.6, 1.4)),
            lambda x: tf.image.adjust_hue(x, tf.random.uniform([], -0.1, 0.1)),
        ]
        order = tf.random.shuffle(tf.range(4))  # SimCLR's random order
        for i in range(4):
            x = tf.clip_by_value(tf.switch_case(order[i], [lambda f=f, x=x: f(x) for f in ops]), 0.0, 1.0)
        return x

    def view(image):
        begin, crop_size, _ = tf.image.sample_distorted_bounding_box(
            tf.shape(image), tf.zeros([1, 0, 4]), area_range=(0.08, 1.0), aspect_ratio_range=(3 / 4, 4 / 3),
            max_attempts=10, use_image_if_no_bounding_boxes=True)
        x = tf.slice(image, begin, crop_size)
        x = tf.image.resize(tf.cast(x, tf.float32) / 255.0, (size, size), antialias=True)
        x = tf.image.random_flip_left_right(x)
        x = tf.cond(tf.random.uniform([]) < 0.8, lambda: jitter(x), lambda: x)
        x = tf.cond(tf.random.uniform([]) < 0.2, lambda: tf.tile(tf.image.rgb_to_grayscale(x), [1, 1, 3]), lambda: x)
        return (x - mean) / std

    ds = tf.data.Dataset.from_tensor_slices(bank).repeat().shuffle(4096)
    ds = ds.map(lambda im: (view(im), view(im)), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    it = iter(ds)
    next(it)  # start the pipeline
    t0 = time.perf_counter()
    for _ in range(steps):
        v1, v2 = next(it)
    return steps * batch / (time.perf_counter() - t0)


CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


class TwoViewDataset:
    """A torch map-style dataset: item i is the two augmented views of bank image i (uint8 HWC), the
    image handed to `transform` as a PIL image or, with `tensor_input`, as a uint8 CHW tensor."""

    def __init__(self, bank: np.ndarray, transform, tensor_input: bool):
        self.bank, self.transform, self.tensor_input = bank, transform, tensor_input

    def __len__(self):
        return len(self.bank)

    def __getitem__(self, i):
        if self.tensor_input:
            import torch

            image = torch.from_numpy(self.bank[i]).permute(2, 0, 1)
        else:
            from PIL import Image

            image = Image.fromarray(self.bank[i])
        return self.transform(image), self.transform(image)


TORCH_TRANSFORMS = ("v1_pil", "v2_pil", "v2_tensor")


def torchvision_recipe(kind: str, size: int):
    """The CIFAR two-view recipe in torchvision: `kind` is one of TORCH_TRANSFORMS."""
    import torch
    from torchvision import transforms as v1
    from torchvision.transforms import v2

    t = v1 if kind == "v1_pil" else v2
    ops = [
        t.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
        t.RandomHorizontalFlip(),
        t.RandomApply([t.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        t.RandomGrayscale(p=0.2),
    ]
    if kind == "v1_pil":
        ops.append(v1.ToTensor())
    else:
        ops += ([v2.ToImage()] if kind == "v2_pil" else []) + [v2.ToDtype(torch.float32, scale=True)]
    return t.Compose(ops + [t.Normalize(CIFAR10_MEAN, CIFAR10_STD)])


def torchvision_missing() -> str | None:
    """None when torch and torchvision import, else one sentence saying what to install."""
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except Exception as error:  # a torchvision built for another torch fails with errors other than ImportError
        return (f"skipped: torchvision does not import here ({type(error).__name__}: {str(error).splitlines()[0]}); "
                "install a matching pair, e.g. pip install torch==2.14.1 torchvision==0.29.1, to measure it.")
    return None


def bench_torch(bank: np.ndarray, batch: int, size: int, steps: int, workers: int, kind: str) -> float:
    import torch

    dataset = TwoViewDataset(bank, torchvision_recipe(kind, size), tensor_input=kind == "v2_tensor")
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=batch * (steps + 1))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers,
                                         drop_last=True, persistent_workers=False)
    it = iter(loader)
    next(it)  # start the workers
    t0 = time.perf_counter()
    for _ in range(steps):
        next(it)
    rate = steps * batch / (time.perf_counter() - t0)
    del it  # ends the worker processes before the next pipeline runs
    return rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--size", type=int, default=32, help="stored and output image side")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--images", type=int, default=8192, help="images in the bank")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="PyTorch DataLoader worker processes")
    parser.add_argument("--torch_transforms", default="v1_pil", choices=TORCH_TRANSFORMS,
                        help="torchvision's API and image type for the PyTorch row")
    args = parser.parse_args()
    bank = np.random.RandomState(0).randint(0, 256, (args.images, args.size, args.size, 3)).astype(np.uint8)

    # PyTorch first: its DataLoader forks workers, which is safe before JAX and TensorFlow start their threads
    missing = torchvision_missing()
    torch_rate = None if missing else bench_torch(bank, args.batch, args.size, args.steps, args.workers,
                                                  args.torch_transforms)

    import jax

    device = jax.devices()[0]
    on_device = bench_jax(bank, args.batch, args.size, args.steps)
    host, tf_missing = None, None
    try:
        host = bench_tf(bank, args.batch, args.size, args.steps)
    except ImportError as error:
        host, tf_missing = None, f"skipped: TensorFlow does not import here ({error}); pip install -e '.[data]'."
    print(f"two-view augmentation, batch {args.batch}, {args.size}x{args.size}, {os.cpu_count()} CPU cores")
    rows = [(f"jaxclust on-device ({device.platform})", f"{on_device:10.0f} images/s")]
    rows.append(("tf.data + tf.image (host, AUTOTUNE)", tf_missing if host is None else f"{host:10.0f} images/s"))
    if torch_rate is None:
        rows.append((f"torchvision + DataLoader ({args.workers} workers)", missing))
    else:
        import torch
        import torchvision

        rows.append((f"torchvision {args.torch_transforms} + DataLoader ({args.workers} workers)",
                     f"{torch_rate:10.0f} images/s (torch {torch.__version__}, torchvision {torchvision.__version__})"))
    for label, value in rows:
        print(f"  {label + ':':48s}{value}")
    if host is not None:
        print(f"  ratio jaxclust / tf.data: {on_device / host:.2f}")
    if torch_rate is not None:
        print(f"  ratio jaxclust / torchvision DataLoader: {on_device / torch_rate:.2f}")


if __name__ == "__main__":
    main()
