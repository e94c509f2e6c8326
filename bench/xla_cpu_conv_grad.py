"""Stand-alone reproduction: on XLA:CPU a convolution's weight gradient costs 3-4x its forward pass,
where PyTorch's CPU convolution (oneDNN) does it in about the time of the forward. Only jax and numpy
(torch optional, for the comparison row); no jaxclust import, so it can be attached to an upstream report.

    python bench/xla_cpu_conv_grad.py [--batch 256] [--threads 2] [--reps 7] [--no_torch]

For each 3x3 convolution of a small ConvNet on 28x28 inputs and of a ResNet-18 on 32x32 (NHWC/HWIO,
padding 1, float32, as flax and jaxclust lay them out), it times separately jitted functions:
forward, input gradient and weight gradient (`jax.vjp` with respect to one operand), the median of
`--reps` calls after one warm-up, interleaved so machine noise hits every column alike. The torch row
times `conv2d` and `aten.convolution_backward` for the input and the weight on the same shapes
(NCHW, torch's native layout). `dw/fwd` is the weight gradient's time over the forward's.

What the optimised HLO shows (`jax.jit(f).lower(...).compile().as_text()`): XLA:CPU computes the
weight gradient as a convolution with the batch as the contracted feature dimension
(`window={size=HxW}`, `dim_labels=b01f_01io->b01f`, `rhs_dilate` for strided layers), preceded by
`transpose_copy_fusion`s that re-lay out the activations and the output gradient; both are slow.
XLA flags tried, none of which changes it: `xla_cpu_use_onednn`, `xla_cpu_use_xnnpack=false`; and
writing the weight gradient as patch matmuls (im2col, per-tap dots, channel-major taps) was not
faster overall (see the README's benchmark section).
"""
from __future__ import annotations

import argparse
import os
import time

LAYERS = {  # (name, input side, in channels, out channels, stride)
    "convnet 28x28": [("s1 1->32", 28, 1, 32, 1), ("s1 32->32", 28, 32, 32, 1), ("s2 32->64", 28, 32, 64, 2),
                      ("s1 64->64", 14, 64, 64, 1), ("s2 64->128", 14, 64, 128, 2), ("s1 128->128", 7, 128, 128, 1)],
    "resnet18 32x32": [("s1 64->64", 32, 64, 64, 1), ("s2 64->128", 32, 64, 128, 2), ("s1 128->128", 16, 128, 128, 1),
                       ("s2 128->256", 16, 128, 256, 2), ("s1 256->256", 8, 256, 256, 1),
                       ("s2 256->512", 8, 256, 512, 2), ("s1 512->512", 4, 512, 512, 1)],
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: os.cpu_count())")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--no_torch", action="store_true")
    p.add_argument("--nets", default=",".join(LAYERS), help="comma-separated: " + ", ".join(LAYERS))
    args = p.parse_args(argv)

    import jax
    import numpy as np

    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads or os.cpu_count())
        except ImportError:
            print("torch is not importable: the PyTorch columns are left out (pip install torch).")
    dims = ("NHWC", "HWIO", "NHWC")

    def conv(x, w, s):
        return jax.lax.conv_general_dilated(x, w, (s, s), ((1, 1), (1, 1)), dimension_numbers=dims)

    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}"
          + (f"; torch {torch.__version__}, {torch.get_num_threads()} threads" if torch else "")
          + f"; batch {args.batch}; ms, median of {args.reps}")
    head = f"{'layer':28s} {'fwd':>7s} {'dx':>7s} {'dw':>7s} {'dw/fwd':>6s}"
    if torch:
        head += f" | {'torch fwd':>9s} {'dx':>7s} {'dw':>7s} {'dw/fwd':>6s} | {'jax dw / torch dw':>17s}"
    print(head)
    rng = np.random.default_rng(0)
    for net in args.nets.split(","):
        totals = np.zeros(6)
        for name, side, cin, cout, s in LAYERS[net]:
            x = rng.standard_normal((args.batch, side, side, cin), dtype=np.float32)
            w = (rng.standard_normal((3, 3, cin, cout), dtype=np.float32) * 0.1).astype(np.float32)
            g = np.asarray(conv(x, w, s))
            fns = [
                jax.jit(lambda x, w, g: conv(x, w, s)),
                jax.jit(lambda x, w, g: jax.vjp(lambda x: conv(x, w, s), x)[1](g)[0]),
                jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w, s), w)[1](g)[0]),
            ]
            calls = [lambda f=f: jax.block_until_ready(f(x, w, g)) for f in fns]
            if torch:
                tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
                tw = torch.from_numpy(w.transpose(3, 2, 0, 1).copy())
                tg = torch.from_numpy(g.transpose(0, 3, 1, 2).copy())

                def backward(mask, tx=tx, tw=tw, tg=tg, s=s):
                    return torch.ops.aten.convolution_backward(
                        tg, tx, tw, None, [s, s], [1, 1], [1, 1], False, [0, 0], 1, mask)

                def forward(tx=tx, tw=tw, s=s):
                    with torch.no_grad():
                        return torch.nn.functional.conv2d(tx, tw, stride=s, padding=1)

                calls += [forward, lambda: backward([True, False, False]), lambda: backward([False, True, False])]
            times = [[] for _ in calls]
            for c in calls:  # warm-up (compilation)
                c()
            for _ in range(args.reps):
                for i, c in enumerate(calls):
                    t0 = time.perf_counter()
                    c()
                    times[i].append(1000 * (time.perf_counter() - t0))
            ms = [float(np.median(t)) for t in times]
            totals[:len(ms)] += ms
            print(_row(f"{net} {name}", ms))
        print(_row(f"{net} all layers", list(totals[:len(ms)])))


def _row(label, ms):
    row = f"{label:28s} {ms[0]:7.1f} {ms[1]:7.1f} {ms[2]:7.1f} {ms[2] / ms[0]:6.1f}"
    if len(ms) > 3:
        row += f" | {ms[3]:9.1f} {ms[4]:7.1f} {ms[5]:7.1f} {ms[5] / ms[3]:6.1f} | {ms[2] / ms[5]:17.1f}"
    return row


if __name__ == "__main__":
    main()
