"""Whole-step parity with the official PyTorch ProPos: the jaxclust side of the comparison.

`launch/compare_official.py` runs the official `BYOLWrapper` and its optimiser (from a checkout of
Hzzone/ProPos) on recorded batches, and this module replays the same batches through jaxclust's
ProPos train step from the same initial weights. `tests/test_official_replay.py` replays a stored
record (`tests/fixtures/official_step/`), so CI needs neither the official code nor torch.

A record is a dict of numpy arrays (stored by `save_records`: what every setting shares in
`common.npz`, the rest in `<setting>.npz`):

    init/<official state-dict key>   the official initial weights (BYOLWrapper.state_dict())
    images (N, H, W, C)              the data set, un-augmented, normalised (E-step input), float16
    heldout (B, H, W, C)             a batch never trained on, float16
    view1, view2 (T, B, H, W, C)     the two augmented views fed at each of the T steps, float16
    indices (T, B)                   data set index of each row
    pseudo_labels (N,)               the E-step labels used throughout
    noise_<t>_<pair> / order_<t>_<view>   the PSA noise and target shuffle of each step, as jaxclust
                                     draws them (`propos.psa_noise`, `propos.target_shuffle`); the
                                     official side was fed exactly these
    official_loss, official_align_loss, official_psl_loss (T,)   the official per-step losses
    final/<official state-dict key>  the official weights and BN statistics after the T steps
    official_features (N, D), official_heldout_features (B, D), kmeans_init (K, D),
    official_kmeans_labels (N,)      one E-step: official extract_features + PyTorchKMeans(init=kmeans_init)
    official_lr, official_ema_momentum (T,)   what the official adjust_learning_rate set
    setting, geometry                JSON of the setting and geometry below

Losses are compared by `loss_error`; parameters and BatchNorm statistics layer by layer
(`compare_groups`); everything else by `relative_difference`, max |jaxclust - official| over the
tensor divided by max |official| over the tensor (a scale-free error that a near-zero element does
not blow up). Tolerances (`STEP1_LOSS_RTOL`, `RTOL`) are the ones the parity claim states.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxclust import convert, kmeans
from jaxclust.methods import default_config, propos

# The claim: the first step's losses to 1e-6 and everything after 20 steps to 1e-4, relative.
# float32 summation order is the only difference allowed: a step's losses agree to a few 1e-7, and
# the stored 20-step runs end within 2.3e-6 (measured; the README says how much these tiny networks
# can amplify rounding on other trajectories).
STEP1_LOSS_RTOL = 1e-6
RTOL = 1e-4


@dataclasses.dataclass(frozen=True)
class Setting:
    """One official recipe to compare: what the step does, and on how many processes."""

    forward: str = "v1"  # v1: symmetric pair of passes | v2: both views in one pass
    ema_increase: bool = False  # constant EMA (CIFAR-10 R18) or cosine increase to 1 (CIFAR-20, R34)
    warmup_epochs: int = 0  # epochs of learning-rate warm-up, with PSL and PSA noise off
    sigma: float = 0.0  # PSA noise std (official latent_std)
    world: int = 1  # official processes; > 1 also sets per-GPU BN, shuffled target BN and per-GPU PSL
    doc: str = ""


SETTINGS = {
    "v1_constant_ema": Setting(doc="forward v1, constant EMA 0.996 (official cifar10_r18_propos.yml)"),
    "v2_cosine_ema": Setting(forward="v2", ema_increase=True,
                             doc="forward_v2, EMA 0.996 -> 1 cosine (cifar20_r18_propos.yml, R34 configs)"),
    "warmup": Setting(warmup_epochs=2, sigma=0.001,
                      doc="warm-up epochs 1-2 (PSL and noise off), then PSL and the official sigma 0.001"),
    # sigma 0.01, 10x the official value, so that the noise moves the losses far past the tolerance
    "psa_noise": Setting(sigma=0.01, doc="PSA noise on (sigma 0.01), the same draws fed to both sides"),
    "per_gpu": Setting(world=2, doc="2 processes (gloo): per-GPU BN, shuffled target BN, per-GPU PSL"),
    "per_gpu_v2": Setting(forward="v2", ema_increase=True, world=2,
                          doc="forward_v2 on 2 processes (method.v2_layout='processes'): per-GPU BN over both "
                              "views, the official chunk(2) halves and labels"),
}


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Network and data sizes of a comparison. `small` is the stored CI fixture; `resnet18` the
    official CIFAR encoder (`bigresnet18`) at the official head sizes."""

    backbone: str = "resnet10"  # resnet10: torchvision layout, one BasicBlock per stage
    width: int = 4
    hidden: int = 64  # projector and predictor hidden size (official hidden_size 4096)
    dim: int = 16  # official feat_dim 256
    image_size: int = 8
    batch: int = 32  # global batch
    num_examples: int = 128
    num_clusters: int = 6
    steps: int = 20
    epochs: int = 10  # the schedules' length; only `steps` steps are run
    # the learning rate after the official batch/256 scaling (CIFAR-10: 0.1, reached after a 50-epoch
    # warm-up); see the README on how sensitive these tiny networks' trajectories are
    lr: float = 0.01
    weight_decay: float = 5e-4  # official weight_decay
    seed: int = 0

    @property
    def steps_per_epoch(self) -> int:
        return self.num_examples // self.batch


