"""ProPos: prototype scattering loss + positive sampling alignment on BYOL (Huang et al., TPAMI 2022).

Online network f (backbone + projector) and predictor g, target network f' (EMA of f). For two views
x, x+ of a batch with pseudo-labels y (from the E-step k-means):

    loss = align(g(f(x) + sigma * eps), f'(x+))  +  lambda * PSL(f(x), f'(x+), y)      (Eq. 10, Eq. 4)

symmetrised over the two views. As in the official code, PSL and the noise sigma are off during the
learning-rate warm-up, the target runs in train mode on its own BatchNorm statistics, and the EMA
uses the online weights from before the optimiser step.

Plain BYOL is this method with lambda = 0 and sigma = 0 (see `byol.py`).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxclust import losses, optim
from jaxclust.config import ConfigError, choose, count, in_range, nonnegative
from jaxclust.models import build_backbone, make_norm
from jaxclust.models.heads import MLPHead
from jaxclust.methods.common import Method, Pair, apply_train, extra_state, kmeans_method, kmeans_state
from jaxclust.state import ema_update, initial_state

# Published numbers (fractions) to read a report against, by (data.name, model.backbone), or with
# data.image_size as a third element where the paper reports several sizes.
PUBLISHED = {
    ("imagenet10", "resnet34", 224): {"nmi": 0.908, "acc": 0.962, "ari": 0.918, "source": "ProPos Table 10 (224 px)"},
    ("imagenet_dogs", "resnet34", 224): {"nmi": 0.737, "acc": 0.775, "ari": 0.675, "source": "ProPos Table 10 (224 px)"},
    ("cifar10", "resnet34"): {"nmi": 0.886, "acc": 0.943, "ari": 0.884, "source": "ProPos Table 2"},
    ("cifar20", "resnet34"): {"nmi": 0.606, "acc": 0.614, "ari": 0.451, "source": "ProPos Table 2"},
    ("stl10", "resnet34"): {"nmi": 0.758, "acc": 0.867, "ari": 0.737, "source": "ProPos Table 2"},
    ("imagenet10", "resnet34"): {"nmi": 0.896, "acc": 0.956, "ari": 0.906, "source": "ProPos Table 2 (96 px)"},
    ("imagenet_dogs", "resnet34"): {"nmi": 0.692, "acc": 0.745, "ari": 0.627, "source": "ProPos Table 2 (96 px)"},
    ("cifar10", "resnet18"): {"nmi": 0.851, "acc": 0.916, "ari": 0.835, "source": "ProPos Table 6 (mean of runs)"},
    ("cifar20", "resnet18"): {"nmi": 0.582, "acc": 0.578, "ari": 0.423, "source": "ProPos Table 6 (mean of runs)"},
    ("tinyimagenet", "resnet18"): {"nmi": 0.405, "acc": 0.256, "ari": 0.143, "source": "ProPos Table 3"},
    ("imagenet2012", "resnet50"): {"ami": 0.525, "linear_top1": 0.722, "source": "ProPos Tables 4 and 5"},
}


def method_config() -> ml_collections.ConfigDict:
    """The `method` section of a ProPos config: the official CIFAR-10 ResNet-18 run
    (`config/cifar10_r18_propos.yml` of Hzzone/ProPos) unless a comment says otherwise."""
    m = ml_collections.ConfigDict()
    m.name = "propos"
    m.psl_weight = 0.1  # lambda_psl, official cluster_loss_weight
    # The epoch PSL starts at; 0: at the end of the learning-rate warm-up (optim.warmup_epochs), as in
    # the official code. Later lets the features settle first: PSL holds the partition it starts on.
    m.psl_start_epoch = 0
    m.temperature = 0.5  # tau of PSL
    m.sigma = 0.001  # PSA noise std, official latent_std
    m.psl_terms = "both"  # both | alignment | uniformity (ablation, ProPos Eq. 5, Table 6)
    m.forward = "v1"  # v1: two symmetric passes | v2: views concatenated (official forward_v2)
    m.ema_momentum = 0.996  # official momentum_base
    m.ema_increase = False  # cosine increase to 1 (official momentum_increase)
    # Emulate the official PSL of a W-GPU run on one global batch: per-GPU absent-cluster masks and a
    # PSL gradient scaled by 1/W (its gather layer + DDP averaging). 1 = the paper's global-batch PSL.
    m.psl_processes = 1
    # Memory queue of target features for PSL (ProPos Sec. 5.9, Fig. 8; official queue_size, v1 only):
    # prototypes from batch + queue, queued labels re-read from the current pseudo-labels. 0 = off.
    m.psl_queue_size = 0
    # forward_v2's rows on bn_groups > 1: "views" keeps each view's rows together (BN groups as v1's);
    # "processes" lays them out as the official multi-GPU run gathers them (per-GPU BN over both views,
    # PSL halves scored with misaligned labels: propos_official.md §5.1)
    m.v2_layout = "views"
    m.shuffle_bn = True  # official shuffling_bn: target batch shuffled across BN groups (bn_groups > 1)
    # PSL's negatives mu_k.mu_j of the online prototypes (official code) | target: mu_k.mu'_j (HaDis Eq. 9)
    m.psl_negatives = "online"
    return m


class EncoderProjector(nn.Module):
    """f: backbone, then the projector MLP. Its output is the (un-normalised) representation."""

    model_cfg: Any

    def setup(self):
        self.backbone = build_backbone(self.model_cfg)
        self.projector = MLPHead(self.model_cfg.projector_hidden, self.model_cfg.projector_dim,
                                 norm=make_norm(self.model_cfg))

    def __call__(self, x, train: bool = True):
        return self.projector(self.backbone(x, train=train), train=train)


def validate(cfg) -> None:
    nonnegative(cfg, "method.psl_weight", "method.sigma")
    if "psl_start_epoch" in cfg.method:  # absent from the config.json of older runs
        count(cfg, "method.psl_start_epoch", "the end of the learning-rate warm-up")
    in_range(cfg, "method.temperature", 0, open_low=True)
    in_range(cfg, "method.ema_momentum", 0, 1)
    if "psl_queue_size" in cfg.method:  # absent from the config.json of runs older than the queue
        count(cfg, "method.psl_queue_size", "off")
    choose(cfg, "method.psl_terms", ("both", "alignment", "uniformity"))
    choose(cfg, "method.psl_negatives", ("online", "target"))
    choose(cfg, "method.forward", ("v1", "v2"))
    queue = cfg.method.get("psl_queue_size", 0)
    if queue and (cfg.method.forward != "v1" or queue % (2 * cfg.train.batch_size)
                  or cfg.method.get("psl_processes", 1) != 1):
        raise ConfigError(
            f"method.psl_queue_size ({queue}) needs method.forward='v1', psl_processes=1 and a multiple of "
            f"2 x train.batch_size ({2 * cfg.train.batch_size}), as the official queue."
        )
    layout = cfg.method.get("v2_layout", "views")
    if layout not in ("views", "processes"):
        raise ConfigError(f"method.v2_layout must be one of 'views', 'processes'; got {layout!r}.")
    if layout == "processes" and cfg.model.bn_groups == 1:
        raise ConfigError("method.v2_layout='processes' emulates a multi-GPU forward_v2: set model.bn_groups "
                          "to the number of GPUs (and method.forward='v2').")
    processes = cfg.method.get("psl_processes", 1)
    if not isinstance(processes, int) or processes < 1 or cfg.train.batch_size % processes:
        raise ConfigError(
            f"method.psl_processes must be a positive integer dividing train.batch_size "
            f"({cfg.train.batch_size}), got {processes!r}."
        )


def build(cfg, num_examples: int, steps_per_epoch: int, *, name: str = "propos", terms=()) -> Method:
    """The ProPos method. `byol.py`, PCL's "BYOL + PCL" and `hadis.py` build on it: `terms`
    (`common.LossTerm`) are added to the loss of each forward pair, averaged over the pairs like the
    alignment loss; a term's `Pair.online` is the raw online projector output, `Pair.prediction` the
    predictor output (after the PSA noise) and `Pair.target` the target features it is aligned to."""
    mcfg = cfg.method
    net = EncoderProjector(cfg.model)
    # official: predictor Linear weights N(0, 0.01), biases 0
    predictor = MLPHead(cfg.model.predictor_hidden, cfg.model.projector_dim, init="normal_0.01",
                        norm=make_norm(cfg.model))
    tx, lr_fn = optim.make_optimizer(cfg.optim, steps_per_epoch, cfg.train.epochs, cfg.train.batch_size)
    total_steps = steps_per_epoch * cfg.train.epochs
    queue_size = mcfg.get("psl_queue_size", 0)
    num_clusters = cfg.cluster.num_clusters

    def init(key, sample):
        k_net, k_pred = jax.random.split(key)
        net_vars = net.init(k_net, sample, train=False)
        z = net.apply(net_vars, sample, train=False)
        pred_vars = predictor.init(k_pred, z, train=False)
        params = {"net": net_vars["params"], "predictor": pred_vars["params"]}
        batch_stats = {"net": net_vars["batch_stats"], "predictor": pred_vars["batch_stats"]}
        extra = {
            **kmeans_state(num_examples, num_clusters, cfg.model.projector_dim),
            **extra_state(terms),
            **(psl_queue_state(jax.random.fold_in(key, 1)) if queue_size else {}),
        }
        # official: the target starts as a deep copy of the online encoder + projector
        return initial_state(tx, params, batch_stats, target="net", extra=extra)

    # official shuffling_bn: the target sees a shuffled batch, so that its per-GPU BatchNorm groups
    # mix examples; only ghost BN (model.bn_groups > 1) makes the order matter.
    shuffle = cfg.model.bn_groups > 1 and mcfg.get("shuffle_bn", True)

    def target_features(target_params, state, views, key):
        """f'(x) for each view in turn, l2-normalised, threading the target's own BN statistics."""
        stats, outs = state.target_batch_stats, []
        for i, x in enumerate(views):
            order = target_shuffle(key, i, x.shape[0]) if shuffle else None
            z, stats = apply_train(net, target_params, stats, x if order is None else x[order])
            z = z if order is None else z[jnp.argsort(order)]
            outs.append(losses.l2_normalize(z))
        return [jax.lax.stop_gradient(k) for k in outs], stats

    # forward_v2's row layout. "views": [view 1 | view 2], BN groups within a view. "processes": as the
    # official W-process run gathers it, [process 0: view 1, view 2 | process 1: ...], so that each BN
    # group holds one process's two views, and its chunk(2) halves hold processes 0..W/2-1 and the
    # rest, each scored with the labels of the whole batch in order (the official misalignment, §5.1).
    layout_groups = cfg.model.bn_groups if mcfg.get("v2_layout", "views") == "processes" else 1
    psl_processes = mcfg.get("psl_processes", 1)

    def by_process(a, b):
        pairs = zip(jnp.split(a, layout_groups), jnp.split(b, layout_groups))
        return jnp.concatenate([x for pair in pairs for x in pair])

    def v2_owners_for(batch):
        if layout_groups == 1:
            return (None, None)  # each half is one view: its own process slices
        # the process of each row of the gathered 2B rows, as the official GatherLayer routes gradients
        owner = jnp.arange(2 * batch) // (2 * batch // psl_processes)
        return tuple(jnp.split(owner, 2))

    def train_step(state, view1, view2, indices, key):
        n = state.step + 1  # official schedules take the 1-based iteration count
        epoch = state.step // steps_per_epoch
        after_warmup = (epoch >= cfg.optim.warmup_epochs).astype(jnp.float32)
        psl_on = (epoch >= (mcfg.get("psl_start_epoch", 0) or cfg.optim.warmup_epochs)).astype(jnp.float32)
        psl_weight = mcfg.psl_weight * psl_on  # official: PSL x 0 during warm-up (or to psl_start_epoch) ...
        sigma = mcfg.sigma * after_warmup  # ... and the PSA noise too
        labels = state.extra["pseudo_labels"][indices]
        momentum = optim.ema_momentum(n, mcfg.ema_momentum, total_steps, mcfg.ema_increase)
        # official: the EMA runs inside forward with the online weights from before this step's
        # update; v1 averages after its target passes, v2 before them (forward_v2 starts with it)
        averaged_target = ema_update(state.target_params, state.params["net"], momentum)

        if mcfg.forward == "v1":
            # official forward_loss(x1 -> x2) then (x2 -> x1): the target sees view 2 first
            (k2, k1), target_stats = target_features(state.target_params, state, (view2, view1), key)
            pairs = ((view1, k2), (view2, k1))
            rows = indices
        else:
            # official forward_v2: one pass over both views concatenated
            (k21,), target_stats = target_features(averaged_target, state, (by_process(view2, view1),), key)
            pairs = ((by_process(view1, view2), k21),)
            labels = jnp.concatenate([labels, labels])  # each half is scored with the B labels in order
            rows = by_process(indices, indices)
            v2_owners = v2_owners_for(indices.shape[0])

        def loss_fn(params):
            stats = state.batch_stats
            align, psl, extra = [], [], []
            for i, (x, k) in enumerate(pairs):
                q, net_stats = apply_train(net, params["net"], stats["net"], x)
                p, pred_stats = apply_train(predictor, params["predictor"], stats["predictor"],
                                            positive_sampling(q, sigma, key, i))
                stats = {"net": net_stats, "predictor": pred_stats}
                pair = Pair(state, q, p, k, rows, jax.random.fold_in(key, 1000 + i), epoch)
                extra += [term.loss(pair) for term in terms]
                align.append(losses.byol_alignment_loss(p, k, mcfg.forward))
                # paper Sec. 5.4.1: the alignment-only PSL is computed after the predictor
                online = p if mcfg.psl_terms == "alignment" else q
                if mcfg.forward == "v1":
                    psl.append(_psl(online, k, labels))
                else:  # official v2 chunks the 2B rows back into two halves (the two views on one process)
                    halves = zip(jnp.split(online, 2), jnp.split(k, 2), jnp.split(labels, 2), v2_owners)
                    for o, kk, y, owner in halves:
                        psl.append(_psl(o, kk, y, owner))
            align_loss, psl_loss = jnp.mean(jnp.stack(align)), jnp.mean(jnp.stack(psl))
            loss = align_loss + psl_weight * psl_loss
            terms_out = {"align_loss": align_loss, "psl_loss": psl_loss}
            for t in range(len(terms)):  # each term averaged over the pairs, like the alignment loss
                own = extra[t::len(terms)]
                loss = loss + jnp.mean(jnp.stack([e for e, _ in own]))
                terms_out.update(jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *[m for _, m in own]))
            return loss, (stats, {"loss": loss, **terms_out})

        def _psl(online, target, y, owner=None):
            return losses.per_process_psl(
                online, target, y, num_clusters, mcfg.temperature, processes=psl_processes, owner=owner,
                terms=mcfg.psl_terms, negatives=mcfg.psl_negatives, **queue_args,
            )

        queue_args = {}
        if queue_size:  # official: queued labels are re-read from the current pseudo-labels every step
            queued = state.extra["psl_queue_index"]
            queue_args = {"queue": (state.extra["psl_queue"], state.extra["pseudo_labels"][queued])}

        (_, (batch_stats, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            batch_stats=batch_stats,
            target_params=averaged_target,
            target_batch_stats=target_stats,
            opt_state=opt_state,
        )
        if queue_size:  # official: enqueue the target features of both passes, [f'(x2), f'(x1)]
            state = state.replace(extra=enqueue(state.extra, jnp.concatenate([k for _, k in pairs]),
                                                jnp.concatenate([indices, indices])))
        metrics.update(lr=lr_fn(state.step - 1), ema_momentum=momentum)
        return state, metrics

    def psl_queue_state(key):
        # official: torch.randn features (not normalised) and index 0 until the first pass fills them
        return {
            "psl_queue": jax.random.normal(key, (queue_size, cfg.model.projector_dim), jnp.float32),
            "psl_queue_index": jnp.zeros((queue_size,), jnp.int32),
            "psl_queue_ptr": jnp.zeros((), jnp.int32),
        }

    def embed(state, images):
        """Target projector features in eval mode, l2-normalised: what the official E-step clusters."""
        z = net.apply({"params": state.target_params, "batch_stats": state.target_batch_stats}, images, train=False)
        return losses.l2_normalize(z)

    return kmeans_method(cfg, name, init, train_step, embed)


def positive_sampling(q: jax.Array, sigma, key, pair: int) -> jax.Array:
    """PSA (ProPos Eq. 9): the online representation moved by Gaussian noise of std `sigma`, so that
    the predictor aligns a neighbourhood of q, not q alone, with the target."""
    return q + sigma * psa_noise(key, pair, q.shape, q.dtype)


def psa_noise(key, pair: int, shape, dtype=jnp.float32) -> jax.Array:
    """The standard normal eps of PSA for forward pair `pair` of a step with key `key` (times sigma)."""
    return jax.random.normal(jax.random.fold_in(key, pair), shape, dtype)


def target_shuffle(key, view: int, n: int) -> jax.Array:
    """The order the target sees the `view`-th batch in under shuffled BN (official `idx_shuffle`)."""
    return jax.random.permutation(jax.random.fold_in(key, 2000 + view), n)


def enqueue(extra: dict, features: jax.Array, indices: jax.Array) -> dict:
    """FIFO memory queue: `features` (n, D) and their example `indices` overwrite the n oldest rows."""
    ptr = extra["psl_queue_ptr"]
    size = extra["psl_queue"].shape[0]
    return {
        **extra,
        "psl_queue": jax.lax.dynamic_update_slice(extra["psl_queue"], features, (ptr, 0)),
        "psl_queue_index": jax.lax.dynamic_update_slice(extra["psl_queue_index"], indices.astype(jnp.int32), (ptr,)),
        "psl_queue_ptr": (ptr + features.shape[0]) % size,
    }
