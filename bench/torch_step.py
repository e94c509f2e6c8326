"""The PyTorch side of `bench/train_step.py --torch`: jaxclust's ProPos step and E-step embedding,
written in plain PyTorch with the same networks, shapes and work, so that the two can be timed side
by side in one run.

The networks mirror `jaxclust/models` layer for layer (same widths, strides, padding, BatchNorm,
head sizes, hence the same parameter counts), and their modules carry jaxclust's parameter names
(`stage1_block0.conv`, `stem_bn`, `projector.fc1`, ...), so that `jax_to_torch_state_dict` can copy
a jaxclust state into them (used by `tests/test_bench.py` to show that both steps compute the same
numbers). Tensors are NCHW; the uint8 NHWC bank is permuted on the fly, which gives PyTorch's
channels_last memory layout for free.

`ProPosTorch.train_step` is the v1 ProPos step of `jaxclust/methods/propos.py` (one global batch,
no ghost BN, no PSL queue): the target (EMA) network in train mode without gradients on view 2 then
view 1, the online network + predictor (after the PSA noise) on each view, the BYOL alignment both
ways, PSL on the online projections against the target prototypes, backward, the EMA of the target
with the online weights from before the update, then SGD with momentum and coupled weight decay on
every parameter (predictor at `predictor_lr_mult` x lr). `embed` is `Run.embed`: the target network in
eval mode, l2-normalised.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMALIZE_EPS = 1e-12  # jaxclust.losses.NORMALIZE_EPS (torch's F.normalize eps)
ABSENT_CLUSTER_LOGIT = -10.0  # jaxclust.losses.ABSENT_CLUSTER_LOGIT (official ProPos)


# ---------------------------------------------------------------------------------------------
# Networks (jaxclust/models/convnet.py, resnet.py, heads.py)


def conv(in_channels: int, out_channels: int, kernel: int, stride: int, padding: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=False)


class ConvBNReLU(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv = conv(in_channels, out_channels, 3, stride, 1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class ConvNet(nn.Module):
    """Stages of `blocks_per_stage` x conv3x3-BN-ReLU, stride 2 at the first conv of every later stage, GAP."""

    def __init__(self, in_channels: int, widths, blocks_per_stage: int = 2):
        super().__init__()
        if blocks_per_stage < 1 or len(widths) < 1:
            raise ValueError("ConvNet needs at least one stage and one block per stage.")
        self.block_names = []
        for s, width in enumerate(widths):
            for b in range(blocks_per_stage):
                name = f"stage{s + 1}_block{b}"
                self.add_module(name, ConvBNReLU(in_channels, width, 2 if (s > 0 and b == 0) else 1))
                self.block_names.append(name)
                in_channels = width

    def forward(self, x):
        for name in self.block_names:
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = conv(in_channels, planes, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.has_downsample = stride != 1 or in_channels != planes
        if self.has_downsample:
            self.downsample_conv = conv(in_channels, planes, 1, stride, 0)
            self.downsample_bn = nn.BatchNorm2d(planes)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        identity = self.downsample_bn(self.downsample_conv(x)) if self.has_downsample else x
        return F.relu(y + identity)


class Bottleneck(nn.Module):
    """torchvision Bottleneck v1.5 (stride on the 3x3 conv)."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = conv(in_channels, planes, 1, 1, 0)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, stride, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv(planes, out, 1, 1, 0)
        self.bn3 = nn.BatchNorm2d(out)
        self.has_downsample = stride != 1 or in_channels != out
        if self.has_downsample:
            self.downsample_conv = conv(in_channels, out, 1, stride, 0)
            self.downsample_bn = nn.BatchNorm2d(out)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        identity = self.downsample_bn(self.downsample_conv(x)) if self.has_downsample else x
        return F.relu(y + identity)


RESNETS = {  # name: (blocks per stage, block)
    "resnet10": ((1, 1, 1, 1), BasicBlock),
    "resnet18": ((2, 2, 2, 2), BasicBlock),
    "resnet34": ((3, 4, 6, 3), BasicBlock),
    "resnet50": ((3, 4, 6, 3), Bottleneck),
}


