"""Step-by-step comparison of jaxclust's ProPos with the official PyTorch code.

    pip install -e . torch==2.13.0 && pip install --no-deps torchvision munkres matplotlib
    git clone https://github.com/Hzzone/ProPos && git clone https://github.com/Hzzone/torch_clustering
    python launch/compare_official.py --official_repo=ProPos --torch_clustering=torch_clustering

For each setting (`jaxclust.methods.propos_parity.SETTINGS`: forward v1 with constant EMA, forward v2 with the
cosine-increasing EMA, a warm-up, the PSA noise, per-GPU BatchNorm/shuffle/PSL with v1 and v2 under a 2-process gloo
group) it builds the official `BYOLWrapper` (the official `bigresnet18` encoder with
--geometry=resnet18, or a torchvision-layout ResNet with one block per stage with --geometry=small),
its SGD optimiser (`collect_params`, one group per parameter) and a stand-in for its `TrainTask`, and
runs the official `BYOL.adjust_learning_rate` and `BYOL.train` for --steps steps on fixed batches of
two views, under DistributedDataParallel on CPU. jaxclust starts from the same weights (converted by
`jaxclust/convert.py`) and runs its train step on the same batches, pseudo-labels, schedule, PSA noise
and target shuffle (both drawn by jaxclust and fed to the official code). It prints, per step, both
sides' total, PSL and alignment losses and the largest relative difference of the parameters and of
the BatchNorm statistics (online, target and predictor, layer by layer), then for the last step each
group apart, the E-step features of the data set and of a
held-out batch, and the official `extract_features` + `PyTorchKMeans` labels from a given init
against jaxclust's. It exits with 1 when a difference passes the stated tolerance
(`jaxclust.methods.propos_parity.STEP1_LOSS_RTOL`, `RTOL`).

The official code is read from the checkout at run time; nothing of it is part of jaxclust. To run it
on a CPU with torch >= 2 this script: provides `torch._six` (removed in torch 2.0), declares the two
torchvision operator schemas a CPU torch lacks when PyPI's torchvision does not import, makes
`Tensor.cuda()` a no-op, and starts a gloo process group on 127.0.0.1.

--save_fixture=DIR writes the settings' records (`jaxclust/methods/propos_parity.py` describes them), which
`tests/test_official_replay.py` replays without torch (the CI fixture: --geometry=small).
"""
from __future__ import annotations

import copy
import math
import os
import socket
import sys
import tempfile
import types

from absl import flags

from jaxclust import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("official_repo", None, "A checkout of github.com/Hzzone/ProPos.")
flags.DEFINE_string("torch_clustering", None,
                    "A checkout of github.com/Hzzone/torch_clustering (its folder holding torch_clustering/); "
                    "default: torch_clustering inside --official_repo, as its README installs it.")
flags.DEFINE_list("settings", None, "Settings to run (default: all): v1_constant_ema, v2_cosine_ema, warmup, "
                  "psa_noise, per_gpu, per_gpu_v2.")
flags.DEFINE_enum("geometry", "small", ["small", "resnet18"], "small: the CI fixture's network; resnet18: official bigresnet18.")
flags.DEFINE_integer("steps", None, "Training steps (default: the geometry's, 20).")
flags.DEFINE_integer("seed", None, "Seed of the data, batches, initial weights and noise (default: the geometry's, 0).")
flags.DEFINE_string("save_fixture", None, "Write the records to DIR (common.npz and <setting>.npz).")
flags.DEFINE_integer("threads", 2, "torch threads per official process.")
flags.DEFINE_string("replay", None, "Compare the records stored in DIR (--save_fixture) again, without the official code.")


# ---------------------------------------------------------------------------------------------
# The official side (runs in spawned processes; imports only torch, numpy and the official code)


def import_official(repo: str, torch_clustering: str | None):
    """The official modules, importable on a CPU with torch >= 2 (see the module docstring)."""
    import torch

    repo = os.path.abspath(repo)
    tc_root = os.path.abspath(torch_clustering) if torch_clustering else repo
    if not os.path.isdir(os.path.join(tc_root, "torch_clustering")):
        raise FileNotFoundError(f"torch_clustering/ not found in {tc_root}; pass --torch_clustering.")
    for path in (tc_root, repo):
        if path not in sys.path:
            sys.path.insert(0, path)
    six = types.ModuleType("torch._six")  # torch < 2.0 module the official utils import from
    six.string_classes, six.inf = (str, bytes), math.inf
    sys.modules.setdefault("torch._six", six)
    try:
        import torchvision  # noqa: F401
    except RuntimeError:  # PyPI's torchvision beside a CPU torch: its fake kernels need these schemas
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import_official.library = lib  # keep the definitions alive
        import torchvision  # noqa: F401
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
    import models  # noqa: F401  (registers every official model)
    import torch_clustering as tc
    from models.basic_template import TrainTask
    from models.propos.byol import BYOL
    from models.propos.byol_wrapper import BYOLWrapper
    from network import backbone_dict
    from utils import extract_features
    from utils.grad_scaler import NativeScalerWithGradNormCount

    return types.SimpleNamespace(BYOL=BYOL, BYOLWrapper=BYOLWrapper, TrainTask=TrainTask, backbone_dict=backbone_dict,
                                 extract_features=extract_features, Scaler=NativeScalerWithGradNormCount,
                                 torch_clustering=tc)