GEOMETRIES = {
    "small": Geometry(),
    "resnet18": Geometry(backbone="resnet18", width=64, hidden=4096, dim=256, image_size=32, batch=32,
                         num_examples=128, num_clusters=10),
}


def make_config(setting: Setting, geometry: Geometry):
    """The jaxclust config of a comparison: the official recipe's values at the geometry's sizes."""
    c = default_config("propos")
    c.seed = geometry.seed
    c.data.image_size = geometry.image_size
    c.model.backbone, c.model.width, c.model.stem = geometry.backbone, geometry.width, "cifar"
    c.model.projector_hidden = c.model.predictor_hidden = geometry.hidden
    c.model.projector_dim = geometry.dim
    c.model.bn_groups = setting.world  # per-GPU BatchNorm of a `world`-process run
    c.method.forward, c.method.ema_increase, c.method.sigma = setting.forward, setting.ema_increase, setting.sigma
    c.method.psl_processes = setting.world
    c.method.shuffle_bn = True
    c.method.v2_layout = "processes" if setting.world > 1 else "views"
    c.optim.lr = geometry.lr * 256 / geometry.batch  # make_optimizer scales by batch / 256 again
    c.optim.weight_decay = geometry.weight_decay
    c.optim.warmup_epochs = setting.warmup_epochs
    c.train.epochs, c.train.batch_size = geometry.epochs, geometry.batch
    c.cluster.num_clusters = geometry.num_clusters
    return c


def step_key(seed: int, t: int) -> jax.Array:
    """The key of step t of a replay (it decides the PSA noise and the target shuffle)."""
    return jax.random.fold_in(jax.random.key(seed), t)


def step_randomness(cfg, seed: int, t: int) -> dict[str, np.ndarray]:
    """What jaxclust's step t draws, for the official side to use instead of its own RNG.

    noise_<t>_<pair>: PSA eps of each forward pair, rows in jaxclust's order (v1: (B, D) per pair;
    v2: (2B, D), view 1 then view 2). order_<t>_<view>: the target shuffle of each target pass (only
    with bn_groups > 1; the official one-process shuffle is a no-op for BatchNorm, so it is fed the
    identity there).
    """
    key, b, d = step_key(seed, t), cfg.train.batch_size, cfg.model.projector_dim
    pairs = ((0, b), (1, b)) if cfg.method.forward == "v1" else ((0, 2 * b),)
    shuffled = cfg.model.bn_groups > 1 and cfg.method.shuffle_bn
    out = {f"noise_{t}_{i}": np.asarray(propos.psa_noise(key, i, (rows, d))) for i, rows in pairs}
    for i, rows in pairs:
        out[f"order_{t}_{i}"] = np.asarray(propos.target_shuffle(key, i, rows)) if shuffled else np.arange(rows)
    return out


def make_record_inputs(geometry: Geometry, cfg) -> dict[str, np.ndarray]:
    """Data, views, indices and pseudo-labels of a comparison, from numpy's seeded generator.

    Views are the images with a multiplicative and an additive perturbation, so that the two views
    of a row are related (as augmentations are) without any augmentation code on either side.
    """
    g = geometry
    rng = np.random.default_rng(g.seed)
    shape = (g.image_size, g.image_size, 3)
    images = rng.standard_normal((g.num_examples, *shape))
    record = {"heldout": rng.standard_normal((g.batch, *shape)),
              "pseudo_labels": rng.integers(0, g.num_clusters, g.num_examples).astype(np.int32)}
    steps = {"indices": [], "view1": [], "view2": []}
    for _ in range(g.steps):  # step by step, so that a shorter record is a prefix of a longer one
        rows = rng.permutation(g.num_examples)[: g.batch]
        steps["indices"].append(rows.astype(np.int32))
        for view in ("view1", "view2"):
            noise = rng.standard_normal((2, g.batch, *shape))
            steps[view].append(images[rows] * (1 + 0.2 * noise[0]) + 0.2 * noise[1])
    record.update({k: np.stack(v) for k, v in steps.items()}, images=images)
    # float16 values (exact in float32, which both sides compute in) halve the stored record
    record.update({k: record[k].astype(np.float16) for k in ("images", "view1", "view2", "heldout")})
    for t in range(g.steps):
        record.update(step_randomness(cfg, g.seed, t))
    return record