class ResNet(nn.Module):
    """torchvision ResNet without fc, returning the pooled feature; stems as jaxclust's `ResNet`."""

    def __init__(self, in_channels: int, stage_sizes, block, width: int = 64, stem: str = "cifar"):
        super().__init__()
        if stem in ("cifar", "pica"):
            self.stem_conv = conv(in_channels, width, 3, 1, 1)
            pool = nn.MaxPool2d(2, 2, padding=1) if stem == "pica" else nn.Identity()
        elif stem == "imagenet":
            self.stem_conv = conv(in_channels, width, 7, 2, 3)
            pool = nn.MaxPool2d(3, 2, padding=1)
        else:
            raise ValueError(f"Unknown stem {stem!r}; valid stems are: cifar, imagenet, pica.")
        self.stem_bn = nn.BatchNorm2d(width)
        self.stem_pool = pool
        self.block_names = []
        channels = width
        for s, blocks in enumerate(stage_sizes):
            planes = width * 2**s
            for b in range(blocks):
                name = f"stage{s + 1}_block{b}"
                self.add_module(name, block(channels, planes, 2 if (s > 0 and b == 0) else 1))
                self.block_names.append(name)
                channels = planes * block.expansion

    def forward(self, x):
        x = self.stem_pool(F.relu(self.stem_bn(self.stem_conv(x))))
        for name in self.block_names:
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3))


class MLPHead(nn.Module):
    """Linear -> BatchNorm1d -> ReLU -> Linear, both Linear layers with biases (jaxclust `MLPHead`)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x):
        return self.fc2(F.relu(self.bn1(self.fc1(x))))


class EncoderProjector(nn.Module):
    """f: backbone, then the projector MLP (jaxclust `EncoderProjector`)."""

    def __init__(self, backbone: nn.Module, backbone_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.backbone = backbone
        self.projector = MLPHead(backbone_dim, hidden_dim, out_dim)

    def forward(self, x):
        return self.projector(self.backbone(x))


def build_backbone(model_cfg, in_channels: int) -> tuple[nn.Module, int]:
    """(backbone, its feature dimension) for jaxclust's `model` config section."""
    name = model_cfg.backbone
    if int(model_cfg.get("bn_groups", 1)) != 1:
        raise ValueError("the PyTorch step has one BatchNorm over the whole batch; set model.bn_groups=1.")
    if name == "convnet":
        widths = tuple(int(w) for w in model_cfg.convnet_widths)
        blocks = int(model_cfg.get("convnet_blocks_per_stage", 2))
        return ConvNet(in_channels, widths, blocks), widths[-1]
    if name not in RESNETS:
        raise ValueError(f"Unknown backbone {name!r}; valid backbones are: convnet, {', '.join(RESNETS)}.")
    stage_sizes, block = RESNETS[name]
    width = int(model_cfg.width)
    return ResNet(in_channels, stage_sizes, block, width, model_cfg.stem), width * 8 * block.expansion


def build_networks(model_cfg, in_channels: int) -> tuple[nn.Module, nn.Module]:
    """(online encoder + projector, predictor), sized as jaxclust's ProPos networks."""
    backbone, dim = build_backbone(model_cfg, in_channels)
    net = EncoderProjector(backbone, dim, int(model_cfg.projector_hidden), int(model_cfg.projector_dim))
    predictor = MLPHead(int(model_cfg.projector_dim), int(model_cfg.predictor_hidden), int(model_cfg.projector_dim))
    return net, predictor


def count_parameters(*modules: nn.Module) -> int:
    """Trainable scalars (BatchNorm running statistics are buffers, not counted; nor in jaxclust's params)."""
    return sum(p.numel() for m in modules for p in m.parameters())


# ---------------------------------------------------------------------------------------------
# jaxclust variables -> PyTorch state dict (the networks share jaxclust's names)