def small_encoder(width: int):
    """The official CIFAR backbone's layout (network/resnet.py: torchvision children as nn.Sequential,
    3x3 stem, no max-pool, fc -> Flatten) with one torchvision BasicBlock per stage at `width`
    channels, initialised as torchvision's ResNet (the replaced stem conv keeps PyTorch's default)."""
    from torch import nn
    from torchvision.models.resnet import BasicBlock

    stages, inplanes = [], width
    for s in range(4):
        planes, stride = width * 2**s, 1 if s == 0 else 2
        down = None
        if stride != 1 or inplanes != planes:
            down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        stages.append(nn.Sequential(BasicBlock(inplanes, planes, stride, down)))
        inplanes = planes
    for m in stages:
        for layer in m.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
    return nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                         *stages, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(1))


def build_official(official, setting, geometry):
    """The official BYOLWrapper of a comparison, as the official BYOL.set_model builds it."""
    opt = official_opt(setting, geometry)
    encoder = (official.backbone_dict["bigresnet18"][0]() if geometry.backbone == "resnet18"
               else small_encoder(geometry.width))
    return official.BYOLWrapper(encoder, num_cluster=geometry.num_clusters, in_dim=8 * geometry.width,
                                temperature=opt.temperature, hidden_size=geometry.hidden, fea_dim=geometry.dim,
                                byol_momentum=opt.momentum_base, symmetric=True, shuffling_bn=True,
                                latent_std=opt.latent_std, queue_size=0)


def official_opt(setting, geometry):
    """The official argparse options the step reads (cifar10_r18_propos.yml values at this geometry);
    learning_rate is already scaled by batch/256, as TrainTask.__init__ does."""
    return types.SimpleNamespace(
        learning_rate=geometry.lr, learning_eta_min=0.0, warmup_epochs=setting.warmup_epochs, epochs=geometry.epochs,
        step_lr=False, momentum=0.9, weight_decay=geometry.weight_decay, lambda_predictor_lr=10.0, fix_predictor_lr=False,
        momentum_base=0.996, momentum_max=1.0, momentum_increase=setting.ema_increase, acc_grd_step=1, amp=False,
        v2=setting.forward == "v2", latent_std=setting.sigma, cluster_loss_weight=0.1, temperature=0.5,
    )


class _Log:
    """Stands in for LoggerX: keeps what the official step logs (losses, lr, EMA momentum)."""

    def __init__(self):
        self.calls = []

    def msg(self, values, n_iter):
        self.calls.append([float(v) for v in values])

    def msg_str(self, *args, **kwargs):
        pass