def initial_state(cfg, geometry: Geometry, official_state_dict: dict[str, np.ndarray], pseudo_labels):
    """A jaxclust ProPos TrainState holding the official initial weights (`jaxclust/convert.py`)."""
    method = propos.build(cfg, geometry.num_examples, geometry.steps_per_epoch)
    sample = jnp.zeros((2, geometry.image_size, geometry.image_size, 3), jnp.float32)
    state = method.init(jax.random.key(geometry.seed), sample)
    state, _ = convert.load_into_state(state, convert.convert_byol_state_dict(official_state_dict))
    return method, state.replace(extra={**state.extra, "pseudo_labels": jnp.asarray(pseudo_labels, jnp.int32)})


_JITTED_STEPS: dict[str, Any] = {}  # config JSON -> jitted train step, so replays compile once


def replay(cfg, geometry: Geometry, record: dict[str, np.ndarray], on_step=None):
    """Runs the record's steps through jaxclust. Returns (final state, per-step metrics as arrays,
    the method); `on_step(t, state)` sees the state after each step t (0-based)."""
    init = {k[len("init/"):]: v for k, v in record.items() if k.startswith("init/")}
    method, state = initial_state(cfg, geometry, init, record["pseudo_labels"])
    key = cfg.to_json() + json.dumps(dataclasses.asdict(geometry))
    step = _JITTED_STEPS.setdefault(key, jax.jit(method.train_step))
    history: dict[str, list] = {"loss": [], "align_loss": [], "psl_loss": [], "lr": [], "ema_momentum": []}
    for t in range(record["indices"].shape[0]):
        state, metrics = step(state, jnp.asarray(record["view1"][t], jnp.float32),
                              jnp.asarray(record["view2"][t], jnp.float32),
                              jnp.asarray(record["indices"][t]), step_key(geometry.seed, t))
        for name in history:
            history[name].append(float(metrics[name]))
        if on_step is not None:
            on_step(t, state)
    return state, {k: np.asarray(v) for k, v in history.items()}, method


def check_randomness(cfg, geometry: Geometry, record) -> list[str]:
    """Names of the recorded noise / shuffle arrays this jax no longer draws identically (a jax RNG
    change would make the replay feed other noise than the official side saw)."""
    bad = []
    for t in range(record["indices"].shape[0]):
        for name, value in step_randomness(cfg, geometry.seed, t).items():
            if not np.array_equal(value, record[name]):
                bad.append(name)
    return bad


# ---------------------------------------------------------------------------------------------
# Comparison


def relative_difference(actual, expected) -> float:
    """max |actual - expected| / max |expected| over the tensor (0 when both are all zero)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        raise ValueError(f"shapes differ: {actual.shape} vs {expected.shape}")
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    err = np.max(np.abs(actual - expected)) if expected.size else 0.0
    return float(err / scale) if scale > 0 else float(err)


def loss_error(actual: float, expected: float) -> float:
    """|actual - expected| relative to max(|expected|, 1).

    A loss is a mean of O(1) terms (cosines, log-sum-exps), so float32 rounds it to ~1e-7 absolute
    whatever its value; where the terms cancel to a value below 1 (a BYOL loss near 0) the error is
    measured against that unit scale instead of the smaller value.
    """
    return abs(float(actual) - float(expected)) / max(abs(float(expected)), 1.0)


def state_groups(state) -> dict[str, Any]:
    """The parts of a ProPos state the comparison reports, in the layout of `convert.py`'s output."""
    return {
        "online params": state.params["net"],
        "online BN stats": state.batch_stats["net"],
        "predictor params": state.params["predictor"],
        "predictor BN stats": state.batch_stats["predictor"],
        "target params": state.target_params,
        "target BN stats": state.target_batch_stats,
    }


def official_groups(official_state_dict: dict[str, np.ndarray]) -> dict[str, Any]:
    """The same parts of an official BYOLWrapper state dict."""
    c = convert.convert_byol_state_dict(official_state_dict)
    return {
        "online params": c["online"]["params"], "online BN stats": c["online"]["batch_stats"],
        "predictor params": c["predictor"]["params"], "predictor BN stats": c["predictor"]["batch_stats"],
        "target params": c["target"]["params"], "target BN stats": c["target"]["batch_stats"],
    }


def compare_states(state, official_state_dict) -> dict[str, tuple[float, str]]:
    """{group: (largest relative difference over its layers, the layer where it is)}; `compare_groups`."""
    return compare_groups(state_groups(state), official_groups(official_state_dict))


