"""PCL: prototypical contrastive learning (Li et al., ICLR 2021), and ProPos' reproductions of it.

EM over a contrastive learner. E-step (every E-step of the loop, once the prototype warm-up is near):
for each granularity k_m of `method.num_clusters`, k-means on the momentum features v' of the whole
data set gives every example a cluster s_m(i), prototypes c^m (the normalised centroids) and a
concentration phi^m per prototype (`losses.pcl_concentration`, PCL Eq. 12 as the official code
computes it). M-step: the instance loss of the framework plus ProtoNCE's prototype term

    lambda_proto * (1/M) sum_m  -log  exp(v_i.c^m_s(i) / phi^m_s(i)) / sum_{j in cols} exp(v_i.c^m_j / phi^m_j)

(`losses.protonce_loss`), with r negative prototypes sampled each step among the clusters that are no
example's positive in the batch. During the first `proto_warmup_epochs` epochs only the instance loss
trains (official `--warmup-epoch`; ProPos gates its `cls_loss` by its lr warm-up epochs).

Frameworks (`method.framework`):
  * "moco": MoCo v2 + ProtoNCE, i.e. PCL itself (salesforce/PCL) and ProPos' "MoCo + PCL" (Tables 2, 6);
  * "byol": ProPos' "BYOL + PCL" (Table 6): the BYOL loss plus the prototype term, on the raw online
    projector output (normalised); the E-step clusters the target projector features.

Presets (`method_config`): "official" is PCL v2 on ImageNet as released (salesforce/PCL main_pcl.py
with --mlp --aug-plus --cos); "propos" and "propos_byol" are ProPos' reproductions (§5.1.3, its
`pcl_wrapper.py` and `config/pcl_cifar20_r18_config.json`). What differs between them:

  | key                 | official                   | propos / propos_byol                      |
  |---------------------|----------------------------|-------------------------------------------|
  | layout              | "official": columns = the  | "propos": row i = [own positive, r shared |
  |                     | batch's positives + r      | negatives], target 0                      |
  |                     | negatives, target i        |                                           |
  | negatives           | "without_replacement"      | "with_replacement" (random.choices)       |
  |                     | (random.sample)            |                                           |
  | num_negatives r     | 16384 (= queue, --pcl-r)   | 4096 (= queue_size)                       |
  | proto_weight        | 1                          | 0.01                                      |
  | proto_warmup_epochs | 20                         | 50 (= lr warm-up)                         |
  | num_clusters        | 25000, 50000, 100000       | 250, 500, 1000                            |
  | symmetric           | no                         | yes (both directions summed)              |

Negatives "all" takes every prototype that is no positive of the batch (exact for small k, where r
distinct ones may not exist; with layout "official" it is the official loss with r = all candidates).

The E-step's k-means. The official code runs faiss k-means (Euclidean on the normalised features,
random-point init, niter 20, nredo 5 keeping the lowest objective, min/max 10/1000 points per centroid
with empty clusters split off large ones), then one exact search against the final centroids. We use
jaxclust's spherical (cosine) k-means instead, with `method.kmeans_n_init` restarts of at most
`method.kmeans_max_iter` iterations (k-means++ seeding, plain-mean centres, best inertia over all
restarts): it is the k-means ProPos' reproduction used (torch_clustering.PyTorchKMeans, cosine,
k-means++, max_iter 300), it runs jitted and sharded on the accelerators holding the features, and
the library has and tests one k-means only. On unit vectors the two agree on assignments to normalised
centroids; they can differ in the iterations (faiss assigns by Euclidean distance to the raw means,
which depends on their norms, cosine does not), in the seeding, and in empty clusters (faiss splits
them; ours keep a zero centre: a zero prototype, and phi = the largest, as the official code gives
any cluster with at most one member). phi is measured, as officially, by Euclidean distances to the raw centres.
Differences kept: the k-means key changes every E-step (official: seed = level index, every epoch),
and k-means++ seeding costs O(k) passes over the data, so the ImageNet granularities (k up to 100,000)
are far slower to seed than faiss' random init.

Labels scored by the loop: those of the granularity equal to `cluster.num_clusters`; if there is none,
one more spherical k-means with `kmeans.*` (ProPos evaluates its PCL rows with k = number of classes,
as `pcl.py` does with its extra `self.num_cluster` clustering).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jaxclust import kmeans, losses
from jaxclust.config import ConfigError, choose, in_range, nonnegative, positive
from jaxclust.methods import byol, moco
from jaxclust.methods.common import LossTerm, Method, kmeans_options

PUBLISHED = {  # ProPos' PCL rows (fractions); keys as in propos.PUBLISHED
    ("cifar10", "resnet18"): {"nmi": 0.776, "acc": 0.855, "ari": 0.734, "source": "ProPos Table 6 (mean of runs)"},
    ("cifar20", "resnet18"): {"nmi": 0.500, "acc": 0.486, "ari": 0.327, "source": "ProPos Table 6 (mean of runs)"},
}

PRESETS = ("official", "propos", "propos_byol")
NEGATIVE_MODES = ("without_replacement", "with_replacement", "all")
LAYOUTS = ("official", "propos")


def method_config(preset: str = "official") -> ml_collections.ConfigDict:
    """The `method` section of a PCL config; see the module docstring for the presets."""
    if preset not in PRESETS:
        raise ValueError(f"PCL preset must be one of {', '.join(PRESETS)}; got {preset!r}.")
    if preset == "propos_byol":
        m = byol.method_config()  # ProPos: "integrated ... into BYOL ... without changing other settings"
        m.framework = "byol"
        m.temperature = 1.0  # mean of phi: ProPos' PCL moco_temp 1 (its BYOL has no temperature)
    else:
        m = moco.method_config("propos" if preset == "propos" else "official")
        m.framework = "moco"
    m.name = "pcl"
    if preset == "official":
        m.temperature = 0.2  # official --temperature 0.2 (PCL v2; PCL v1: 0.1); also the mean of phi
        m.queue_size = 16384  # official --pcl-r 16384 (paper: 16000, not a multiple of the batch)
        m.ema_momentum = 0.999  # official --moco-m
        m.symmetric = False
        m.head = "mlp"  # official --mlp (PCL v2); PCL v1: "linear"
        m.num_clusters = (25000, 50000, 100000)  # official --num-cluster
        m.proto_weight = 1.0  # official: loss = InfoNCE + mean over levels of ProtoNCE
        m.proto_warmup_epochs = 20  # official --warmup-epoch
        m.num_negatives = 16384  # official: r = --pcl-r, the queue size
        m.negatives = "without_replacement"  # official random.sample
        m.layout = "official"  # official: target i over [batch positives, negatives]
        m.kmeans_n_init = 5  # official faiss nredo
        m.kmeans_max_iter = 20  # official faiss niter
    else:
        m.num_clusters = (250, 500, 1000)  # ProPos §5.1.3; json num_clusters "250,500,1000"
        m.proto_weight = 0.01  # ProPos §5.1.3; json cls_loss_weight 0.01
        m.proto_warmup_epochs = 50  # ProPos pcl.py gates cls_loss by warmup_epochs (json 50)
        m.num_negatives = 4096  # ProPos pcl_wrapper: random.choices(k=self.K), K = queue_size 4096
        m.negatives = "with_replacement"  # ProPos pcl_wrapper: random.choices
        m.layout = "propos"  # ProPos pcl_wrapper: [pos, negatives], target 0
        m.kmeans_n_init = 10  # ProPos clustering(): PyTorchKMeans default n_init
        m.kmeans_max_iter = 300  # ProPos clustering(): max_iter=300
    m.alpha = 10.0  # official: log(Z + 10)
    m.concentration_percentiles = (10.0, 90.0)  # official: clip to np.percentile 10 and 90
    return m


def _rows_per_loss(cfg) -> int:
    """Rows of one ProtoNCE call: the batch, or both views at once in BYOL's v2 forward."""
    if cfg.method.framework == "byol" and cfg.method.forward == "v2":
        return 2 * cfg.train.batch_size
    return cfg.train.batch_size