def run_official(rank: int, world: int, port: int, payload_path: str, result_path: str, repo: str, tc_path,
                 threads: int = 1):
    """One official process: `world` of them run the recorded steps under DDP, rank 0 saves results."""
    import numpy as np
    import torch
    import torch.distributed as dist

    from jaxclust.methods.propos_parity import from_record

    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    official = import_official(repo, tc_path)
    record = dict(np.load(payload_path))
    setting, geometry = from_record(record)
    opt = official_opt(setting, geometry)

    byol = build_official(official, setting, geometry)
    init = {k[len("init/"):]: torch.from_numpy(v) for k, v in record.items() if k.startswith("init/")}
    missing, unexpected = byol.load_state_dict(init, strict=False)
    if unexpected or [k for k in missing if _kept(k)]:  # encoder.* share encoder_k/projector_k's tensors
        raise RuntimeError(f"initial weights do not fit: missing {missing[:4]}, unexpected {unexpected[:4]}")
    ddp = torch.nn.parallel.DistributedDataParallel(byol)
    optimizer = torch.optim.SGD(params=official.TrainTask.collect_params(None, byol, exclude_bias_and_bn=False),
                                lr=opt.learning_rate, momentum=opt.momentum, weight_decay=opt.weight_decay)
    task = types.SimpleNamespace(opt=opt, byol=ddp, optimizer=optimizer, iter_per_epoch=geometry.steps_per_epoch,
                                 psedo_labels=torch.from_numpy(record["pseudo_labels"]).long(), logger=_Log(),
                                 scaler=official.Scaler(amp=False), cur_epoch=1)
    task.cosine_annealing_LR = types.MethodType(official.TrainTask.cosine_annealing_LR, task)

    b = geometry.batch // world
    own = slice(rank * b, (rank + 1) * b)
    nchw = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32))  # noqa: E731
    losses, schedule, per_step = [], [], {}
    randn_like, randperm = torch.randn_like, torch.randperm
    try:
        for t in range(record["indices"].shape[0]):
            n_iter = t + 1
            task.cur_epoch = t // geometry.steps_per_epoch + 1  # official epochs count from 1
            # the PSA noise and the target shuffle jaxclust draws, in the order the official step asks
            if setting.forward == "v1":
                noises = [record[f"noise_{t}_{i}"][own] for i in (0, 1)]
            elif world == 1:  # forward_v2's q is [view 1 rows; view 2 rows]
                noises = [record[f"noise_{t}_0"]]
            else:  # ... this process's, which v2_layout='processes' places at rows [2 r b, 2 (r + 1) b)
                noises = [record[f"noise_{t}_0"][2 * rank * b:2 * (rank + 1) * b]]
            orders = [record[f"order_{t}_{i}"] for i in ((0, 1) if setting.forward == "v1" else (0,))]
            noises, orders = [torch.from_numpy(n) for n in noises], [torch.from_numpy(o).long() for o in orders]

            def fed_noise(like, *args, **kwargs):
                out = noises.pop(0)
                assert out.shape == like.shape, (out.shape, like.shape)
                return out.to(like.dtype)

            torch.randn_like = fed_noise
            torch.randperm = lambda n, *args, **kwargs: orders.pop(0)
            official.BYOL.adjust_learning_rate(task, n_iter)
            view1, view2 = record["view1"][t][own], record["view2"][t][own]
            indices = torch.from_numpy(record["indices"][t][own]).long()
            official.BYOL.train(task, ((nchw(view1), nchw(view2)), None), indices, n_iter)
            torch.randn_like, torch.randperm = randn_like, randperm
            lr, _, momentum = task.logger.calls[-2]
            align, psl, _ = task.logger.calls[-1]
            both = torch.tensor([align, psl], dtype=torch.float64)
            dist.all_reduce(both)  # the loss of the step: the mean of the processes' losses
            align, psl = (both / world).tolist()
            warm = task.cur_epoch <= opt.warmup_epochs  # official is_warmup
            losses.append((align + psl * opt.cluster_loss_weight * float(not warm), align, psl))
            schedule.append((lr, momentum))
            if rank == 0:  # the state after every step, for the per-step comparison (not stored)
                per_step.update({f"step{t}/{k}": v.detach().numpy().copy()
                                 for k, v in byol.state_dict().items() if _kept(k)})
    finally:
        torch.randn_like, torch.randperm = randn_like, randperm

    # E-step: official extract_features over the data set (memory loader: no shuffle), l2-normalised
    # as psedo_labeling does, then PyTorchKMeans from the given init
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

    def features_of(images, extractor):
        data = TensorDataset(nchw(images), torch.zeros(len(images), dtype=torch.long))
        loader = DataLoader(data, batch_size=b, sampler=DistributedSampler(data, shuffle=False))
        feats, _ = official.extract_features(extractor, loader)
        return feats.div_(torch.linalg.norm(feats, dim=1, ord=2, keepdim=True))

    # Each process's target BN statistics are its own since DDP's last broadcast; official use_copy
    # (its R34 configs) embeds with rank 0's on every process, as jaxclust does; without it (CIFAR-10
    # R18) each process embeds its shard with its own statistics, which jaxclust does not model.
    own_stats = features_of(record["images"], byol.encoder)
    extractor = copy.deepcopy(byol.encoder)
    for tensor in extractor.state_dict().values():
        dist.broadcast(tensor, src=0)
    features, heldout = features_of(record["images"], extractor), features_of(record["heldout"], extractor)
    init_rows = np.random.default_rng(geometry.seed + 1).choice(len(features), geometry.num_clusters, replace=False)
    kmeans_init = features[torch.from_numpy(init_rows)].clone()
    km = official.torch_clustering.PyTorchKMeans(init=kmeans_init, max_iter=300, tol=1e-4, metric="cosine",
                                                 distributed=True, random_state=0,
                                                 n_clusters=geometry.num_clusters, verbose=False)
    kmeans_labels = km.fit_predict(features)
    if rank == 0:
        final = {f"final/{k}": v.detach().numpy() for k, v in byol.state_dict().items() if _kept(k)}
        np.savez(result_path, **final, **per_step, official_loss=np.array([x[0] for x in losses]),
                 official_align_loss=np.array([x[1] for x in losses]),
                 official_psl_loss=np.array([x[2] for x in losses]),
                 official_lr=np.array([s[0] for s in schedule]), official_ema_momentum=np.array([s[1] for s in schedule]),
                 official_features=features.numpy(), official_features_own_stats=own_stats.numpy(),
                 official_heldout_features=heldout.numpy(),
                 kmeans_init=kmeans_init.numpy(), official_kmeans_labels=kmeans_labels.numpy().astype(np.int32))
    dist.barrier()
    dist.destroy_process_group()