def _flatten(tree, prefix=""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) or hasattr(value, "items"):
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def jax_to_torch_state_dict(params, batch_stats) -> dict[str, torch.Tensor]:
    """A jaxclust network's `params` and `batch_stats` (nested dicts of arrays) as the state dict of
    the matching module here: HWIO conv kernels -> OIHW weights, (in, out) dense kernels -> (out, in),
    BatchNorm scale/bias/mean/var -> weight/bias/running_mean/running_var."""
    import numpy as np

    out = {}
    for path, value in _flatten(params):
        head, _, leaf = path.rpartition(".")
        value = torch.from_numpy(np.array(value, dtype=np.float32))
        if leaf == "kernel":
            value = value.permute(3, 2, 0, 1) if value.ndim == 4 else value.T
            out[f"{head}.weight"] = value.contiguous()
        elif leaf == "scale":
            out[f"{head}.weight"] = value
        elif leaf == "bias":
            out[f"{head}.bias"] = value
        else:
            raise ValueError(f"no PyTorch counterpart for the jaxclust parameter {path!r}.")
    renames = {"mean": "running_mean", "var": "running_var"}
    for path, value in _flatten(batch_stats):
        head, _, leaf = path.rpartition(".")
        if leaf not in renames:
            raise ValueError(f"no PyTorch counterpart for the jaxclust BatchNorm statistic {path!r}.")
        out[f"{head}.{renames[leaf]}"] = torch.from_numpy(np.array(value, dtype=np.float32))
    return out


def load_jax_variables(module: nn.Module, params, batch_stats) -> None:
    """Copies a jaxclust network's variables into `module`; every tensor of both sides must match."""
    state = jax_to_torch_state_dict(params, batch_stats)
    own = {k for k in module.state_dict() if not k.endswith("num_batches_tracked")}
    if set(state) != own:
        raise ValueError(f"the jaxclust variables do not fit the PyTorch network: missing {sorted(own - set(state))[:4]}, "
                         f"unexpected {sorted(set(state) - own)[:4]}.")
    module.load_state_dict(state, strict=False)


# ---------------------------------------------------------------------------------------------
# Losses (jaxclust/losses.py)


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """x / max(||x||, eps), with the squared norm clamped (a zero row gets a zero gradient, as in jaxclust)."""
    return x * torch.rsqrt(torch.clamp(x.square().sum(dim=-1, keepdim=True), min=NORMALIZE_EPS**2))


