"""C2BIN: contrasting clusters while bootstrapping instances (ICLR 2021 submission).

Reference: shared/reference/seed_c2bin.md (no official code exists; its §5 lists the readings).
BYOL (runner = online encoder F, projector G and predictor P^a; follower = EMA of F and G) plus
linear softmax cluster heads P^{c,k}, one per K in `method.cluster_heads`, on the runner's pooled
encoder feature r. For two views x', x'' of a batch:

    L_align = 1 - cos(P^a(G(F(x'))), sg(G'(F'(x''))))            Eq. 1, symmetrised by default (A9)
    L_clust = sum_k [ L_bca(Q'_k, Q''_k) - lambda_ent H(s_k) ]      Eq. 4-6, Q_k = softmax(P^{c,k}(r))
    loss    = L_align + lambda_clust L_clust                          Eq. 7
    follower <- gamma follower + (1 - gamma) runner                   Eq. 8, after the optimiser step

No k-means, no memory: cluster labels are argmax of the head whose K is `cluster.num_clusters`
(`method.labels="head"`, the PICA protocol of §4.3); the representation-learning setting, whose heads
(32, 64, 128) have no such head, clusters the runner's l2-normalised r with spherical k-means instead
(`method.labels="kmeans"`). Each view is its own BatchNorm batch; the follower runs in train mode on
its own BatchNorm statistics, as in ProPos/BYOL.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxclust import losses, optim
from jaxclust.config import ConfigError, choose, in_range, nonnegative
from jaxclust.methods.common import Method, apply_train, kmeans_method, kmeans_state, most_probable
from jaxclust.models import build_backbone
from jaxclust.models.heads import MLPHead, NoNorm
from jaxclust.models.resnet import BatchNorm, torch_default_bias_init, torch_default_kernel_init
from jaxclust.state import ema_update, initial_state

PUBLISHED = {}  # C2BIN's tables use other backbones and protocols; none is keyed here yet


def method_config() -> ml_collections.ConfigDict:
    """The `method` section of a C2BIN config: the clustering setting of Table 10 (CIFAR-10)."""
    m = ml_collections.ConfigDict()
    m.name = "c2bin"
    m.cluster_heads = (10, 40, 160)  # K of each head, Table 10 (CIFAR-100-20: (20, 40, 160); Table 5: (32, 64, 128))
    m.temperature = 1.0  # tau of the BCA contrast, Table 10 (Table 5: 0.5)
    m.clust_weight = 1.0  # lambda_clust, Table 10 (Table 5: 2.0)
    m.entropy_weight = 1.0  # lambda_ent, Table 10 and Table 5
    m.ema_momentum = 0.995  # gamma, Table 10 (Table 5: 0.990)
    m.ema_increase = False  # A13: constant gamma; True = BYOL's cosine increase to 1
    m.labels = "head"  # head: argmax of the K = cluster.num_clusters head | kmeans: k-means on runner r
    # Ambiguities of seed_c2bin.md §5 that change results, with the recommended readings as defaults:
    m.bca_normalize = True  # A3: cosine between BCAs (PICA) | False: the raw dot product of Eq. 4
    m.bca_exclude_positive = False  # A4: True = the literal 1[j != i] of Eq. 4 (positive not in the denominator)
    m.bca_symmetric = False  # A5: True = mean of the view'->view'' and view''->view' contrasts
    m.entropy_views = "mean"  # A6: mean | first (view' only, PICA) | sum (both views, CC)
    m.align_symmetric = True  # A9: both directions of Eq. 1 | False: x' -> runner, x'' -> follower only
    m.align_reduce = "mean"  # A9: mean (keeps Eq. 1's scale) | sum (OpenSelfSup's BYOL)
    m.mlp_bn = True  # A10: BatchNorm in the hidden layer of the projector and predictor
    m.ema_timing = "after"  # after: Eq. 8 with the updated runner | before: the pre-step weights (ProPos)
    return m


def validate(cfg) -> None:
    m = cfg.method
    choose(cfg, "method.labels", ("head", "kmeans"))
    choose(cfg, "method.entropy_views", ("mean", "first", "sum"))
    choose(cfg, "method.align_reduce", ("mean", "sum"))
    choose(cfg, "method.ema_timing", ("after", "before"))
    heads = tuple(m.cluster_heads)
    if not heads or any(not isinstance(k, int) or k < 2 for k in heads):
        raise ConfigError(f"method.cluster_heads must be cluster counts >= 2, got {m.cluster_heads!r}.")
    if m.labels == "head" and cfg.cluster.num_clusters not in heads:
        raise ConfigError(
            f"method.labels=head needs a head with cluster.num_clusters ({cfg.cluster.num_clusters}) clusters "
            f"in method.cluster_heads {heads}; add it, or set method.labels=kmeans."
        )
    in_range(cfg, "method.temperature", 0, open_low=True)
    nonnegative(cfg, "method.clust_weight", "method.entropy_weight")
    in_range(cfg, "method.ema_momentum", 0, 1)


class EncoderProjector(nn.Module):
    """F then G: returns (r, z), the pooled encoder feature and the projection."""

    model_cfg: Any
    mlp_bn: bool = True

    def setup(self):
        self.backbone = build_backbone(self.model_cfg)
        norm = BatchNorm if self.mlp_bn else NoNorm
        self.projector = MLPHead(self.model_cfg.projector_hidden, self.model_cfg.projector_dim, norm=norm)

    def __call__(self, x, train: bool = True):
        r = self.backbone(x, train=train)
        return r, self.projector(r, train=train)


class ClusterHeads(nn.Module):
    """P^{c,k}: one linear layer (with bias, PyTorch's default init) per K, on r; returns the logits."""

    sizes: Sequence[int]

    @nn.compact
    def __call__(self, r):
        fan_in = r.shape[-1]
        return tuple(
            nn.Dense(k, kernel_init=torch_default_kernel_init, bias_init=torch_default_bias_init(fan_in),
                     name=f"head{i}")(r)
            for i, k in enumerate(self.sizes)
        )


def build(cfg, num_examples: int, steps_per_epoch: int) -> Method:
    m = cfg.method
    sizes = tuple(m.cluster_heads)
    net = EncoderProjector(cfg.model, m.mlp_bn)
    predictor = MLPHead(cfg.model.predictor_hidden, cfg.model.projector_dim, norm=BatchNorm if m.mlp_bn else NoNorm)
    heads = ClusterHeads(sizes)
    tx, lr_fn = optim.make_optimizer(cfg.optim, steps_per_epoch, cfg.train.epochs, cfg.train.batch_size)
    total_steps = steps_per_epoch * cfg.train.epochs
    eval_head = sizes.index(cfg.cluster.num_clusters) if m.labels == "head" else None

    def init(key, sample):
        k_net, k_pred, k_heads = jax.random.split(key, 3)
        net_vars = net.init(k_net, sample, train=False)
        r, z = net.apply(net_vars, sample, train=False)
        pred_vars = predictor.init(k_pred, z, train=False)
        head_vars = heads.init(k_heads, r)
        params = {"net": net_vars["params"], "predictor": pred_vars["params"], "heads": head_vars["params"]}
        batch_stats = {"net": net_vars["batch_stats"], "predictor": pred_vars.get("batch_stats", {})}
        # labels=kmeans: the E-step's labels and centres of r, in the state from the start (checkpoints
        # are restored into the initial state's structure)
        extra = {} if eval_head is not None else kmeans_state(num_examples, cfg.cluster.num_clusters, r.shape[-1])
        return initial_state(tx, params, batch_stats, target="net", extra=extra)  # follower := runner (Siamese)

    def entropy(q1, q2):
        if m.entropy_views == "first":
            return losses.marginal_entropy(q1)
        both = losses.marginal_entropy(q1) + losses.marginal_entropy(q2)
        return 0.5 * both if m.entropy_views == "mean" else both

    def bca(q1, q2):
        def one(a, b):
            return losses.batch_cluster_assignment_loss(a, b, m.temperature, m.bca_normalize, m.bca_exclude_positive)

        return 0.5 * (one(q1, q2) + one(q2, q1)) if m.bca_symmetric else one(q1, q2)

    def train_step(state, view1, view2, indices, key):
        del indices, key
        n = state.step + 1
        stats = state.target_batch_stats
        (_, t1), stats = apply_train(net, state.target_params, stats, view1)
        (_, t2), stats = apply_train(net, state.target_params, stats, view2)
        t1, t2 = jax.lax.stop_gradient(t1), jax.lax.stop_gradient(t2)
        target_stats = stats

        def loss_fn(params):
            s = state.batch_stats
            (r1, z1), net_stats = apply_train(net, params["net"], s["net"], view1)
            (r2, z2), net_stats = apply_train(net, params["net"], net_stats, view2)
            p1, pred_stats = apply_train(predictor, params["predictor"], s["predictor"], z1)
            align = [losses.cosine_distance_loss(p1, t2)]  # Eq. 1: x' through the runner, x'' the follower
            if m.align_symmetric:
                p2, pred_stats = apply_train(predictor, params["predictor"], pred_stats, z2)
                align.append(losses.cosine_distance_loss(p2, t1))
            align_loss = jnp.sum(jnp.stack(align)) if m.align_reduce == "sum" else jnp.mean(jnp.stack(align))
            logits1, logits2 = heads.apply({"params": params["heads"]}, r1), heads.apply({"params": params["heads"]}, r2)
            bca_terms, ent_terms = [], []
            for l1, l2 in zip(logits1, logits2):
                q1, q2 = jax.nn.softmax(l1, axis=1), jax.nn.softmax(l2, axis=1)
                bca_terms.append(bca(q1, q2))
                ent_terms.append(entropy(q1, q2))
            bca_loss, ent = jnp.sum(jnp.stack(bca_terms)), jnp.sum(jnp.stack(ent_terms))  # Eq. 6: sum over heads
            clust_loss = bca_loss - m.entropy_weight * ent
            loss = align_loss + m.clust_weight * clust_loss
            new_stats = {"net": net_stats, "predictor": pred_stats}
            return loss, (new_stats, {"loss": loss, "align_loss": align_loss, "bca_loss": bca_loss, "entropy": ent})

        (_, (batch_stats, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        momentum = optim.ema_momentum(n, m.ema_momentum, total_steps, m.ema_increase)
        runner = params["net"] if m.ema_timing == "after" else state.params["net"]
        state = state.replace(
            step=state.step + 1,
            params=params,
            batch_stats=batch_stats,
            target_params=ema_update(state.target_params, runner, momentum),
            target_batch_stats=target_stats,
            opt_state=opt_state,
        )
        metrics.update(lr=lr_fn(state.step - 1), ema_momentum=momentum)
        return state, metrics

    def embed(state, images):
        """labels=head: the eval head's softmax assignment (N, K); labels=kmeans: the runner's l2-normalised r."""
        r, _ = net.apply({"params": state.params["net"], "batch_stats": state.batch_stats["net"]}, images, train=False)
        if eval_head is None:
            return losses.l2_normalize(r)
        return jax.nn.softmax(heads.apply({"params": state.params["heads"]}, r)[eval_head], axis=1)

    if eval_head is None:
        return kmeans_method(cfg, "c2bin", init, train_step, embed)

    def cluster(state, assignments, key):
        del key
        labels = np.asarray(jnp.argmax(assignments, axis=1)).astype(np.int32)
        return state, labels, {"mean_confidence": float(jnp.mean(jnp.max(assignments, axis=1)))}

    return Method("c2bin", init, train_step, embed, cluster, assign=lambda state, q: most_probable(q))