def _kept(key: str) -> bool:
    """State-dict keys worth storing: `encoder.*` repeats encoder_k/projector_k, num_batches_tracked
    has no jaxclust counterpart."""
    return not key.startswith("encoder.") and not key.endswith("num_batches_tracked")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def official_initial_weights(repo, tc_path, setting, geometry):
    """The official BYOLWrapper's own initialisation (seeded), as numpy."""
    import torch

    official = import_official(repo, tc_path)
    torch.manual_seed(geometry.seed)
    byol = build_official(official, setting, geometry)
    return {f"init/{k}": v.detach().numpy().copy() for k, v in byol.state_dict().items() if _kept(k)}


# ---------------------------------------------------------------------------------------------
# The comparison


def record_setting(name: str, geometry) -> dict:
    """Runs the official side of one setting; returns its whole record."""
    import numpy as np
    import torch.multiprocessing as mp

    from jaxclust.methods import propos_parity as parity

    setting = parity.SETTINGS[name]
    cfg = parity.make_config(setting, geometry)
    record = parity.make_record_inputs(geometry, cfg)
    record.update(official_initial_weights(FLAGS.official_repo, FLAGS.torch_clustering, setting, geometry))
    record.update({k: np.array(v) for k, v in parity.describe(setting, geometry).items()})
    with tempfile.TemporaryDirectory() as tmp:
        payload, result = os.path.join(tmp, "payload.npz"), os.path.join(tmp, "result.npz")
        np.savez(payload, **record)
        mp.spawn(run_official, args=(setting.world, _free_port(), payload, result, FLAGS.official_repo,
                                     FLAGS.torch_clustering, FLAGS.threads), nprocs=setting.world, join=True)
        record.update(dict(np.load(result)))
    return record