KEYS = ("framework", "temperature", "num_clusters", "proto_weight", "proto_warmup_epochs", "num_negatives",
        "negatives", "layout", "alpha", "concentration_percentiles", "kmeans_n_init", "kmeans_max_iter")


def validate(cfg) -> None:
    m = cfg.method
    moco.require_keys(cfg, KEYS, "jaxclust.methods.pcl.method_config()")
    choose(cfg, "method.framework", ("moco", "byol"))
    if m.framework == "moco":
        moco.validate_keys(cfg)
    else:
        byol.validate_keys(cfg)
        in_range(cfg, "method.temperature", 0, open_low=True)
    ks = m.num_clusters
    if not isinstance(ks, (tuple, list)) or not ks or any(
        not isinstance(k, int) or isinstance(k, bool) or k < 2 for k in ks
    ):
        raise ConfigError(f"method.num_clusters must be a non-empty tuple of integers >= 2, got {ks!r}.")
    choose(cfg, "method.negatives", NEGATIVE_MODES)
    choose(cfg, "method.layout", LAYOUTS)
    nonnegative(cfg, "method.proto_weight")
    w = m.proto_warmup_epochs
    if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= cfg.train.epochs:
        raise ConfigError(f"method.proto_warmup_epochs must be an integer in [0, train.epochs], got {w!r}.")
    positive(cfg, "method.num_negatives", "method.kmeans_n_init", "method.kmeans_max_iter")
    rows = _rows_per_loss(cfg)
    if m.negatives == "without_replacement" and m.num_negatives + rows > min(ks):
        raise ConfigError(
            f"method.negatives='without_replacement' draws {m.num_negatives} distinct negative prototypes "
            f"outside a batch's up to {rows} positives, more than the smallest granularity "
            f"({min(ks)}) can always offer; lower method.num_negatives, or use "
            f"method.negatives='all' or 'with_replacement'."
        )
    in_range(cfg, "method.alpha", 0, open_low=True)
    lo, hi = m.concentration_percentiles
    if not 0 <= lo <= hi <= 100:
        raise ConfigError(f"method.concentration_percentiles must satisfy 0 <= lo <= hi <= 100, got {(lo, hi)!r}.")


