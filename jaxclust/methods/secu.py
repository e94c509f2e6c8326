"""SeCu: stable cluster discrimination (Qian, ICCV 2023). Reference: shared/reference/seed_secu.md.

One encoder f (backbone + 2-layer MLP head, l2-normalised output x) and H clustering heads, head h
with K_h = (h + 1) K trainable centres. No target network, no queue. Per step, for each head:

    y^{t-1} = stored label of each instance (from the last epoch)
    y^t     = argmax_j  mean_s x^s.w_j + rho_j              (size constraint, Eq. 9, dual ascent on rho)
            | argmax_j  mean_s x^s.w_j - alpha Delta_ij     (entropy constraint, Eq. 11, global counts)
    loss_x  = soft-label CE of x^s against the centres frozen at the epoch start,
              target tau onehot(y^{t-1}) + (1 - tau) softmax(other view)   (Eq. 7; encoder only)
    loss_c  = SeCu loss of the detached x^s against the current centres with y^t (Eq. 3; centres only)

averaged over the two views and the H heads; one optimiser step on both. As the official code
(`idstcv/SeCu`): the assignment uses the cosine, not log p (seed_secu.md §12.1); the centres are stored
unnormalised and normalised in every forward pass; the first epoch is the initialisation epoch (encoder
learning rate 0, centres trained); the encoder then warms up linearly and decays with a cosine to 0,
the centres keep a constant learning rate; weight decay on every parameter, centres included. Each view
is its own BatchNorm batch. `method.center_update=closed_form` is SeCu-CF (§3.3, Table 3; not in the
official code): the centres skip the optimiser and are set after each step to the hardness-aware mean
of Eq. 4 over the epoch so far, w_j = Pi(sum (1 - p_ij) x_i), from sums kept in `state.extra`.

Per-instance labels, duals / counts and the epoch-start centres live in `state.extra`; epoch-boundary
work (freezing the centres, resetting the size-constraint counters) is done by the step whose
`state.step` opens an epoch. The E-step (`cluster`) runs no k-means: its labels are the head-K
prediction argmax_j x.w_j of un-augmented images (SeCu §4, SCAN's protocol), or the stored labels.

The optional self-labeling stage (SeCu §4.2) is `method.self_label.*`: a run that loads a finished
SeCu run's checkpoint and fine-tunes its head-K classifier; see `self_label_config`. `method.init_from`
warm-starts SeCu itself from another SeCu run (STL-10's stage 2, App. C.1): encoder and the centres of
the heads this run keeps come from that run's newest checkpoint, everything else starts fresh.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxclust import losses
from jaxclust.config import ConfigError, choose
from jaxclust.methods.common import Method
from jaxclust.models import build_backbone
from jaxclust.models.heads import MLPHead
from jaxclust.state import TrainState

UNASSIGNED = -1  # stored label of an instance no step has assigned yet


def method_config() -> ml_collections.ConfigDict:
    """The `method` section of a SeCu config: defaults are the official CIFAR-10 run (run_cifar10.sh)."""
    m = ml_collections.ConfigDict()
    m.name = "secu"
    m.constraint = "size"  # size: SeCu-Size (Eq. 8-9) | entropy: SeCu-Entropy (Eq. 10-11)
    m.num_heads = 10  # heads with K, 2K, ..., 10K centres; head K is evaluated (paper §4)
    m.proj_temperature = 0.05  # lambda of the representation loss, official --secu-tx
    m.center_temperature = 0.05  # lambda of the centre loss, official --secu-tw (STL-10: 1)
    m.label_weight = 0.2  # tau: weight of the last epoch's one-hot label in the soft label, Eq. 7
    m.size_gamma = 0.9  # gamma: cluster size lower bound gamma N / K (Table 9), official --secu-lratio
    m.dual_lr = 0.1  # eta_rho of the dual ascent, official --secu-dual-lr
    m.entropy_alpha = 6000.0  # alpha of Eq. 10; paper: 6 N / 50 (CIFAR 6000, Table 4)
    m.centers_lr = 1.2  # constant centre learning rate, official --secu-clr (CIFAR-10)
    m.init_epoch = True  # first epoch: encoder lr 0, assignments and centres initialised (paper §4)
    # Ambiguities (seed_secu.md §12) and ablations that change results:
    m.assign_score = "cosine"  # cosine: x.w as official & §4 | log_prob: log p of Eq. 9/11 (retune eta, alpha)
    m.center_loss = "secu"  # secu: positives-only centre gradient (Eq. 3) | ce: plain CE (Table 2 ablation)
    m.eval_labels = "predict"  # predict: argmax x.w_j of un-augmented images (paper) | stored: training labels
    # How the centres follow the centre loss (SeCu §3.3, Table 3; seed_secu.md §5.3, §12.10):
    #   sgd: SeCu-SGD, the optimiser steps on the centre loss at method.centers_lr (official code, default)
    #   closed_form: SeCu-CF, no learning rate, momentum or weight decay on the centres; per head the
    #     sums S_j += (1 - p_ij) x_i^s, Z_j += 1 - p_ij over both views with y^t and p from the current
    #     centres and center_temperature, reset at every epoch start (the spec's reading); after each
    #     step w_j = Pi(S_j) (Eq. 4 over the epoch so far) where Z_j > 0, else w_j is kept.
    m.center_update = "sgd"
    # SeCu-CF only: w_j <- Pi((1 - beta) Pi(S_j) + beta w_j). 0 is the paper's update (default). The spec
    # (§12.10) finds the undamped fixed point oscillates for fixed x at lambda 0.05 / 0.2 and recommends
    # beta 0.9 at center_temperature 0.05, 0.5 at 0.2; none is needed at 1.
    m.center_damping = 0.0
    # Warm start (SeCu App. C.1, STL-10 stage 2; seed_secu.md §7.3): '' = off, else the workdir of a SeCu run.
    # Its newest checkpoint gives the encoder (net params + BatchNorm statistics) and, for each head of this
    # run (sizes K, 2K, ... from cluster.num_clusters and num_heads), the centres of its head of the same size;
    # its other heads are dropped. Optimiser state, labels, duals / counts and the step start fresh. The
    # model.* settings must match that run's (checked before anything is compiled).
    m.init_from = ""
    m.self_label = self_label_config()
    return m


def self_label_config() -> ml_collections.ConfigDict:
    """`method.self_label`: the optional second stage (SeCu §4.2, App. C.1; SCAN's self-labeling).

    Not in the official code; the paper gives: SGD, momentum 0.9, threshold 0.9, 10 epochs of warm-up
    on the fixed SeCu assignments, 100 epochs (small data sets), batch 1024 (seed_secu.md §7.4, §12.16).
    The stage trains cross-entropy of view 2's prediction against view 1's confident argmax. The views
    are those of `augment`: for SCAN's weak/strong pair set view 1 to the plain image and view 2 to
    SCAN's strong transform, RandAugment + Cutout with `augment.asymmetric`,
    `augment.view2.randaugment_ops` (SCAN: 4) and `augment.view2.cutout_length` (CIFAR: 16, STL-10:
    32), as configs/secu_cifar10_self_label.py does (jaxclust.data.randaugment).
    """
    s = ml_collections.ConfigDict()
    s.enabled = False
    s.init_workdir = ""  # workdir of the finished SeCu run whose last checkpoint is fine-tuned
    s.threshold = 0.9  # confidence for a pseudo-label (paper; SCAN itself uses 0.99)
    s.warmup_epochs = 10  # epochs trained on all instances with the fixed SeCu labels (paper)
    return s


def validate(cfg) -> None:
    m = cfg.method
    choose(cfg, "method.constraint", ("size", "entropy"))
    choose(cfg, "method.assign_score", ("cosine", "log_prob"))
    choose(cfg, "method.center_loss", ("secu", "ce"))
    choose(cfg, "method.eval_labels", ("predict", "stored"))
    choose(cfg, "method.center_update", ("sgd", "closed_form"))
    if not 0.0 <= m.center_damping < 1.0:
        raise ConfigError(
            f"method.center_damping must lie in [0, 1), got {m.center_damping!r}; 0 is the paper's SeCu-CF, "
            "the spec recommends 0.9 at method.center_temperature 0.05 and 0.5 at 0.2."
        )
    if m.center_update == "closed_form" and m.center_loss != "secu":
        raise ConfigError(
            "method.center_update='closed_form' is the closed form of the SeCu centre loss (Eq. 4); the 'ce' "
            "ablation has none. Set method.center_loss='secu' or method.center_update='sgd'."
        )
    if not isinstance(m.num_heads, int) or m.num_heads < 1:
        raise ConfigError(f"method.num_heads must be a positive integer, got {m.num_heads!r}.")
    for key in ("proj_temperature", "center_temperature"):
        if not m[key] > 0:
            raise ConfigError(f"method.{key} must be positive, got {m[key]!r}.")
    if not 0.0 <= m.label_weight <= 1.0:
        raise ConfigError(f"method.label_weight must lie in [0, 1], got {m.label_weight!r}.")
    if not 0.0 < m.size_gamma <= 1.0:
        raise ConfigError(f"method.size_gamma must lie in (0, 1], got {m.size_gamma!r}.")
    if m.dual_lr < 0 or m.entropy_alpha < 0 or m.centers_lr < 0:
        raise ConfigError("method.dual_lr, method.entropy_alpha and method.centers_lr must be non-negative.")
    if cfg.optim.name != "sgd":
        raise ConfigError(f"SeCu trains with SGD (official main.py); set optim.name=sgd, got {cfg.optim.name!r}.")
    if not isinstance(m.init_from, str):
        raise ConfigError(f"method.init_from must be a workdir path ('' = off), got {m.init_from!r}.")
    if m.init_from:
        if m.self_label.enabled:
            raise ConfigError("method.init_from warm-starts SeCu training, the self-labeling stage reads "
                              "method.self_label.init_workdir instead; set --config.method.init_from=''.")
        checkpoint_directory(m.init_from, "method.init_from")  # fails here, before the data is loaded
    if m.self_label.enabled:  # init_workdir is checked when the stage loads it
        if not 0.0 <= m.self_label.threshold < 1.0:
            raise ConfigError(f"method.self_label.threshold must lie in [0, 1), got {m.self_label.threshold!r}.")
        if not 0 <= m.self_label.warmup_epochs <= cfg.train.epochs:
            raise ConfigError("method.self_label.warmup_epochs must lie between 0 and train.epochs.")
    elif cfg.train.epochs <= int(m.init_epoch) + cfg.optim.warmup_epochs:
        raise ConfigError(
            f"train.epochs ({cfg.train.epochs}) must exceed the initialisation epoch plus optim.warmup_epochs "
            f"({int(m.init_epoch)} + {cfg.optim.warmup_epochs}); official CIFAR-10 uses 401 = 1 + 400."
        )


# ------------------------------------------------------------------------------------------------
# Assignment with constraints (seed_secu.md §4.4, §4.5). Pure functions of one head's arrays.


def size_constrained_assign(scores: jax.Array, duals: jax.Array) -> jax.Array:
    """Eq. 9 with the cosine for log p: y_i = argmax_j s_ij + rho_j, the whole batch from one rho."""
    return jnp.argmax(scores + duals[None, :], axis=1).astype(jnp.int32)


def dual_ascent(duals: jax.Array, labels: jax.Array, lr: float, gamma: float) -> jax.Array:
    """rho <- rho - eta (count_j / b - gamma / K), clipped at 0 when gamma < 1 (official `update_dual_mini_batch`).

    With gamma = 1 the constraint is an equality and the official code leaves the duals free.
    """
    k, b = duals.shape[0], labels.shape[0]
    counts = jnp.bincount(labels, length=k).astype(duals.dtype)
    duals = duals - lr * counts / b + lr * gamma / k
    return jnp.maximum(duals, 0.0) if gamma < 1.0 else duals


def _xlogx_increase(p: jax.Array, h) -> jax.Array:
    """phi(p + h) - phi(p) for phi(q) = q log q, p >= 0, h > 0, without cancellation."""
    safe = jnp.where(p > 0, p, 1.0)
    return jnp.where(p > 0, p * jnp.log1p(h / safe), 0.0) + h * jnp.log(p + h)


def entropy_change(counts: jax.Array, current: jax.Array) -> jax.Array:
    """Delta_ij: change of sum_k q_k log q_k (minus the data set entropy) if instance i takes label j.

    counts: (K,) float global cluster counts, B = their sum. current: (b,) stored labels, UNASSIGNED
    for an instance not yet counted. An assigned instance (label l) moves from l to j, q = c / B:
    Delta_ij = [phi(q_l - 1/B) - phi(q_l)] + [phi(q_j + 1/B) - phi(q_j)], Delta_il = 0 (official
    epoch >= 1). An unassigned one is added, q = c / (B + 1): Delta_ij = phi(q_j + 1/(B+1)) - phi(q_j)
    (official epoch 0; all zeros, i.e. greedy, when B = 0). Returns (b, K).
    """
    k = counts.shape[0]
    total = jnp.sum(counts)
    # move: the instance is already counted in B
    step = 1.0 / jnp.maximum(total, 1.0)
    q = counts / jnp.maximum(total, 1.0)
    gain = _xlogx_increase(q, step)  # (K,): phi(q_j + 1/B) - phi(q_j)
    loss = -_xlogx_increase(jnp.maximum(q - step, 0.0), step)  # (K,): phi(q_l - 1/B) - phi(q_l)
    assigned = current >= 0
    own = jnp.where(assigned, current, 0)
    move = loss[own][:, None] + gain[None, :]
    move = jnp.where(jax.nn.one_hot(own, k, dtype=bool), 0.0, move)
    # add: B + 1 instances after adding this one
    add = _xlogx_increase(counts / (total + 1.0), 1.0 / (total + 1.0))
    return jnp.where(assigned[:, None], move, add[None, :])


def entropy_constrained_assign(scores: jax.Array, counts: jax.Array, current: jax.Array, alpha: float) -> jax.Array:
    """Eq. 11 with the cosine for log p: y_i = argmax_j s_ij - alpha Delta_ij, the batch in parallel (official)."""
    return jnp.argmax(scores - alpha * entropy_change(counts, current), axis=1).astype(jnp.int32)


def count_update(counts: jax.Array, new: jax.Array, current: jax.Array) -> jax.Array:
    """Global counts after the batch moves from `current` (UNASSIGNED: not yet counted) to `new`."""
    k = counts.shape[0]
    added = jnp.bincount(new, length=k)
    removed = jnp.bincount(jnp.where(current >= 0, current, k), length=k + 1)[:k]
    return counts + (added - removed).astype(counts.dtype)


def closed_form_centers(centers: jax.Array, sums: jax.Array, weights: jax.Array, damping: float = 0.0) -> jax.Array:
    """SeCu-CF's centres after a step (SeCu §3.3 w^{t:B}; Eq. 4 over the B instances of the epoch so far).

    centers: (K, d) current l2-normalised w_j; sums S_j (K, d) and weights Z_j (K,) accumulated by
    `losses.secu_closed_form_statistics` since the epoch start. w_j <- Pi(S_j) (= Pi(S_j / Z_j)) where
    Z_j > 0, else w_j is kept. With damping beta > 0: w_j <- Pi((1 - beta) Pi(S_j) + beta w_j)
    (seed_secu.md §12.10's remedy for the oscillating undamped fixed point).
    """
    target = losses.l2_normalize(sums)
    if damping:
        target = losses.l2_normalize((1.0 - damping) * target + damping * centers)
    return jnp.where(weights[:, None] > 0, target, centers)


# ------------------------------------------------------------------------------------------------
# Schedule and optimiser


def learning_rate(step, base_lr: float, warmup_epochs: int, epochs: int, steps_per_epoch: int, init_epoch: bool):
    """Encoder learning rate at the 0-based step c (official main.py `adjust_learning_rate`).

    With I steps per epoch and o = I if the initialisation epoch is on (else 0): 0 for c < o; linear
    warm-up base * max(1, c - o) / (W I) for c < o + W I; then base * (1 + cos(pi (c - o - W I) /
    (E I - o - W I))) / 2, which ends at 0.
    """
    c = jnp.asarray(step, jnp.float32)
    i = float(steps_per_epoch)
    o = i if init_epoch else 0.0
    warm = float(warmup_epochs) * i
    total = float(epochs) * i
    lr_warm = base_lr * jnp.maximum(1.0, c - o) / max(warm, 1.0)
    lr_cos = base_lr * 0.5 * (1.0 + jnp.cos(math.pi * (c - o - warm) / max(total - o - warm, 1.0)))
    return jnp.where(c < o, 0.0, jnp.where(c < o + warm, lr_warm, lr_cos))


def make_optimizer(cfg, steps_per_epoch: int, encoder_lr, train_centers: bool = True):
    """Two SGD groups as official SeCu: encoder under `encoder_lr(step)`, centres at the constant
    method.centers_lr; torch semantics (coupled weight decay on every parameter, momentum buffer).
    `train_centers=False` (SeCu-CF) leaves the centres to the caller: their update is zero."""
    o = cfg.optim

    def sgd(lr):
        return optax.chain(optax.add_decayed_weights(o.weight_decay), optax.trace(o.momentum, nesterov=o.nesterov),
                           optax.scale_by_schedule(lambda n: -lr(n)))

    def labels(params):
        return {name: jax.tree.map(lambda _: name, sub) for name, sub in params.items()}

    centers = sgd(lambda n: cfg.method.centers_lr) if train_centers else optax.set_to_zero()
    return optax.multi_transform({"net": sgd(encoder_lr), "centers": centers}, labels)


# ------------------------------------------------------------------------------------------------
# The method


class Encoder(nn.Module):
    """f: backbone, then the MLP head (Linear-BN-ReLU-Linear, SeCu Table 1's 2-layer head); un-normalised."""

    model_cfg: Any

    def setup(self):
        self.backbone = build_backbone(self.model_cfg)
        self.head = MLPHead(self.model_cfg.projector_hidden, self.model_cfg.projector_dim)

    def __call__(self, x, train: bool = True):
        return self.head(self.backbone(x, train=train), train=train)


def head_sizes(cfg) -> tuple[int, ...]:
    """K_h = (h + 1) K for h < num_heads (SeCu §4: K, 2K, ..., 10K)."""
    return tuple((h + 1) * cfg.cluster.num_clusters for h in range(cfg.method.num_heads))


def _head_names(n: int) -> tuple[str, ...]:
    return tuple(f"head{h:02d}" for h in range(n))  # zero-padded: sorted pytree order = head order


# ------------------------------------------------------------------------------------------------
# Reading another run's checkpoint (method.init_from, method.self_label.init_workdir)


def checkpoint_directory(workdir: str, key: str) -> Path:
    """WORKDIR/checkpoints of the run named by config `key`; ConfigError if it is missing. Checked before a
    Checkpointer is opened, which would create the directory."""
    directory = Path(workdir) / "checkpoints"  # jaxclust.checkpoint.Checkpointer's default directory
    if not directory.is_dir():
        raise ConfigError(f"{key} {str(workdir)!r} has no checkpoint (no {str(directory)!r}); train a SeCu run "
                          "in that workdir first or pass the workdir of one.")
    return directory


def restore_newest(workdir: str, key: str, like=None):
    """The state in the newest checkpoint of the run in `workdir` (named by config `key` in errors): a
    TrainState shaped as `like`, or with `like=None` the saved tree as nested dicts of whatever shapes it has."""
    from jaxclust.checkpoint import Checkpointer  # late: only the stages that read another run need it

    checkpoint_directory(workdir, key)
    checkpointer = Checkpointer(workdir)
    try:
        epoch = checkpointer.latest_epoch()
        if epoch is None:
            raise ConfigError(f"{key} {str(workdir)!r} has no complete checkpoint; train a SeCu run in that "
                              "workdir first or pass the workdir of one.")
        try:
            state, _ = checkpointer.restore(epoch, like)
        except (ValueError, KeyError, TypeError) as error:  # orbax: the saved tree does not fit `like`
            raise ConfigError(f"{key} {str(workdir)!r}: its checkpoint of epoch {epoch} does not fit this config "
                              f"({type(error).__name__}: {str(error)[:200]}); use the settings of that run.") from error
    finally:
        checkpointer.close()
    return state


def _shapes(tree) -> dict:
    return {jax.tree_util.keystr(path): (tuple(leaf.shape), str(leaf.dtype))
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def load_warm_start(cfg, net: nn.Module, names, sizes) -> dict:
    """method.init_from: {"net", "batch_stats", "centers"} from the newest checkpoint of that SeCu run.

    The encoder must have this config's architecture (same parameter and BatchNorm-statistic paths,
    shapes and dtypes); this run's head `names[h]` of `sizes[h]` centres takes that run's head of the
    same size, its other heads are dropped. Called outside jit, before anything is compiled."""
    key, workdir = "method.init_from", cfg.method.init_from
    source = restore_newest(workdir, key)  # no target: a run of any N and number of heads loads
    params = source.get("params") if isinstance(source, dict) else None
    if not (isinstance(params, dict) and "net" in params and isinstance(params.get("centers"), dict)):
        raise ConfigError(f"{key} {str(workdir)!r} does not hold a SeCu run (its checkpoint has no params.net and "
                          "params.centers); pass the workdir of a SeCu run.")
    size = cfg.data.image_size
    sample = jax.ShapeDtypeStruct((2, size, size, len(cfg.augment.mean)), jnp.float32)
    like = jax.eval_shape(lambda x: net.init(jax.random.key(0), x, train=False), sample)
    encoder = {"params": params["net"], "batch_stats": source.get("batch_stats", {})}
    for part in ("params", "batch_stats"):
        got, want = _shapes(encoder[part]), _shapes(like[part])
        if got != want:
            where = sorted(set(got) ^ set(want)) or sorted(p for p in got if got[p] != want[p])
            raise ConfigError(
                f"{key} {str(workdir)!r} holds an encoder of another architecture (its {part} differ from this "
                f"config's at {where[0]}: {got.get(where[0])} there, {want.get(where[0])} here); set model.* as "
                "in that run or pass another workdir.")
    by_size = {int(c.shape[0]): c for _, c in sorted(params["centers"].items())}
    centers = {}
    for name, k in zip(names, sizes):
        if k not in by_size or by_size[k].shape[1:] != (cfg.model.projector_dim,):
            raise ConfigError(
                f"{key} {str(workdir)!r} has no head of {k} centres of dimension {cfg.model.projector_dim} (its "
                f"heads: {sorted(by_size)}); set cluster.num_clusters and method.num_heads to heads of that run.")
        centers[name] = jnp.asarray(by_size[k], jnp.float32)
    return {"net": encoder["params"], "batch_stats": encoder["batch_stats"], "centers": centers}


def build(cfg, num_examples: int, steps_per_epoch: int) -> Method:
    if cfg.method.self_label.enabled:
        return build_self_label(cfg, num_examples, steps_per_epoch)
    m = cfg.method
    net = Encoder(cfg.model)
    sizes = head_sizes(cfg)
    names = _head_names(len(sizes))
    dim = cfg.model.projector_dim
    size_constraint = m.constraint == "size"
    closed_form = m.center_update == "closed_form"
    # method.init_from: read here, outside jit (the jitted init closes over the restored arrays)
    warm = load_warm_start(cfg, net, names, sizes) if m.init_from else None

    def encoder_lr(n):
        return learning_rate(n, cfg.optim.lr, cfg.optim.warmup_epochs, cfg.train.epochs, steps_per_epoch, m.init_epoch)

    tx = make_optimizer(cfg, steps_per_epoch, encoder_lr, train_centers=not closed_form)

    def init(key, sample):
        k_net, k_centers = jax.random.split(key)
        if warm is None:
            net_vars = net.init(k_net, sample, train=False)
            # official: center = F.normalize(torch.randn(d, K), dim=0); stored as (K, d) rows here
            centers = {
                name: losses.l2_normalize(jax.random.normal(jax.random.fold_in(k_centers, h), (k, dim)))
                for h, (name, k) in enumerate(zip(names, sizes))
            }
            frozen = jax.tree.map(jnp.array, centers)
        else:  # method.init_from: the other run's encoder and kept centres, as stored (un-normalised)
            net_vars = {"params": warm["net"], "batch_stats": warm["batch_stats"]}
            centers = dict(warm["centers"])
            frozen = jax.tree.map(losses.l2_normalize, centers)  # W^p; step 0 opens an epoch and refreezes
        params = {"net": net_vars["params"], "centers": centers}
        extra = {
            "labels": jnp.full((len(sizes), num_examples), UNASSIGNED, jnp.int32),
            "duals": {name: jnp.zeros((k,), jnp.float32) for name, k in zip(names, sizes)},
            "counts": {name: jnp.zeros((k,), jnp.float32) for name, k in zip(names, sizes)},
            "frozen_centers": frozen,
        }
        if closed_form:  # SeCu-CF's S_h (K_h, d) and Z_h (K_h,) of the epoch so far
            extra["cf_sums"] = {name: jnp.zeros((k, dim), jnp.float32) for name, k in zip(names, sizes)}
            extra["cf_weights"] = {name: jnp.zeros((k,), jnp.float32) for name, k in zip(names, sizes)}
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=net_vars["batch_stats"],
            target_params={},
            target_batch_stats={},
            opt_state=tx.init(params),
            extra=extra,
        )

    def apply_net(params, stats, x):
        z, updates = net.apply({"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
        return z, updates["batch_stats"]

    def assignment_scores(x1, x2, w):
        s1, s2 = x1 @ w.T, x2 @ w.T
        if m.assign_score == "log_prob":
            s1, s2 = (jax.nn.log_softmax(s / m.center_temperature, axis=1) for s in (s1, s2))
        return 0.5 * (s1 + s2)

    def train_step(state, view1, view2, indices, key):
        del key  # SeCu draws no random numbers in the step
        opens_epoch = state.step % steps_per_epoch == 0
        # official: "keep last cluster centers before each epoch", normalised and detached
        frozen = jax.tree.map(
            lambda old, c: jnp.where(opens_epoch, losses.l2_normalize(c), old),
            state.extra["frozen_centers"], state.params["centers"],
        )
        counts = state.extra["counts"]
        if size_constraint:  # official: size-constraint counters are reset each epoch (logging only)
            counts = jax.tree.map(lambda c: jnp.where(opens_epoch, 0.0, c), counts)
        stored = state.extra["labels"][:, indices]  # (H, b)

        def loss_fn(params):
            z1, stats = apply_net(params["net"], state.batch_stats, view1)
            z2, stats = apply_net(params["net"], stats, view2)  # each view is its own BN batch (official)
            x1, x2 = losses.l2_normalize(z1), losses.l2_normalize(z2)
            d1, d2 = jax.lax.stop_gradient(x1), jax.lax.stop_gradient(x2)
            rep, cen, new_labels, duals, new_counts, cf_stats = [], [], [], {}, {}, {}
            for h, name in enumerate(names):
                w = losses.l2_normalize(params["centers"][name])
                previous = stored[h]
                scores = jax.lax.stop_gradient(assignment_scores(d1, d2, w))
                if size_constraint:
                    label = size_constrained_assign(scores, state.extra["duals"][name])
                    duals[name] = dual_ascent(state.extra["duals"][name], label, m.dual_lr, m.size_gamma)
                    new_counts[name] = counts[name] + jnp.bincount(label, length=w.shape[0])
                else:
                    label = entropy_constrained_assign(scores, counts[name], previous, m.entropy_alpha)
                    duals[name] = state.extra["duals"][name]
                    new_counts[name] = count_update(counts[name], label, previous)
                new_labels.append(label)
                if closed_form:  # both views, y^t, p from the current centres (seed_secu.md §12.10)
                    sum1, weight1 = losses.secu_closed_form_statistics(d1, w, label, m.center_temperature)
                    sum2, weight2 = losses.secu_closed_form_statistics(d2, w, label, m.center_temperature)
                    cf_stats[name] = (sum1 + sum2, weight1 + weight2)
                stable = m.center_loss == "secu"
                cen.append(0.5 * (losses.secu_center_loss(d1, w, label, m.center_temperature, stable)
                                  + losses.secu_center_loss(d2, w, label, m.center_temperature, stable)))
                # y^{t-1}; an instance seen for the first time (the initialisation epoch) uses y^t
                last = jnp.where(previous >= 0, previous, label)
                wp = frozen[name]
                rep.append(losses.secu_soft_label_loss(x1 @ wp.T / m.proj_temperature,
                                                       x2 @ wp.T / m.proj_temperature, last, m.label_weight))
            loss_x, loss_c = jnp.mean(jnp.stack(rep)), jnp.mean(jnp.stack(cen))  # official: / (2 H)
            loss = loss_x + loss_c
            aux = (stats, jnp.stack(new_labels), duals, new_counts, cf_stats)
            return loss, (aux, {"loss": loss, "loss_x": loss_x, "loss_c": loss_c})

        (_, ((batch_stats, new_labels, duals, new_counts, cf_stats), metrics)), grads = jax.value_and_grad(
            loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        extra = {
            "labels": state.extra["labels"].at[:, indices].set(new_labels),
            "duals": duals,
            "counts": new_counts,
            "frozen_centers": frozen,
        }
        if closed_form:  # SeCu-CF: the centres come from the epoch's sums, not from the optimiser
            sums, weights, centers = {}, {}, {}
            for name in names:  # the sums restart with every epoch (seed_secu.md §3, §12.10)
                sums[name] = jnp.where(opens_epoch, 0.0, state.extra["cf_sums"][name]) + cf_stats[name][0]
                weights[name] = jnp.where(opens_epoch, 0.0, state.extra["cf_weights"][name]) + cf_stats[name][1]
                centers[name] = closed_form_centers(losses.l2_normalize(state.params["centers"][name]),
                                                    sums[name], weights[name], m.center_damping)
            params = {**params, "centers": centers}
            extra.update(cf_sums=sums, cf_weights=weights)
        state = state.replace(step=state.step + 1, params=params,
                              batch_stats=batch_stats, opt_state=opt_state, extra=extra)
        metrics.update(lr=encoder_lr(state.step - 1),
                       changed=jnp.mean((new_labels[0] != stored[0]).astype(jnp.float32)))
        return state, metrics

    def embed(state, images):
        """l2-normalised head output x of un-augmented images, eval-mode BN (SCAN's evaluation)."""
        z = net.apply({"params": state.params["net"], "batch_stats": state.batch_stats}, images, train=False)
        return losses.l2_normalize(z)

    def cluster(state, features, key):
        del key
        w = losses.l2_normalize(state.params["centers"][names[0]])
        predicted = np.asarray(jnp.argmax(features @ w.T, axis=1)).astype(np.int32)
        stored_labels = np.asarray(state.extra["labels"][0])
        seen = stored_labels >= 0
        info = {"stored_agreement": float(np.mean(predicted[seen] == stored_labels[seen])) if seen.any() else 0.0}
        if m.eval_labels == "stored":
            labels = np.where(seen, stored_labels, predicted).astype(np.int32)
        else:
            labels = predicted
        return state, labels, info

    return Method("secu", init, train_step, embed, cluster)


# ------------------------------------------------------------------------------------------------
# Self-labeling stage (SeCu §4.2): fine-tune the head-K classifier of a finished SeCu run


def load_secu_state(cfg, num_examples: int, steps_per_epoch: int, sample):
    """The last TrainState of the SeCu run in method.self_label.init_workdir (its config must match this one's)."""
    if not cfg.method.self_label.init_workdir:
        raise ConfigError("method.self_label.enabled needs method.self_label.init_workdir, the workdir of a SeCu run.")
    source_cfg = ml_collections.ConfigDict(cfg.to_dict())
    source_cfg.method.self_label.enabled = False
    like = jax.eval_shape(build(source_cfg, num_examples, steps_per_epoch).init, jax.random.key(0), sample)
    return restore_newest(cfg.method.self_label.init_workdir, "method.self_label.init_workdir", like)


def build_self_label(cfg, num_examples: int, steps_per_epoch: int) -> Method:
    """Cross-entropy of view 2's prediction softmax(x.w / lambda_w) on head K against view 1's argmax
    where its confidence exceeds the threshold; the first warm-up epochs train every instance on the
    stored SeCu labels instead. Encoder, MLP head and the head-K centres are all trained, with SGD at
    optim.lr (warm-up then cosine, no initialisation epoch) and the centres at method.centers_lr."""
    m, s = cfg.method, cfg.method.self_label
    net = Encoder(cfg.model)
    name = _head_names(1)[0]
    # read here, outside jit: the jitted init closes over the restored arrays
    size = cfg.data.image_size
    source = load_secu_state(cfg, num_examples, steps_per_epoch, jnp.zeros((2, size, size, len(cfg.augment.mean))))

    def encoder_lr(n):
        return learning_rate(n, cfg.optim.lr, cfg.optim.warmup_epochs, cfg.train.epochs, steps_per_epoch, False)

    tx = make_optimizer(cfg, steps_per_epoch, encoder_lr)

    def init(key, sample):
        del key, sample
        params = {"net": source.params["net"], "centers": {name: source.params["centers"][name]}}
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=source.batch_stats,
                          target_params={}, target_batch_stats={}, opt_state=tx.init(params),
                          extra={"secu_labels": source.extra["labels"][0]})

    def logits_of(params, stats, x, train):
        if train:
            z, updates = net.apply({"params": params["net"], "batch_stats": stats}, x, train=True,
                                   mutable=["batch_stats"])
            stats = updates["batch_stats"]
        else:
            z = net.apply({"params": params["net"], "batch_stats": stats}, x, train=False)
        w = losses.l2_normalize(params["centers"][name])
        return losses.l2_normalize(z) @ w.T / m.center_temperature, stats

    def train_step(state, view1, view2, indices, key):
        del key
        warmup = state.step < s.warmup_epochs * steps_per_epoch

        def loss_fn(params):
            weak, stats = logits_of(params, state.batch_stats, view1, True)
            strong, stats = logits_of(params, stats, view2, True)
            probs = jax.lax.stop_gradient(jax.nn.softmax(weak, axis=1))
            stored = state.extra["secu_labels"][indices]
            target = jnp.where(warmup, jnp.where(stored >= 0, stored, jnp.argmax(probs, axis=1)),
                               jnp.argmax(probs, axis=1))
            keep = jnp.where(warmup, 1.0, (jnp.max(probs, axis=1) > s.threshold).astype(jnp.float32))
            ce = jax.nn.logsumexp(strong, axis=1) - jnp.take_along_axis(strong, target[:, None], axis=1)[:, 0]
            loss = jnp.sum(keep * ce) / jnp.maximum(jnp.sum(keep), 1.0)
            return loss, (stats, {"loss": loss, "confident": jnp.mean(keep)})

        (_, (stats, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                              batch_stats=stats, opt_state=opt_state)
        metrics.update(lr=encoder_lr(state.step - 1))
        return state, metrics

    def embed(state, images):
        z = net.apply({"params": state.params["net"], "batch_stats": state.batch_stats}, images, train=False)
        return losses.l2_normalize(z)

    def cluster(state, features, key):
        del key
        w = losses.l2_normalize(state.params["centers"][name])
        return state, np.asarray(jnp.argmax(features @ w.T, axis=1)).astype(np.int32), {}

    return Method("secu_self_label", init, train_step, embed, cluster)