def alignment_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL / PSA alignment, official forward_loss form: -2 mean cos (ProPos Eq. 10)."""
    return -2.0 * F.cosine_similarity(prediction, target, dim=-1).mean()


def prototype_scattering_loss(online, target, labels, num_clusters: int, temperature: float) -> torch.Tensor:
    """PSL (ProPos Eq. 4): InfoNCE over the cluster prototypes of the l2-normalised online outputs,
    positive <mu_k, mu'_k> against the target prototypes, negatives <mu_k, mu_j>; absent clusters'
    columns get the constant logit -10 and their rows are dropped."""
    one_hot = F.one_hot(labels, num_clusters).to(online.dtype)  # (B, K)
    counts = one_hot.sum(dim=0)
    present = counts > 0
    counts = torch.clamp(counts, min=NORMALIZE_EPS)[:, None]
    mu = l2_normalize((one_hot.T @ l2_normalize(online)) / counts)  # Eq. 6: normalised cluster means
    mu_target = l2_normalize((one_hot.T @ target) / counts)
    positive = (mu * mu_target).sum(dim=-1) / temperature
    logits = (mu @ mu.T) / temperature
    diagonal = torch.eye(num_clusters, dtype=torch.bool, device=online.device)
    logits = torch.where(diagonal, positive[:, None], logits)
    logits = torch.where(present[None, :], logits, torch.full_like(logits, ABSENT_CLUSTER_LOGIT))
    rows = torch.logsumexp(logits, dim=1) - torch.diagonal(logits)
    rows = torch.where(present, rows, torch.zeros_like(rows))
    return rows.sum() / torch.clamp(present.sum(), min=1)


# ---------------------------------------------------------------------------------------------
# The step


def check_config(cfg) -> None:
    """ValueError unless `cfg` is a step the PyTorch twin does the same work as (ProPos v1 on one batch)."""
    m = cfg.method
    needed = {"psl_weight", "temperature", "sigma", "forward", "ema_momentum"}
    if not needed <= set(m.keys()):
        raise ValueError(f"the PyTorch step mirrors ProPos/BYOL, whose method keys {sorted(needed - set(m.keys()))} "
                         f"the config {m.name!r} lacks.")
    unsupported = {
        "method.forward": (m.forward, "v1"),
        "method.psl_terms": (m.get("psl_terms", "both"), "both"),
        "method.psl_negatives": (m.get("psl_negatives", "online"), "online"),
        "method.psl_processes": (m.get("psl_processes", 1), 1),
        "method.psl_queue_size": (m.get("psl_queue_size", 0), 0),
        "model.bn_groups": (cfg.model.get("bn_groups", 1), 1),
        "optim.name": (cfg.optim.name, "sgd"),
        "optim.nesterov": (cfg.optim.get("nesterov", False), False),
    }
    wrong = [f"{key}={have!r} (needs {want!r})" for key, (have, want) in unsupported.items() if have != want]
    if wrong:
        raise ValueError("the PyTorch step mirrors the default ProPos step only; this config has " + ", ".join(wrong) + ".")


class ProPosTorch:
    """The online network + predictor, the target network, the SGD optimiser and the step.

    `device`: "cpu" or "cuda"; `channels_last`: the memory layout of the images and conv weights.
    """

    def __init__(self, cfg, in_channels: int, device: str = "cpu", channels_last: bool = False):
        check_config(cfg)
        self.cfg, self.device, self.channels_last = cfg, torch.device(device), channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net, self.predictor = build_networks(cfg.model, in_channels)
        self.target, _ = build_networks(cfg.model, in_channels)
        self.target.load_state_dict(self.net.state_dict())  # official: a deep copy of the online encoder
        for module in (self.net, self.predictor, self.target):
            module.to(self.device, memory_format=self.memory_format)
        self.target.requires_grad_(False)
        self.mean = torch.tensor(cfg.augment.mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(cfg.augment.std, device=self.device).view(1, -1, 1, 1)
        self.online_params = list(self.net.parameters())
        self.target_params = list(self.target.parameters())
        # torch SGD: coupled weight decay on every parameter, buf = m buf + g; the predictor group's lr is
        # lr x predictor_lr_mult (official lambda_predictor_lr). The fused kernel where this torch has it
        # (CPU since 2.4), else the multi-tensor one: PyTorch's fastest SGD.
        o = cfg.optim
        self.predictor_lr_mult = float(o.get("predictor_lr_mult", 1.0))
        groups = [{"params": self.online_params}, {"params": list(self.predictor.parameters())}]
        sgd = {"lr": 0.0, "momentum": float(o.momentum), "weight_decay": float(o.weight_decay)}
        try:
            self.optimizer, self.optimizer_kind = torch.optim.SGD(groups, fused=True, **sgd), "fused"
        except RuntimeError:
            self.optimizer, self.optimizer_kind = torch.optim.SGD(groups, foreach=True, **sgd), "foreach"

    def load_jax_state(self, state) -> None:
        """Takes a jaxclust ProPos `TrainState`'s online, predictor and target variables."""
        load_jax_variables(self.net, state.params["net"], state.batch_stats["net"])
        load_jax_variables(self.predictor, state.params["predictor"], state.batch_stats["predictor"])
        load_jax_variables(self.target, state.target_params, state.target_batch_stats)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, C) -> normalised float (B, C, H, W), as jaxclust's `eval_batch` at the stored size."""
        x = images.permute(0, 3, 1, 2).float().div_(255.0)  # the permuted view is channels_last already
        return ((x - self.mean) / self.std).contiguous(memory_format=self.memory_format)

    def train_step(self, view1, view2, labels, lr: float, psl_weight: float, sigma: float, ema_momentum: float):
        """One ProPos v1 step on two float views (B, C, H, W); returns (loss, align_loss, psl_loss) tensors."""
        m = self.cfg.method
        num_clusters = int(self.cfg.cluster.num_clusters)
        self.net.train(), self.predictor.train(), self.target.train()
        with torch.no_grad():  # official forward_loss(x1 -> x2), then (x2 -> x1): the target sees view 2 first
            k2 = l2_normalize(self.target(view2))
            k1 = l2_normalize(self.target(view1))
        align, psl = [], []
        for x, k in ((view1, k2), (view2, k1)):
            q = self.net(x)
            p = self.predictor(q + sigma * torch.randn_like(q))  # PSA (ProPos Eq. 9)
            align.append(alignment_loss(p, k))
            psl.append(prototype_scattering_loss(q, k, labels, num_clusters, float(m.temperature)))
        align_loss, psl_loss = torch.stack(align).mean(), torch.stack(psl).mean()
        loss = align_loss + psl_weight * psl_loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():  # official: the EMA uses the online weights from before this step's update
            torch._foreach_lerp_(self.target_params, self.online_params, 1.0 - ema_momentum)
        self.optimizer.param_groups[0]["lr"] = lr
        self.optimizer.param_groups[1]["lr"] = lr * self.predictor_lr_mult
        self.optimizer.step()
        return loss.detach(), align_loss.detach(), psl_loss.detach()

    def step_on_images(self, images, labels, lr, psl_weight, sigma, ema_momentum):
        """The bench's `step, no augmentation`: the test-time transform as view 1, its mirror image as view 2."""
        x = self.preprocess(images)
        return self.train_step(x, torch.flip(x, dims=(3,)), labels, lr, psl_weight, sigma, ema_momentum)

    @torch.inference_mode()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """`Run.embed`: the target network in eval mode on the test-time transform, l2-normalised."""
        self.target.eval()
        return l2_normalize(self.target(self.preprocess(images)))