def compare(name: str, record: dict) -> bool:
    """Replays `record` through jaxclust and prints the comparison; True when within tolerance."""
    import numpy as np

    from jaxclust.methods import propos_parity as parity

    setting, geometry = parity.from_record(record)
    cfg = parity.make_config(setting, geometry)
    step_states = {}

    def per_step(t, state):
        official = {k[len(f"step{t}/"):]: v for k, v in record.items() if k.startswith(f"step{t}/")}
        if official:  # absent in a stored record (--replay): only the final state was kept
            diffs = parity.compare_states(state, official)
            step_states[t] = (max(d for g, (d, _) in diffs.items() if "params" in g),
                              max(d for g, (d, _) in diffs.items() if "BN" in g))

    state, history, method = parity.replay(cfg, geometry, record, on_step=per_step)
    print(f"\n== {name}: {setting.doc} ({geometry.backbone} width {geometry.width}, batch {geometry.batch}, "
          f"{len(history['loss'])} steps)")
    print(f"{'step':>4} {'loss jaxclust':>14} {'official':>14} {'rel':>8} {'PSL jaxclust':>13} {'official':>13} "
          f"{'rel':>8} {'align jaxclust':>15} {'official':>15} {'rel':>8} {'params':>8} {'BN stats':>8}")
    ok = True
    rows = parity.loss_table(history, record)
    for row in rows:
        cells = " ".join(f"{a:14.8g} {b:14.8g} {r:8.1e}" for a, b, r in (row[k] for k in ("loss", "psl_loss", "align_loss")))
        params = " ".join(f"{d:8.1e}" for d in step_states.get(row["step"] - 1, ()))
        print(f"{row['step']:>4} {cells} {params}")
    step1 = max(rows[0][k][2] for k in ("loss", "psl_loss", "align_loss"))
    every = max(row[k][2] for row in rows for k in ("loss", "psl_loss", "align_loss"))
    sched = max(parity.relative_difference(history["lr"], record["official_lr"]),
                parity.relative_difference(history["ema_momentum"], record["official_ema_momentum"]))
    checks = [("step-1 losses", step1, parity.STEP1_LOSS_RTOL), ("losses, every step", every, parity.RTOL),
              ("lr and EMA momentum, every step", sched, parity.RTOL)]
    final = {k[len("final/"):]: v for k, v in record.items() if k.startswith("final/")}
    for group, (diff, where) in parity.compare_states(state, final).items():
        checks.append((f"{group} after {len(rows)} steps (largest: {where})", diff, parity.RTOL))
    features = parity.embed(method, state, record["images"])
    heldout = parity.embed(method, state, record["heldout"])
    checks.append(("E-step features of the data set", parity.relative_difference(features, record["official_features"]), parity.RTOL))
    checks.append(("features of a held-out batch", parity.relative_difference(heldout, record["official_heldout_features"]), parity.RTOL))
    if setting.world > 1:
        own = parity.relative_difference(features, record["official_features_own_stats"])
        print(f"  (not compared: official E-step features without use_copy, each process's shard embedded with its "
              f"own BN statistics: {own:.2e})")
    labels = parity.e_step_labels(features, record["kmeans_init"])
    differ = int(np.sum(labels != record["official_kmeans_labels"]))
    for what, diff, tol in checks:
        ok &= diff <= tol
        print(f"  {what:<72} {diff:9.2e}  {'ok' if diff <= tol else 'FAIL'} (tolerance {tol:.0e})")
    # float32 sensitivity of this trajectory: jaxclust against itself, every initial weight one ulp
    # away (random direction); a difference from the official code well below it is rounding
    signs = np.random.default_rng(0)
    nudged = {k: np.nextafter(v, np.where(signs.random(v.shape) < 0.5, -np.inf, np.inf).astype(v.dtype))
              if k.startswith("init/") and v.dtype == np.float32 else v for k, v in record.items()}
    nudged_state, nudged_history, _ = parity.replay(cfg, geometry, nudged)
    own_loss = max(parity.loss_error(a, b) for a, b in zip(nudged_history["loss"], history["loss"]))
    own_params = max(d for d, _ in parity.compare_groups(
        parity.state_groups(nudged_state), parity.state_groups(state)).values())
    print(f"  float32 sensitivity (jaxclust against itself, initial weights one ulp away): losses {own_loss:.1e}, "
          f"parameters and BN statistics {own_params:.1e}")
    print(f"  {'E-step k-means labels from the same init: differing labels':<72} {differ:9d}  {'ok' if differ == 0 else 'FAIL'}")
    return ok and differ == 0


def main():
    import dataclasses

    from jaxclust.methods import propos_parity as parity

    unknown = sorted(set(FLAGS.settings or ()) - set(parity.SETTINGS))
    if unknown:
        raise cli.UserError(f"unknown settings {unknown}; choose from {sorted(parity.SETTINGS)}.")
    if FLAGS.replay:
        results = {name: compare(name, parity.load_record(FLAGS.replay, name)) for name in FLAGS.settings or parity.SETTINGS}
        print("\n" + "\n".join(f"{name}: {'within tolerance' if ok else 'DIFFERS'}" for name, ok in results.items()))
        sys.exit(0 if all(results.values()) else 1)
    if not FLAGS.official_repo:
        raise cli.UserError("--official_repo is required (or --replay=DIR).")
    if not os.path.isdir(os.path.join(FLAGS.official_repo, "models", "propos")):
        raise cli.UserError(f"--official_repo={FLAGS.official_repo!r} is not a checkout of Hzzone/ProPos "
                             "(models/propos/ not found).")
    geometry = parity.GEOMETRIES[FLAGS.geometry]
    if FLAGS.steps:
        geometry = dataclasses.replace(geometry, steps=FLAGS.steps)
    if FLAGS.seed is not None:
        geometry = dataclasses.replace(geometry, seed=FLAGS.seed)
    results, records = {}, {}
    for name in FLAGS.settings or parity.SETTINGS:
        records[name] = record_setting(name, geometry)
        results[name] = compare(name, records[name])
    if FLAGS.save_fixture:
        parity.save_records(FLAGS.save_fixture, {name: {k: v for k, v in record.items() if not k.startswith("step")}
                                                 for name, record in records.items()})
    print("\n" + "\n".join(f"{name}: {'within tolerance' if ok else 'DIFFERS'}" for name, ok in results.items()))
    sys.exit(0 if all(results.values()) else 1)


if __name__ == "__main__":
    cli.run(main)
