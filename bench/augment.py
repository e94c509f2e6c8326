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
Prints one line per pipeline (images/s, counting each image once for its two views) and the ratio.
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
        v1, v2 = two_views(jax.random.fold_in(key, i), images[idx], idx, views, size)
        return v1.sum() + v2.sum()  # keeps the views alive without copying them to the host

    key = jax.random.key(0)
    step(key, 0).block_until_ready()  # compile
    t0 = time.perf_counter()
    for i in range(steps):
        out = step(key, i + 1)
    out.block_until_ready()
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--size", type=int, default=32, help="stored and output image side")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--images", type=int, default=8192, help="images in the bank")
    args = parser.parse_args()
    bank = np.random.RandomState(0).randint(0, 256, (args.images, args.size, args.size, 3)).astype(np.uint8)

    import jax

    device = jax.devices()[0]
    on_device = bench_jax(bank, args.batch, args.size, args.steps)
    host = bench_tf(bank, args.batch, args.size, args.steps)
    print(f"two-view augmentation, batch {args.batch}, {args.size}x{args.size}, {os.cpu_count()} CPU cores")
    print(f"  jaxclust on-device ({device.platform}): {on_device:10.0f} images/s")
    print(f"  tf.data + tf.image (host, AUTOTUNE):   {host:10.0f} images/s")
    print(f"  ratio jaxclust / tf.data: {on_device / host:.2f}")


if __name__ == "__main__":
    main()
