"""Import official ProPos (PyTorch) checkpoints into jaxclust parameters.

    state_dict = load_torch_state_dict("checkpoint.tar")      # needs torch: pip install -e ".[torch]"
    converted = convert_byol_state_dict(state_dict)            # numpy only from here on
    state, loaded = load_into_state(state, converted)          # a ProPos/BYOL TrainState

What the official code saves (Hzzone/ProPos, `reference/propos_official.md` Sec. 1.5): the
`BYOLWrapper` state dict, possibly under the key `'byol'` of a checkpoint dict, possibly with the
`module.` prefix of DistributedDataParallel. Its parts:

    encoder_q.* / encoder_k.*       online / target backbone: a torchvision ResNet re-assembled as an
                                    nn.Sequential of its children (conv1, bn1, relu, [maxpool,
                                    dropped for the CIFAR stem], layer1..layer4, avgpool, flatten),
                                    so keys are `encoder_k.0.weight`, `encoder_k.1.running_var`,
                                    `encoder_k.3.0.conv1.weight` (CIFAR stem: layer1 is child 3;
                                    ImageNet stem: child 4)
    projector_q.* / projector_k.*   Linear(0) -> BatchNorm1d(1) -> ReLU -> Linear(3)
    predictor.*                     same layout
    encoder.0.* / encoder.1.*       the same target tensors again (`encoder = Sequential(encoder_k,
                                    projector_k)`), used only when encoder_k/projector_k are absent

A bare backbone state dict (the official `models/lincls/preprocess_example.py` saves `encoder_k`
alone) and plain torchvision names (`conv1.weight`, `layer1.0.bn1.weight`, `fc.*` ignored) are read
as a target backbone.

Mapping (`jaxclust/models/resnet.py`, `heads.py`): conv OIHW -> HWIO kernel; BatchNorm weight,
bias, running_mean, running_var -> params scale, bias and batch_stats mean, var
(`num_batches_tracked` has no counterpart); Linear weight (out, in) -> kernel (in, out), bias.
Sequential children -> stem_conv, stem_bn, stage{s}_block{b}/conv{i}, bn{i}, downsample_conv,
downsample_bn; heads -> fc1, bn1, fc2.
"""
from __future__ import annotations

import re

import jax
import numpy as np


class ConversionError(ValueError):
    """A checkpoint that does not fit the configured network; the message says what differs."""


_WRAPPER_KEYS = ("byol", "state_dict", "model", "net")
_PARTS = ("encoder_q", "encoder_k", "projector_q", "projector_k", "predictor")


