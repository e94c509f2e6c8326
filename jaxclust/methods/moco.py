"""MoCo v2 (He et al., CVPR 2020; Chen et al., 2020), as ProPos compares with it and PCL builds on it.

Query encoder f (backbone + head), key encoder f' (EMA of f's parameters; it keeps BatchNorm
statistics of its own), and a queue of r keys from past batches. For a batch with views x, x+:

    q = normalize(f(x)),  k = normalize(f'(x+)),  loss = InfoNCE(q, k, queue, tau)     (PCL Eq. 11, 1st term)

then the keys of the batch are enqueued (FIFO) over the oldest ones. As in the official code
(facebookresearch/moco, salesforce/PCL, Hzzone/ProPos `moco_wrapper.py`) the momentum update runs
first, with the online weights from before this step's optimiser update, and the keys are computed
with the updated key encoder in train mode (batch statistics; its running statistics updated).

Symmetric loss (ProPos §5.1.4, `symmetric: true`): the two directions x -> x+ and x+ -> x are summed
(official `loss_12 + loss_21`), both against the same queue, and the keys of both views are enqueued
afterwards ([k(x), k(x+)]), 2B per step.

Shuffled BN: the official key encoder shuffles the batch across GPUs so that each GPU's BatchNorm sees
a random sub-batch, unrelated to the queries' sub-batches. Here every BatchNorm normalises over the
global batch (one device, or GSPMD over the ('data',) mesh computing global statistics), and a
permutation of the rows of one BN batch changes nothing; shuffled BN is therefore a no-op and is not
implemented. Per-device ("ghost") BN would be the way to reintroduce the official per-GPU statistics.

The queue lives in `state.extra`: "queue" (r, D) rows of unit norm, initialised as normalised
Gaussian noise (official `randn` + normalize), and "queue_ptr", the row where the next keys go;
r must be a multiple of the keys per step (official `assert K % batch_size == 0`).

The E-step of this file only scores the representation: spherical k-means on the key-encoder
features (what ProPos clusters for its MoCo rows; official `feature_extractor = encoder_k`).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxclust import losses, optim
from jaxclust.config import ConfigError, choose, in_range, positive
from jaxclust.methods.common import Method, Pair, apply_train, extra_state, kmeans_method, kmeans_state
from jaxclust.models import backbone_out_dim, build_backbone
from jaxclust.models.heads import MLPHead, NoNorm
from jaxclust.models.resnet import BatchNorm, torch_default_bias_init, torch_default_kernel_init
from jaxclust.state import ema_update, initial_state

PUBLISHED = {}  # ProPos' MoCo rows are in its Table 2 for ResNet-34 only; none is keyed here yet

HEADS = ("mlp", "linear", "mlp_bn")


def method_config(preset: str = "propos") -> ml_collections.ConfigDict:
    """The `method` section of a MoCo config.

    preset "propos": MoCo v2 as ProPos ran it for its comparisons (§5.1.3-5.1.4, Hzzone/ProPos
    `moco.py`); "official": MoCo v2's own ImageNet values (facebookresearch/moco, `--mlp --moco-t 0.2
    --aug-plus --cos`).
    """
    if preset not in ("propos", "official"):
        raise ValueError(f"MoCo preset must be 'propos' or 'official', got {preset!r}.")
    m = ml_collections.ConfigDict()
    m.name = "moco"
    if preset == "propos":
        m.temperature = 1.0  # ProPos §5.1.4 "temperature for InfoNCE loss ... 1.0" (json moco_temp: 1)
        m.queue_size = 4096  # ProPos §5.1.4
        m.ema_momentum = 0.99  # ProPos §5.1.4 "0.99 for MoCo v2"
        m.symmetric = True  # ProPos §5.1.4 "symmetric loss for all methods"
    else:
        m.temperature = 0.2  # MoCo v2 --moco-t 0.2
        m.queue_size = 65536  # MoCo --moco-k 65536
        m.ema_momentum = 0.999  # MoCo --moco-m 0.999
        m.symmetric = False
    m.ema_increase = False  # MoCo: constant momentum
    m.head = "mlp"  # mlp: Linear-ReLU-Linear, no BN (MoCo v2 --mlp) | linear (MoCo v1) | mlp_bn (BYOL's)
    return m


class Encoder(nn.Module):
    """Backbone, then the head; its output is the (un-normalised) feature the losses normalise.

    head "mlp": Linear(hidden) -> ReLU -> Linear(dim) (MoCo v2, PCL v2; ProPos uses hidden = the
    backbone's width); "linear": Linear(dim) (MoCo v1, PCL v1); "mlp_bn": BYOL's Linear-BN-ReLU-Linear.
    Sizes: model.projector_hidden, model.projector_dim.
    """

    model_cfg: Any
    head: str = "mlp"

    def setup(self):
        self.backbone = build_backbone(self.model_cfg)
        hidden, dim = self.model_cfg.projector_hidden, self.model_cfg.projector_dim
        if self.head == "linear":  # torch nn.Linear's default init
            fan_in = backbone_out_dim(self.model_cfg)
            self.projector = nn.Dense(dim, kernel_init=torch_default_kernel_init,
                                      bias_init=torch_default_bias_init(fan_in))
        else:
            self.projector = MLPHead(hidden, dim, norm=BatchNorm if self.head == "mlp_bn" else NoNorm)

    def __call__(self, x, train: bool = True):
        h = self.backbone(x, train=train)
        if self.head == "linear":
            return self.projector(h)
        return self.projector(h, train=train)


def queue_rows_per_step(cfg) -> int:
    """Keys enqueued per step: the global batch, twice with the symmetric loss."""
    return cfg.train.batch_size * (2 if cfg.method.symmetric else 1)


KEYS = ("temperature", "queue_size", "ema_momentum", "ema_increase", "symmetric", "head")


def require_keys(cfg, keys, source: str) -> None:
    """ConfigError naming the `method.*` keys a method needs that the config lacks."""
    missing = [k for k in keys if k not in cfg.method]
    if missing:
        raise ConfigError(
            f"method.name={cfg.method.name!r} needs method.{', method.'.join(missing)}; build the config's "
            f"method section with {source} (e.g. c.method = {source})."
        )


def validate_keys(cfg) -> None:
    """Checks the MoCo keys of `cfg.method` (also used by PCL's "MoCo + PCL")."""
    require_keys(cfg, KEYS, "jaxclust.methods.moco.method_config()")
    optim.require_no_predictor(cfg)
    m = cfg.method
    choose(cfg, "method.head", HEADS)
    in_range(cfg, "method.temperature", 0, open_low=True)
    in_range(cfg, "method.ema_momentum", 0, 1)
    positive(cfg, "method.queue_size")
    per_step = queue_rows_per_step(cfg)
    if m.queue_size % per_step:
        raise ConfigError(
            f"method.queue_size ({m.queue_size}) must be a multiple of the keys enqueued per step "
            f"({per_step} = train.batch_size{' x 2 views (method.symmetric)' if m.symmetric else ''}); "
            f"use {max(1, round(m.queue_size / per_step)) * per_step}."
        )


def validate(cfg) -> None:
    validate_keys(cfg)


def enqueue(queue: jax.Array, ptr: jax.Array, keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Official `_dequeue_and_enqueue`: keys (G, D) overwrite rows ptr .. ptr+G-1; ptr <- (ptr + G) mod r.

    Needs r % G == 0 (checked by `validate`), so a block never wraps around the end.
    """
    queue = jax.lax.dynamic_update_slice(queue, keys.astype(queue.dtype), (ptr, jnp.zeros_like(ptr)))
    return queue, (ptr + keys.shape[0]) % queue.shape[0]


def build(cfg, num_examples: int, steps_per_epoch: int, *, name: str = "moco", terms=()) -> Method:
    """MoCo v2. PCL builds on it: `terms` (`common.LossTerm`) are added to the loss of each direction
    and summed over the directions like the InfoNCE terms; a term's `Pair.online` is the raw query
    (B, D), `Pair.target` the keys of the direction, `Pair.prediction` None."""
    mcfg = cfg.method
    net = Encoder(cfg.model, mcfg.head)
    tx, lr_fn = optim.make_optimizer(cfg.optim, steps_per_epoch, cfg.train.epochs, cfg.train.batch_size)
    total_steps = steps_per_epoch * cfg.train.epochs
    dim = cfg.model.projector_dim

    def init(key, sample):
        k_net, k_queue = jax.random.split(key)
        net_vars = net.init(k_net, sample, train=False)
        params = {"net": net_vars["params"]}
        batch_stats = {"net": net_vars.get("batch_stats", {})}
        queue = losses.l2_normalize(jax.random.normal(k_queue, (mcfg.queue_size, dim), jnp.float32))
        extra = {
            "queue": queue,
            "queue_ptr": jnp.zeros((), jnp.int32),
            # the E-step's labels and centres (scored; MoCo's loss does not use them)
            **kmeans_state(num_examples, cfg.cluster.num_clusters, dim),
            **extra_state(terms),
        }
        # official: the key encoder starts as a copy of the query encoder
        return initial_state(tx, params, batch_stats, target="net", extra=extra)

    def train_step(state, view1, view2, indices, key):
        n = state.step + 1  # 1-based iteration count of the official schedules
        epoch = state.step // steps_per_epoch
        momentum = optim.ema_momentum(n, mcfg.ema_momentum, total_steps, mcfg.ema_increase)
        # official: the momentum update opens forward, before the keys, with the pre-step online weights
        target_params = ema_update(state.target_params, state.params["net"], momentum)

        # directions (query view, key view); official symmetric: contrastive_loss(x, x+), then (x+, x)
        directions = ((view1, view2), (view2, view1)) if mcfg.symmetric else ((view1, view2),)
        target_stats, keys = state.target_batch_stats, []
        for _, x_key in directions:
            k, target_stats = apply_train(net, target_params, target_stats, x_key)
            keys.append(jax.lax.stop_gradient(losses.l2_normalize(k)))
        queue = state.extra["queue"]

        def loss_fn(params):
            stats, instance, extra = state.batch_stats["net"], [], []
            for i, ((x_query, _), k) in enumerate(zip(directions, keys)):
                q, stats = apply_train(net, params["net"], stats, x_query)
                instance.append(losses.info_nce_loss(losses.l2_normalize(q), k, queue, mcfg.temperature))
                pair = Pair(state, q, None, k, indices, jax.random.fold_in(key, 1000 + i), epoch)
                extra += [term.loss(pair) for term in terms]
            # ProPos moco_wrapper / pcl_wrapper: the two directions are summed, not averaged
            info_nce = jnp.sum(jnp.stack(instance))
            loss, terms_out = info_nce, {"info_nce_loss": info_nce}
            for t in range(len(terms)):  # each term summed over the directions, like InfoNCE
                own = extra[t::len(terms)]
                loss = loss + jnp.sum(jnp.stack([e for e, _ in own]))
                terms_out.update(jax.tree.map(lambda *v: jnp.sum(jnp.stack(v)), *[m for _, m in own]))
            return loss, ({"net": stats}, {"loss": loss, **terms_out})

        (_, (batch_stats, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        # official: enqueue after the logits, [k(view1), k(view2)] in the symmetric case
        new_keys = jnp.concatenate(keys[::-1]) if mcfg.symmetric else keys[0]
        queue, ptr = enqueue(queue, state.extra["queue_ptr"], new_keys)
        state = state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            batch_stats=batch_stats,
            target_params=target_params,
            target_batch_stats=target_stats,
            opt_state=opt_state,
            extra={**state.extra, "queue": queue, "queue_ptr": ptr},
        )
        metrics.update(lr=lr_fn(state.step - 1), ema_momentum=momentum)
        return state, metrics

    def embed(state, images):
        """Key-encoder features in eval mode, l2-normalised (official feature_extractor = encoder_k)."""
        z = net.apply({"params": state.target_params, "batch_stats": state.target_batch_stats}, images, train=False)
        return losses.l2_normalize(z)

    return kmeans_method(cfg, name, init, train_step, embed)