# ---------------------------------------------------------------------------------------------
# Where the time goes (bench/train_step.py --torch_profile)

# torch.profiler op name -> what it is in the step (ops not listed count as "other")
OP_KINDS = {
    "aten::mkldnn_convolution": "conv forward", "aten::cudnn_convolution": "conv forward",
    "aten::_convolution": "conv forward", "aten::convolution_backward": "conv backward (input + weight grad)",
    "aten::native_batch_norm": "BatchNorm forward", "aten::cudnn_batch_norm": "BatchNorm forward",
    "aten::native_batch_norm_backward": "BatchNorm backward", "aten::cudnn_batch_norm_backward": "BatchNorm backward",
    "aten::clamp_min": "ReLU forward", "aten::relu": "ReLU forward", "aten::threshold_backward": "ReLU backward",
    "aten::mm": "matmul (heads, PSL)", "aten::addmm": "matmul (heads, PSL)", "aten::bmm": "matmul (heads, PSL)",
    "aten::_fused_sgd_": "SGD", "aten::_foreach_add_": "SGD", "aten::_foreach_mul_": "SGD",
    "aten::lerp_": "EMA of the target", "aten::_foreach_lerp_": "EMA of the target",
    "aten::copy_": "copies (layout, dtype)", "aten::mean": "pooling, means", "aten::sum": "sums (grads of means, BN)",
}


def profile_split(step, steps: int = 3) -> list[tuple[str, float]]:
    """(kind, ms per step) of `step()`'s ops by torch.profiler's self CPU time, largest first."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        kind = OP_KINDS.get(event.key, "other")
        totals[kind] = totals.get(kind, 0.0) + event.self_cpu_time_total / 1000.0 / steps
    return sorted(totals.items(), key=lambda kv: -kv[1])


def conv_layer_times(model: "ProPosTorch", images: torch.Tensor, reps: int = 5) -> list[tuple]:
    """Per conv layer of the online backbone, on the input it sees in the step: (name, input shape,
    output channels, forward ms, input-gradient ms, weight-gradient ms), each the median of `reps`
    calls of the op alone (aten::convolution_backward with one output asked for at a time)."""
    import statistics
    import time

    inputs = {}

    def keep_input(name):
        def hook(module, args, output):
            inputs[name] = args[0].detach()  # returns None: a hook's return value would replace the output
        return hook

    hooks = [module.register_forward_hook(keep_input(name))
             for name, module in model.net.backbone.named_modules() if isinstance(module, nn.Conv2d)]
    with torch.no_grad():
        model.net.train()
        model.net(model.preprocess(images))
    for hook in hooks:
        hook.remove()
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)

    def timed(fn):
        fn()
        sync()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        return 1000.0 * statistics.median(times)

    rows = []
    modules = dict(model.net.backbone.named_modules())
    for name, x in inputs.items():
        conv = modules[name]
        w = conv.weight.detach()
        y = F.conv2d(x, w, None, conv.stride, conv.padding)
        grad = torch.randn_like(y)

        def backward(mask, x=x, w=w, grad=grad, conv=conv):
            return torch.ops.aten.convolution_backward(grad, x, w, None, list(conv.stride), list(conv.padding),
                                                       [1, 1], False, [0, 0], 1, mask)

        rows.append((name, tuple(x.shape), w.shape[0], timed(lambda x=x, w=w, conv=conv: F.conv2d(x, w, None, conv.stride, conv.padding)),
                     timed(lambda: backward([True, False, False])), timed(lambda: backward([False, True, False]))))
    return rows
