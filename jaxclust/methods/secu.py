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
unnormalised and normalised in every forward pass; weight decay on every parameter, centres included;
each view is its own BatchNorm batch. The official learning rates are generic `optim` options (set by
the SeCu configs): the initialisation epoch is `optim.frozen_epochs=1` (encoder lr 0, centres
trained), then `optim.schedule='warmup_cosine_to_end'` (linear warm-up, cosine to 0) at the unscaled
`optim.lr` (`optim.lr_batch_scaling='none'`); the centres keep the constant `method.centers_lr`
(`optim.make_optimizer`'s constant_lr). `method.center_update=closed_form` is SeCu-CF (§3.3, Table 3;
not in the official code): the centres skip the optimiser and are set after each step to the
hardness-aware mean of Eq. 4 over the epoch so far, w_j = Pi(sum (1 - p_ij) x_i), from sums kept in
`state.extra`.

Per-instance labels, duals / counts and the epoch-start centres live in `state.extra`; epoch-boundary
work (freezing the centres, resetting the size-constraint counters) is done by the step whose
`state.step` opens an epoch. The E-step (`cluster`) runs no k-means: its labels are the head-K
prediction argmax_j x.w_j of un-augmented images (SeCu §4, SCAN's protocol), or the stored labels.

`method.init_from` warm-starts SeCu from another SeCu run (STL-10's stage 2, App. C.1): encoder and the
centres of the heads this run keeps come from that run's newest checkpoint (`read_run`), everything
else starts fresh. The self-labeling stage (SeCu §4.2) is its own method, `secu_self_label.py`.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxclust import checkpoint, losses, optim
from jaxclust.config import ConfigError, choose, in_range, nonnegative, positive
from jaxclust.methods.common import Method, apply_train
from jaxclust.models import build_backbone
from jaxclust.models.heads import MLPHead
from jaxclust.state import initial_state

UNASSIGNED = -1  # stored label of an instance no step has assigned yet

# SeCu Table 5 (seed_secu.md §9), SeCu-Size, mean of runs: the paper scores the test split, the loop the
# training images it clusters; STL-10 is after stage 2 (secu_stl10_stage2.py).
PUBLISHED = {
    ("cifar10", "resnet18"): {"nmi": 0.793, "acc": 0.881, "ari": 0.775, "source": "SeCu Table 5 (SeCu-Size, mean)"},
    ("cifar20", "resnet18"): {"nmi": 0.507, "acc": 0.500, "ari": 0.350, "source": "SeCu Table 5 (SeCu-Size, mean)"},
    ("stl10", "resnet18"): {"nmi": 0.694, "acc": 0.802, "ari": 0.639,
                            "source": "SeCu Table 5 (SeCu-Size, mean, after stage 2)"},
}


def method_config() -> ml_collections.ConfigDict:
    """The `method` section of a SeCu config: defaults are the official CIFAR-10 run (run_cifar10.sh).

    The official optimiser is set in the `optim` section (configs/secu_cifar10.py): optim.schedule =
    'warmup_cosine_to_end', optim.frozen_epochs = 1 (the initialisation epoch, paper §4),
    optim.lr_batch_scaling = 'none', optim.predictor_lr_mult = 1 (SeCu has no predictor).
    """
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
    m.centers_lr = 1.2  # constant centre learning rate (no schedule, frozen epochs or scaling), official --secu-clr
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
    return m


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
    positive(cfg, "method.num_heads")
    for key in ("method.proj_temperature", "method.center_temperature"):
        in_range(cfg, key, 0, open_low=True)
    in_range(cfg, "method.label_weight", 0, 1)
    in_range(cfg, "method.size_gamma", 0, 1, open_low=True)
    nonnegative(cfg, "method.dual_lr", "method.entropy_alpha", "method.centers_lr")
    optim.require_no_predictor(cfg)
    if not isinstance(m.init_from, str):
        raise ConfigError(f"method.init_from must be a workdir path ('' = off), got {m.init_from!r}.")
    if m.init_from:
        checkpoint.checkpoint_directory(m.init_from, "method.init_from")  # fails here, before the data is loaded


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
# The network, and reading it from another SeCu run's checkpoint


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


def head_names(n: int) -> tuple[str, ...]:
    return tuple(f"head{h:02d}" for h in range(n))  # zero-padded: sorted pytree order = head order


def read_run(cfg, net: nn.Module, sizes, key: str, workdir: str) -> dict:
    """What a later stage takes from the SeCu run in `workdir` (config `key`), from its newest checkpoint:
    {"net", "batch_stats": its encoder; "centers", "labels": for each size in `sizes`, the centres (as
    stored, un-normalised) and the stored labels (N,) of its head of that size}; its other heads and
    everything else are dropped. The encoder must have this config's architecture (same parameter and
    BatchNorm-statistic paths, shapes and dtypes). Called outside jit, before anything is compiled."""
    source = checkpoint.restore_newest(workdir, key)  # as saved: a run of any N and number of heads loads
    params = source.get("params") if isinstance(source, dict) else None
    if not (isinstance(params, dict) and "net" in params and isinstance(params.get("centers"), dict)):
        raise ConfigError(f"{key} {str(workdir)!r} does not hold a SeCu run (its checkpoint has no params.net and "
                          "params.centers); pass the workdir of a SeCu run.")
    size = cfg.data.image_size
    sample = jax.ShapeDtypeStruct((2, size, size, len(cfg.augment.mean)), jnp.float32)
    like = jax.eval_shape(lambda x: net.init(jax.random.key(0), x, train=False), sample)
    encoder = {"params": params["net"], "batch_stats": source.get("batch_stats", {})}
    checkpoint.require_same_structure(
        checkpoint.leaf_specs(encoder), checkpoint.leaf_specs({k: like[k] for k in ("params", "batch_stats") if k in like}),
        key, workdir, "an encoder of another architecture than this config's",
        "set model.* as in that run or pass another workdir")
    heads = sorted(params["centers"])  # head order: labels[h] belongs to heads[h]
    by_size = {int(params["centers"][name].shape[0]): h for h, name in enumerate(heads)}
    labels = np.asarray(source.get("extra", {}).get("labels", np.zeros((len(heads), 0), np.int32)))
    centers, kept = [], []
    for k in sizes:
        h = by_size.get(k)
        if h is None or params["centers"][heads[h]].shape[1:] != (cfg.model.projector_dim,):
            raise ConfigError(
                f"{key} {str(workdir)!r} has no head of {k} centres of dimension {cfg.model.projector_dim} (its "
                f"heads: {sorted(by_size)}); set cluster.num_clusters and method.num_heads to heads of that run.")
        centers.append(jnp.asarray(params["centers"][heads[h]], jnp.float32))
        kept.append(labels[h] if h < len(labels) else None)
    return {"net": encoder["params"], "batch_stats": encoder["batch_stats"], "centers": centers, "labels": kept}


# ------------------------------------------------------------------------------------------------
# The method


def build(cfg, num_examples: int, steps_per_epoch: int) -> Method:
    m = cfg.method
    net = Encoder(cfg.model)
    sizes = head_sizes(cfg)
    names = head_names(len(sizes))
    dim = cfg.model.projector_dim
    size_constraint = m.constraint == "size"
    closed_form = m.center_update == "closed_form"
    # method.init_from: read here, outside jit (the jitted init closes over the restored arrays)
    warm = read_run(cfg, net, sizes, "method.init_from", m.init_from) if m.init_from else None
    # official: SGD groups encoder (the schedule) and centres (constant lr); SeCu-CF sets the centres itself
    groups = dict(untrained=("centers",)) if closed_form else dict(constant_lr={"centers": m.centers_lr})
    tx, lr_fn = optim.make_optimizer(cfg.optim, steps_per_epoch, cfg.train.epochs, cfg.train.batch_size, **groups)

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
            centers = dict(zip(names, warm["centers"]))
            frozen = jax.tree.map(losses.l2_normalize, centers)  # W^p; step 0 opens an epoch and refreezes
        extra = {
            "labels": jnp.full((len(sizes), num_examples), UNASSIGNED, jnp.int32),
            "duals": {name: jnp.zeros((k,), jnp.float32) for name, k in zip(names, sizes)},
            "counts": {name: jnp.zeros((k,), jnp.float32) for name, k in zip(names, sizes)},
            "frozen_centers": frozen,
        }
        if closed_form:  # SeCu-CF's S_h (K_h, d) and Z_h (K_h,) of the epoch so far
            extra["cf_sums"] = {name: jnp.zeros((k, dim), jnp.float32) for name, k in zip(names, sizes)}
            extra["cf_weights"] = {name: jnp.zeros((k,), jnp.float32) for name, k in zip(names, sizes)}
        return initial_state(tx, {"net": net_vars["params"], "centers": centers}, net_vars["batch_stats"], extra=extra)

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
            z1, stats = apply_train(net, params["net"], state.batch_stats, view1)
            z2, stats = apply_train(net, params["net"], stats, view2)  # each view is its own BN batch (official)
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
        metrics.update(lr=lr_fn(state.step - 1),
                       changed=jnp.mean((new_labels[0] != stored[0]).astype(jnp.float32)))
        return state, metrics

    def embed(state, images):
        """l2-normalised head output x of un-augmented images, eval-mode BN (SCAN's evaluation)."""
        z = net.apply({"params": state.params["net"], "batch_stats": state.batch_stats}, images, train=False)
        return losses.l2_normalize(z)

    def assign(state, features):
        """The head-K prediction argmax_j x.w_j and its cosine (SeCu §4)."""
        return most_similar(features, losses.l2_normalize(state.params["centers"][names[0]]))

    def cluster(state, features, key):
        del key
        predicted = np.asarray(assign(state, features)[0])
        stored_labels = np.asarray(state.extra["labels"][0])
        seen = stored_labels >= 0
        info = {"stored_agreement": float(np.mean(predicted[seen] == stored_labels[seen])) if seen.any() else 0.0}
        if m.eval_labels == "stored":
            labels = np.where(seen, stored_labels, predicted).astype(np.int32)
        else:
            labels = predicted
        return state, labels, info

    return Method("secu", init, train_step, embed, cluster, assign=assign)


def most_similar(features, centers):
    """(argmax_j x.w_j, max_j x.w_j) of each row against the normalised centres w (K, d)."""
    scores = features @ centers.T
    return jnp.argmax(scores, axis=1).astype(jnp.int32), jnp.max(scores, axis=1)