def compare_groups(ours: dict, theirs: dict) -> dict[str, tuple[float, str]]:
    """Relative differences layer by layer: max |ours - theirs| over a layer's arrays (a BatchNorm's
    scale and bias, a Linear's kernel and bias, BN statistics' mean and var) over max |theirs| there.

    Per layer, not per array: a BN bias acts next to its scale (y = scale x^ + bias, x^ of unit size),
    and its gradient is a sum that nearly cancels (the layers after it normalise again), so its own
    value is small and carries float32 rounding of the scale's size. The predictor's first bias is the
    extreme: 0 at init with an exactly zero gradient, so it holds rounding noise only.
    """
    out = {}
    for group in ours:
        a, b = _layers(ours[group]), _layers(theirs[group])
        if set(a) != set(b):
            raise ValueError(f"{group}: layers differ: {sorted(set(a) ^ set(b))[:4]}")
        out[group] = max(((_layer_difference(a[p], b[p]), p) for p in a), default=(0.0, ""))
    return out


def _layers(tree) -> dict[str, dict[str, np.ndarray]]:
    """{layer path: {array name: array}} of a parameter or statistics tree."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        out.setdefault(jax.tree_util.keystr(path[:-1]), {})[jax.tree_util.keystr(path[-1:])] = np.asarray(leaf)
    return out


def _layer_difference(ours: dict, theirs: dict) -> float:
    """`relative_difference` over all of a layer's arrays together."""
    if set(ours) != set(theirs):
        raise ValueError(f"arrays differ: {sorted(set(ours) ^ set(theirs))}")
    return relative_difference(*(np.concatenate([side[k].ravel() for k in sorted(ours)]) for side in (ours, theirs)))


def embed(method, state, images, batch_size: int = 256) -> np.ndarray:
    """The E-step features (l2-normalised target projector, eval mode) of `images`."""
    fn = jax.jit(method.embed)
    return np.concatenate([np.asarray(fn(state, jnp.asarray(images[i:i + batch_size], jnp.float32)))
                           for i in range(0, len(images), batch_size)])


def e_step_labels(features, init) -> np.ndarray:
    """jaxclust's E-step k-means from the given centres (the official code forces n_init = 1 then)."""
    return np.asarray(kmeans.kmeans_from_init(jnp.asarray(features), jnp.asarray(init)).labels)


def loss_table(history: dict[str, np.ndarray], record) -> list[dict]:
    """Per step: both sides' total, PSL and alignment losses and their relative differences."""
    rows = []
    for t in range(len(history["loss"])):
        row = {"step": t + 1}
        for name in ("loss", "psl_loss", "align_loss"):
            ours, theirs = history[name][t], float(record[f"official_{name}"][t])
            row[name] = (ours, theirs, loss_error(ours, theirs))
        rows.append(row)
    return rows


# Keys every setting's record shares (same seed, same geometry): stored once, in common.npz.
COMMON = ("images", "heldout", "view1", "view2", "indices", "pseudo_labels")


def save_records(directory, records: dict[str, dict]) -> None:
    """Writes records as directory/common.npz (what they share) and directory/<setting>.npz."""
    first = next(iter(records.values()))
    common = {k: v for k, v in first.items() if k in COMMON or k.startswith("init/")}
    os.makedirs(directory, exist_ok=True)
    np.savez_compressed(os.path.join(directory, "common.npz"), **common)
    for name, record in records.items():
        shared = all(np.array_equal(record[k], v) for k, v in common.items())
        # a record with other data (another seed) is stored whole; load_record lets it override
        np.savez_compressed(os.path.join(directory, f"{name}.npz"),
                            **{k: v for k, v in record.items() if not (shared and k in common)})


def load_record(directory, name: str) -> dict[str, np.ndarray]:
    """The whole record of setting `name` from a `save_records` directory (its own arrays first)."""
    return {**np.load(os.path.join(directory, "common.npz")), **np.load(os.path.join(directory, f"{name}.npz"))}


def describe(setting: Setting, geometry: Geometry) -> dict[str, str]:
    return {"setting": json.dumps(dataclasses.asdict(setting)), "geometry": json.dumps(dataclasses.asdict(geometry))}


def from_record(record) -> tuple[Setting, Geometry]:
    return Setting(**json.loads(str(record["setting"]))), Geometry(**json.loads(str(record["geometry"])))


__all__ = [
    "GEOMETRIES", "RTOL", "SETTINGS", "STEP1_LOSS_RTOL", "Geometry", "Setting", "check_randomness",
    "compare_groups", "compare_states", "describe", "e_step_labels", "embed", "from_record", "initial_state",
    "loss_error", "loss_table", "load_record", "make_config", "make_record_inputs", "relative_difference", "replay", "save_records",
    "step_key", "step_randomness",
]