def load_torch_state_dict(path: str) -> dict[str, np.ndarray]:
    """Tensors of a PyTorch checkpoint file as numpy arrays, unwrapped and without `module.`."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            "reading a PyTorch checkpoint needs torch; install the CPU build with "
            "pip install -e '.[torch]' (torch==2.13.0)."
        ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConversionError(f"no PyTorch checkpoint at {path!r}.") from None
    except Exception as error:  # a foreign or truncated file fails anywhere in torch's reader (IndexError, ...)
        if "Unsupported global" in str(error):  # weights_only refuses arbitrary Python objects
            raise ConversionError(
                f"{path!r} holds Python objects besides tensors, so it is not loaded; if you trust it, re-save "
                "its state dict: torch.save(torch.load(path, weights_only=False)['byol'], 'byol.pth')."
            ) from None
        raise ConversionError(f"{path!r} is not a PyTorch checkpoint that torch.load can read "
                              f"({type(error).__name__}).") from None
    return state_dict_to_numpy(obj)


def state_dict_to_numpy(obj) -> dict[str, np.ndarray]:
    """Unwraps {'byol': sd} / {'state_dict': sd} / ... and strips `module.`; tensors -> numpy."""
    while isinstance(obj, dict):
        inner = [k for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], dict)]
        if not inner:
            break
        obj = obj[inner[0]]
    if not isinstance(obj, dict) or not obj:
        raise ConversionError("the checkpoint holds no state dict (expected a dict of tensors).")
    out = {}
    for key, value in obj.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            out[re.sub(r"^(module\.)+", "", key)] = value
    if not out:
        raise ConversionError(f"the checkpoint holds no tensors (a dict of {', '.join(map(repr, list(obj)[:5]))}); "
                              "expected a state dict of the network.")
    return out


def _group(state_dict: dict, prefix: str) -> dict:
    p = prefix + "."
    return {k[len(p):]: v for k, v in state_dict.items() if k.startswith(p)}


# ---------------------------------------------------------------------------------------------
# Layers


def _bn(sd: dict, name: str) -> tuple[dict, dict]:
    try:
        params = {"scale": sd[f"{name}.weight"], "bias": sd[f"{name}.bias"]}
        stats = {"mean": sd[f"{name}.running_mean"], "var": sd[f"{name}.running_var"]}
    except KeyError as missing:
        raise ConversionError(f"BatchNorm {name!r} lacks {missing}.") from None
    return params, stats


def _conv(sd: dict, name: str) -> dict:
    w = sd[f"{name}.weight"]
    if w.ndim != 4:
        raise ConversionError(f"{name}.weight should be a 4-D conv kernel, got shape {w.shape}.")
    return {"kernel": np.transpose(w, (2, 3, 1, 0))}  # OIHW -> HWIO


def _linear(sd: dict, name: str) -> dict:
    return {"kernel": np.transpose(sd[f"{name}.weight"]), "bias": sd[f"{name}.bias"]}


def _torchvision_names(sd: dict) -> dict:
    """Sequential-layout backbone keys (`0.weight`, `3.0.conv1.weight`) -> torchvision names."""
    if "conv1.weight" in sd:
        return sd
    if "0.weight" not in sd:
        raise ConversionError(
            "the backbone has neither torchvision names (conv1.weight) nor the official nn.Sequential "
            f"layout (0.weight); its first keys are {sorted(sd)[:5]}."
        )
    # children holding residual stages are those with keys `<child>.<block>.<...>`, in stage order
    stages = sorted({int(k.split(".")[0]) for k in sd if re.match(r"^\d+\.\d+\.", k)})
    if len(stages) != 4:
        raise ConversionError(f"expected 4 residual stages in the backbone, found children {stages}.")
    rename = {"0": "conv1", "1": "bn1", **{str(c): f"layer{s + 1}" for s, c in enumerate(stages)}}
    out = {}
    for key, value in sd.items():
        head, _, rest = key.partition(".")
        if head in rename:
            out[f"{rename[head]}.{rest}"] = value
    return out


def convert_resnet(backbone_sd: dict) -> tuple[dict, dict]:
    """A torchvision-style ResNet state dict -> jaxclust ResNet (params, batch_stats)."""
    sd = _torchvision_names(backbone_sd)
    params, stats = {"stem_conv": _conv(sd, "conv1")}, {}
    params["stem_bn"], stats["stem_bn"] = _bn(sd, "bn1")
    blocks = sorted({tuple(map(int, m.groups())) for k in sd if (m := re.match(r"^layer(\d+)\.(\d+)\.", k))})
    if not blocks:
        raise ConversionError("the backbone has no residual blocks (layer1.0.*).")
    for s, b in blocks:
        src, dst = f"layer{s}.{b}", f"stage{s}_block{b}"
        p, st = {}, {}
        for i in (1, 2, 3):
            if f"{src}.conv{i}.weight" in sd:
                p[f"conv{i}"] = _conv(sd, f"{src}.conv{i}")
                p[f"bn{i}"], st[f"bn{i}"] = _bn(sd, f"{src}.bn{i}")
        if f"{src}.downsample.0.weight" in sd:
            p["downsample_conv"] = _conv(sd, f"{src}.downsample.0")
            p["downsample_bn"], st["downsample_bn"] = _bn(sd, f"{src}.downsample.1")
        params[dst], stats[dst] = p, st
    return params, stats


def convert_mlp_head(head_sd: dict) -> tuple[dict, dict]:
    """Linear(0) -> BatchNorm1d(1) -> ReLU -> Linear(3) -> jaxclust MLPHead (params, batch_stats)."""
    try:
        params = {"fc1": _linear(head_sd, "0"), "fc2": _linear(head_sd, "3")}
    except KeyError as missing:
        raise ConversionError(f"the MLP head lacks {missing} (expected the official Linear-BN-ReLU-Linear).") from None
    params["bn1"], stats = _bn(head_sd, "1")
    return params, {"bn1": stats}


# ---------------------------------------------------------------------------------------------
# The whole BYOL wrapper


def convert_byol_state_dict(state_dict: dict[str, np.ndarray]) -> dict[str, dict]:
    """Official state dict -> {"target"|"online": {"params": {backbone, projector}, "batch_stats": ...},
    "predictor": {"params", "batch_stats"}}, with only the parts the checkpoint holds."""
    parts = {name: _group(state_dict, name) for name in _PARTS}
    if not parts["encoder_k"] and _group(state_dict, "encoder.0"):
        parts["encoder_k"], parts["projector_k"] = _group(state_dict, "encoder.0"), _group(state_dict, "encoder.1")
    if not any(parts.values()):  # a bare backbone (official preprocess_example.py output)
        parts["encoder_k"] = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    out: dict[str, dict] = {}
    for side, enc, proj in (("target", "encoder_k", "projector_k"), ("online", "encoder_q", "projector_q")):
        if not parts[enc]:
            continue
        params, stats = {}, {}
        params["backbone"], stats["backbone"] = convert_resnet(parts[enc])
        if parts[proj]:
            params["projector"], stats["projector"] = convert_mlp_head(parts[proj])
        out[side] = {"params": params, "batch_stats": stats}
    if parts["predictor"]:
        p, s = convert_mlp_head(parts["predictor"])
        out["predictor"] = {"params": p, "batch_stats": s}
    if not out:
        raise ConversionError("found no ProPos network (encoder_k/encoder_q/projector_*/predictor) in the checkpoint.")
    return out


def _paths(tree) -> dict[str, tuple]:
    return {jax.tree_util.keystr(p): np.shape(x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _fill(base: dict, new: dict, where: str) -> dict:
    """`base` with the top-level parts that `new` has replaced; paths and shapes must match exactly."""
    out = dict(base)
    for part, tree in new.items():
        if part not in base:
            raise ConversionError(f"{where}: the checkpoint has {part!r} but the model has only {sorted(base)}.")
        want, got = _paths(base[part]), _paths(tree)
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        wrong = [f"{p} checkpoint {got[p]} vs model {want[p]}" for p in sorted(set(want) & set(got)) if got[p] != want[p]]
        if missing or extra or wrong:
            hint = ""
            if any("stem_conv" in w for w in wrong):
                hint = " The stems differ: set --config.model.stem (cifar: 3x3 conv, imagenet: 7x7 + max-pool)."
            elif missing or extra:
                hint = " Check --config.model.backbone (resnet18/34/50) and the head sizes."
            raise ConversionError(
                f"{where}/{part} does not fit the configured model: missing {missing[:4]}, unexpected "
                f"{extra[:4]}, shape mismatches {wrong[:4]}.{hint}"
            )
        out[part] = jax.tree.map(
            lambda b, n: jax.device_put(np.asarray(n, dtype=b.dtype), b.sharding), base[part], tree
        )
    return out


def load_into_state(state, converted: dict) -> tuple[object, list[str]]:
    """A ProPos/BYOL `TrainState` with the converted networks put in place; also the names of the
    parts that were loaded (e.g. ["target/backbone", "target/projector", ...]).

    Layout (`jaxclust/methods/propos.py`): target_params = {backbone, projector};
    params = {"net": {backbone, projector}, "predictor": MLPHead}; batch_stats alike.
    """
    if not isinstance(state.params, dict) or "net" not in state.params:
        raise ConversionError("PyTorch import supports the BYOL-style methods (propos, byol): params['net'] is missing.")
    loaded = []
    if "target" in converted:
        t = converted["target"]
        state = state.replace(
            target_params=_fill(state.target_params, t["params"], "target/params"),
            target_batch_stats=_fill(state.target_batch_stats, t["batch_stats"], "target/batch_stats"),
        )
        loaded += [f"target/{p}" for p in t["params"]]
    params, stats = dict(state.params), dict(state.batch_stats)
    if "online" in converted:
        o = converted["online"]
        params["net"] = _fill(params["net"], o["params"], "online/params")
        stats["net"] = _fill(stats["net"], o["batch_stats"], "online/batch_stats")
        loaded += [f"online/{p}" for p in o["params"]]
    if "predictor" in converted:
        params.update(_fill({"predictor": params["predictor"]}, {"predictor": converted["predictor"]["params"]}, "params"))
        stats.update(_fill({"predictor": stats["predictor"]}, {"predictor": converted["predictor"]["batch_stats"]}, "batch_stats"))
        loaded.append("predictor")
    return state.replace(params=params, batch_stats=stats), loaded