def sample_negative_prototypes(key, positives, num_clusters: int, num_negatives: int, mode: str):
    """Negative prototype ids for one batch and one granularity; returns (ids, valid).

    Candidates are the clusters that are no row's positive (official: set(range(K)) - set(pos_id)).
      "without_replacement": `num_negatives` distinct candidates, uniformly (official random.sample),
        by Gumbel top-r; needs num_negatives <= #candidates (checked by `validate` for any batch).
      "with_replacement": `num_negatives` uniform draws (ProPos random.choices).
      "all": every cluster id, `valid` marking the candidates.
    `valid` is False for an id that is no candidate: every id in "all", or a draw that found fewer
    candidates than asked for (only when the checks were bypassed); the loss leaves those columns out.
    """
    eligible = jnp.ones((num_clusters,), bool).at[positives].set(False)
    if mode == "all":
        return jnp.arange(num_clusters), eligible
    if mode == "without_replacement":
        scores = jnp.where(eligible, jax.random.gumbel(key, (num_clusters,)), -jnp.inf)
        ids = jax.lax.top_k(scores, num_negatives)[1]
    elif mode == "with_replacement":
        ids = jax.random.categorical(key, jnp.where(eligible, 0.0, -jnp.inf), shape=(num_negatives,))
    else:
        raise ValueError(f"negative sampling mode must be one of {', '.join(NEGATIVE_MODES)}; got {mode!r}.")
    return ids, eligible[ids]


def level_name(m: int) -> str:
    return f"level{m}"


def build(cfg, num_examples: int, steps_per_epoch: int) -> Method:
    mcfg = cfg.method
    granularities = tuple(int(k) for k in mcfg.num_clusters)
    if max(granularities) > num_examples:
        raise ConfigError(
            f"method.num_clusters has {max(granularities)} clusters, more than the {num_examples} images; "
            f"lower it."
        )
    dim, tau = cfg.model.projector_dim, float(mcfg.temperature)
    warmup, every = int(mcfg.proto_warmup_epochs), int(cfg.cluster.every)

    def extra_state():
        return {"pcl": {
            level_name(m): {
                "labels": jnp.zeros((num_examples,), jnp.int32),  # s_m(i), im2cluster
                "prototypes": jnp.zeros((k, dim), jnp.float32),  # c^m, l2-normalised centroids
                "concentration": jnp.full((k,), tau, jnp.float32),  # phi^m
            }
            for m, k in enumerate(granularities)
        }}

    def prototype_term(pair):
        """lambda * ProtoNCE prototype term, averaged over the granularities; 0 during the warm-up."""
        state, rows, key = pair.state, pair.rows, pair.key

        def loss():
            q = losses.l2_normalize(pair.online)
            per_level = []
            for m, k in enumerate(granularities):
                level = state.extra["pcl"][level_name(m)]
                positives = level["labels"][rows]
                ids, valid = sample_negative_prototypes(
                    jax.random.fold_in(key, m), positives, k, mcfg.num_negatives, mcfg.negatives
                )
                per_level.append(losses.protonce_loss(
                    q, level["prototypes"], level["concentration"], positives, ids, valid, mcfg.layout
                ))
            return jnp.mean(jnp.stack(per_level))  # official: (1/M) sum over the granularities

        proto = jax.lax.cond(pair.epoch >= warmup, loss, lambda: jnp.zeros((), pair.online.dtype))
        return mcfg.proto_weight * proto, {"proto_loss": proto}

    framework = moco if mcfg.framework == "moco" else byol
    base = framework.build(cfg, num_examples, steps_per_epoch, name="pcl",
                           terms=(LossTerm(prototype_term, extra_state),))

    @jax.jit
    def level_state(features, labels, centers):
        phi = losses.pcl_concentration(
            features, labels, centers, tau, float(mcfg.alpha), tuple(mcfg.concentration_percentiles)
        )
        return {"labels": labels, "prototypes": losses.l2_normalize(centers), "concentration": phi}

    def cluster(state, features, key):
        """The E-step: k-means at every granularity (when the next epochs use them), phi, and the scored labels."""
        extra, info = dict(state.extra), {}
        eval_k, scored = cfg.cluster.num_clusters, None
        next_epoch = int(state.step) // steps_per_epoch
        if next_epoch + every > warmup:  # some epoch before the next E-step trains with ProtoNCE
            levels = {}
            options = {**kmeans_options(cfg.kmeans, features, mcfg.kmeans_n_init), "max_iter": mcfg.kmeans_max_iter}
            for m, k in enumerate(granularities):
                result = kmeans.spherical_kmeans(jax.random.fold_in(key, m), features, k, **options)
                levels[level_name(m)] = level_state(features, result.labels, result.centers)
                info[f"kmeans_inertia_k{k}"] = float(result.inertia)
                if k == eval_k and scored is None:
                    scored = result
            extra["pcl"] = levels
        if scored is None:
            scored = kmeans.spherical_kmeans(jax.random.fold_in(key, len(granularities)), features, eval_k,
                                             **kmeans_options(cfg.kmeans, features, cfg.kmeans.n_init))
        extra.update(pseudo_labels=scored.labels, centroids=scored.centers)
        info["kmeans_inertia"] = float(scored.inertia)
        return state.replace(extra=extra), scored.labels, info

    return base._replace(cluster=cluster)
