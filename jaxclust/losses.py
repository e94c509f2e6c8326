"""Every loss of jaxclust, as pure functions of arrays.

Each function is written close to its paper's equation (numbered in the comment) and, where the
official code differs, to what the official code computes; the difference is named.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

# torch.nn.functional.normalize's eps: the norm is clamped from below by it.
NORMALIZE_EPS = 1e-12
# torch.nn.functional.cosine_similarity's eps.
COSINE_EPS = 1e-8
# Official ProPos: logit given to every column of a cluster absent from the batch.
ABSENT_CLUSTER_LOGIT = -10.0


def l2_normalize(x: jax.Array, axis: int = -1, eps: float = NORMALIZE_EPS) -> jax.Array:
    """x / max(||x||, eps), as torch's F.normalize, with a finite gradient at x = 0.

    Clamping the squared norm (not the norm) keeps sqrt away from 0, so a zero row (the prototype of
    an absent cluster) gets a zero gradient instead of NaN.
    """
    sq = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(sq, eps * eps))


def cosine_similarity(a: jax.Array, b: jax.Array, eps: float = COSINE_EPS) -> jax.Array:
    """Row-wise cosine, as torch's F.cosine_similarity(a, b, dim=-1)."""
    dot = jnp.sum(a * b, axis=-1)
    sq = jnp.sum(jnp.square(a), axis=-1) * jnp.sum(jnp.square(b), axis=-1)
    return dot * jax.lax.rsqrt(jnp.maximum(sq, eps * eps))


def byol_alignment_loss(prediction: jax.Array, target: jax.Array, form: str = "v1") -> jax.Array:
    """BYOL / PSA alignment: ||g(f(x)+sigma*eps) - f'(x+)||^2 of normalised vectors (ProPos Eq. 10).

    form "v1" is official `forward_loss`: -2 mean cos; "v2" is official `forward_v2`: mean(2 - 2 cos).
    They differ by the constant 2 and have identical gradients.
    """
    cos = cosine_similarity(prediction, target)
    if form == "v1":
        return -2.0 * jnp.mean(cos)
    if form == "v2":
        return jnp.mean(2.0 - 2.0 * cos)
    raise ValueError(f"byol_alignment_loss form must be 'v1' or 'v2', got {form!r}.")


def cluster_prototypes(features: jax.Array, labels: jax.Array, num_clusters: int) -> jax.Array:
    """l2-normalised mean of the features of each cluster (ProPos Eq. 6; official `compute_centers`).

    The row of a cluster with no member is exactly zero.
    """
    one_hot = jax.nn.one_hot(labels, num_clusters, dtype=features.dtype)  # (B, K)
    counts = jnp.sum(one_hot, axis=0)[:, None]
    means = (one_hot.T @ features) / jnp.maximum(counts, NORMALIZE_EPS)  # official: L1-normalised weights
    return l2_normalize(means)


def cluster_presence(labels: jax.Array, num_clusters: int) -> jax.Array:
    """(K,) bool: which cluster ids occur in `labels`."""
    return jnp.zeros((num_clusters,), bool).at[labels].set(True)


def prototype_scattering_loss(
    online: jax.Array,
    target: jax.Array,
    labels: jax.Array,
    num_clusters: int,
    temperature: float = 0.5,
    terms: str = "both",
    present: jax.Array | None = None,
    negatives: str = "online",
    queue: tuple[jax.Array, jax.Array] | None = None,
) -> jax.Array:
    """Prototype scattering loss, PSL (ProPos Eq. 4, as the official `compute_cluster_loss`).

    online: (B, D) raw (un-normalised) online projector outputs; they are l2-normalised here.
    target: (B, D) l2-normalised target projector outputs of the other view (no gradient wanted).
    labels: (B,) hard pseudo-labels in [0, K).
    present: optional (K,) mask of clusters counted as present; by default the ones in `labels`
      (the official code decides presence from its per-GPU batch, see `cluster_presence`).

    Row k is InfoNCE over prototypes: positive <mu_k, mu'_k>/tau (online vs target), negatives
    <mu_k, mu_j>/tau (online vs online). Columns of absent clusters get the constant logit -10,
    rows of absent clusters are dropped and the sum is divided by the number of present clusters.

    terms: "both" (Eq. 4), or one half of its split (Eq. 5): "alignment" = -<mu_k, mu'_k>/tau,
    "uniformity" = log sum_{j != k} exp(<mu_k, mu_j>/tau).

    negatives: "online" (official ProPos and HaDis code) or "target": <mu_k, mu'_j>/tau, HaDis' Eq. 9.
    queue: optional (features (Q, D), labels (Q,)) of a memory queue (ProPos Sec. 5.9): as the official
      code, both the online and the target prototypes take the queued rows in, and so does presence.
    """
    if terms not in ("both", "alignment", "uniformity"):
        raise ValueError(f"PSL terms must be 'both', 'alignment' or 'uniformity', got {terms!r}.")
    k = num_clusters
    online = l2_normalize(online)
    if queue is not None:  # official memory queue: (features, labels) of earlier target outputs
        queue_features, queue_labels = queue
        online = jnp.concatenate([online, queue_features])  # official: queued rows are not re-normalised
        target = jnp.concatenate([target, queue_features])
        labels = jnp.concatenate([labels, queue_labels])
    mu = cluster_prototypes(online, labels, k)
    mu_target = cluster_prototypes(target, labels, k)
    if present is None:
        present = cluster_presence(labels, k)
    if negatives not in ("online", "target"):
        raise ValueError(f"PSL negatives must be 'online' or 'target', got {negatives!r}.")
    positive = jnp.sum(mu * mu_target, axis=-1) / temperature
    logits = (mu @ (mu if negatives == "online" else mu_target).T) / temperature
    diagonal = jnp.eye(k, dtype=bool)
    logits = jnp.where(diagonal, positive[:, None], logits)
    logits = jnp.where(present[None, :], logits, ABSENT_CLUSTER_LOGIT)
    positive = jnp.diagonal(logits)
    if terms == "both":
        rows = jax.nn.logsumexp(logits, axis=1) - positive
    elif terms == "alignment":
        rows = -positive
    else:
        rows = jax.nn.logsumexp(jnp.where(diagonal, -jnp.inf, logits), axis=1)
    rows = jnp.where(present, rows, 0.0)
    return jnp.sum(rows) / jnp.maximum(jnp.sum(present), 1)


# ------------------------------------------------------------------------------------------------
# MoCo v2 and PCL (Li et al., ICLR 2021). Reference: shared/reference/seed_pcl.md §1.5-1.7.


def info_nce_loss(query: jax.Array, key: jax.Array, queue: jax.Array, temperature: float) -> jax.Array:
    """InfoNCE of MoCo, the instance term of ProtoNCE (PCL Eq. 11, first term; official `forward`).

    query: (B, D) l2-normalised online features v_i. key: (B, D) l2-normalised momentum features v'_i
    of the other view (the positive). queue: (r, D) l2-normalised keys of past batches (the negatives;
    the official buffer is its transpose, D x r). Row i: logits [v_i.v'_i, v_i.Q_1 ... v_i.Q_r] / tau,
    target 0; the mean over the batch (torch CrossEntropyLoss).
    """
    positive = jnp.sum(query * key, axis=-1, keepdims=True)
    logits = jnp.concatenate([positive, query @ queue.T], axis=1) / temperature
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[:, 0])


def pcl_concentration(
    features: jax.Array,
    labels: jax.Array,
    centers: jax.Array,
    temperature: float,
    alpha: float = 10.0,
    percentiles: tuple[float, float] = (10.0, 90.0),
) -> jax.Array:
    """Concentration phi of every prototype (PCL Eq. 12, as official `run_kmeans` computes it).

    features: (N, D) momentum features; labels: (N,) cluster of each; centers: (K, D) the *raw*
    (un-normalised) k-means centroids the distances are measured to. Per cluster with Z > 1 members:
    phi = mean_z ||v'_z - c|| / ln(Z + alpha); clusters with Z <= 1 (singletons and empty ones) get
    the largest phi; then phi is clipped to its [P10, P90] percentiles (numpy's linear interpolation,
    over all K entries) and rescaled to mean tau. Returns (K,) float.

    One guard the official code lacks: if every phi is 0 (all clusters degenerate), every entry is tau
    instead of 0/0.
    """
    k = centers.shape[0]
    dist = jnp.sqrt(jnp.sum(jnp.square(features - centers[labels]), axis=-1))
    counts = jax.ops.segment_sum(jnp.ones_like(dist), labels, num_segments=k)
    sums = jax.ops.segment_sum(dist, labels, num_segments=k)
    several = counts > 1
    safe_counts = jnp.where(several, counts, 2.0)
    phi = jnp.where(several, (sums / safe_counts) / jnp.log(safe_counts + alpha), 0.0)
    phi = jnp.where(several, phi, jnp.max(phi))  # official: Z <= 1 -> dmax
    lo, hi = jnp.percentile(phi, jnp.asarray(percentiles, phi.dtype))
    phi = jnp.clip(phi, lo, hi)
    mean = jnp.mean(phi)
    return jnp.where(mean > 0, temperature * phi / jnp.where(mean > 0, mean, 1.0), temperature)


def protonce_loss(
    query: jax.Array,
    prototypes: jax.Array,
    concentration: jax.Array,
    positive_ids: jax.Array,
    negative_ids: jax.Array,
    negative_valid: jax.Array | None = None,
    layout: str = "official",
) -> jax.Array:
    """The prototype term of ProtoNCE for one clustering m (PCL Eq. 11, second term), mean over rows.

    query: (N, D) l2-normalised online features v_i. prototypes: (K, D) l2-normalised centroids c.
    concentration: (K,) phi, the per-prototype temperature. positive_ids: (N,) cluster s(i) of each
    row. negative_ids: (r,) sampled negative prototype ids, shared by all rows. negative_valid:
    optional (r,) bool; a False column is left out (logit -inf).

    layout "official" (salesforce/PCL `forward`): the columns are [c_s(1) ... c_s(N), c_neg...], each
    divided by its own phi, and row i's target is column i, so the other rows' positive prototypes
    are negatives too (twice a row's own prototype if two rows share a cluster; official issue #5).
    layout "propos" (Hzzone/ProPos `pcl_wrapper.py`): row i has [c_s(i), c_neg...], target 0; the
    other rows' positives are not in its denominator.
    """
    pos_logits = query @ prototypes[positive_ids].T / concentration[positive_ids][None, :]  # (N, N)
    neg_logits = query @ prototypes[negative_ids].T / concentration[negative_ids][None, :]  # (N, r)
    if negative_valid is not None:
        neg_logits = jnp.where(negative_valid[None, :], neg_logits, -jnp.inf)
    own = jnp.diagonal(pos_logits)
    if layout == "official":
        logits = jnp.concatenate([pos_logits, neg_logits], axis=1)
    elif layout == "propos":
        logits = jnp.concatenate([own[:, None], neg_logits], axis=1)
    else:
        raise ValueError(f"protonce_loss layout must be 'official' or 'propos', got {layout!r}.")
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - own)


# ------------------------------------------------------------------------------------------------
# SeCu (Qian, ICCV 2023). Reference: shared/reference/seed_secu.md §4.2, §5.


def secu_center_loss(
    features: jax.Array, centers: jax.Array, labels: jax.Array, temperature: float, stable: bool = True
) -> jax.Array:
    """The loss that trains SeCu's cluster centres (SeCu Eq. 3; official `loss_c`), mean over rows.

    features: (B, D) l2-normalised features; they get no gradient here (official: detached).
    centers: (K, D) l2-normalised centres w_j. labels: (B,) the freshly assigned labels y^t.
    Row i is cross-entropy over x_i.w_j / lambda. With `stable` (the SeCu loss) only the entry of the
    row's own cluster carries a gradient, every other logit is stop-gradient: a centre is pulled by
    its positives alone, with weight 1 - p (Eq. 4). `stable=False` is plain CE (Table 2's "CE" row).
    The value is the same either way.
    """
    logits = jax.lax.stop_gradient(features) @ centers.T / temperature
    own = jax.nn.one_hot(labels, centers.shape[0], dtype=logits.dtype)
    if stable:
        logits = jax.lax.stop_gradient(logits) + own * (logits - jax.lax.stop_gradient(logits))
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.sum(own * logits, axis=1))


def secu_soft_label_loss(logits1: jax.Array, logits2: jax.Array, previous: jax.Array, label_weight: float) -> jax.Array:
    """SeCu's representation loss for one head (SeCu Eq. 7 and the theta step; official `loss_x`).

    logits1, logits2: (B, K) x^s.w^p_j / lambda of the two views against the centres frozen at the
    start of the epoch (gradient flows into x^s only). previous: (B,) labels y^{t-1} of the last
    epoch. The target of view 1 is tau * onehot(y^{t-1}) + (1 - tau) * softmax(logits2) and vice
    versa, without gradient. Returns the mean of the two views' soft-label cross-entropies.
    """
    one_hot = jax.nn.one_hot(previous, logits1.shape[1], dtype=logits1.dtype)
    p1, p2 = (jax.lax.stop_gradient(jax.nn.softmax(v, axis=1)) for v in (logits1, logits2))
    target1 = label_weight * one_hot + (1.0 - label_weight) * p2
    target2 = label_weight * one_hot + (1.0 - label_weight) * p1
    ce1 = -jnp.sum(target1 * jax.nn.log_softmax(logits1, axis=1), axis=1)
    ce2 = -jnp.sum(target2 * jax.nn.log_softmax(logits2, axis=1), axis=1)
    return 0.5 * (jnp.mean(ce1) + jnp.mean(ce2))


def secu_closed_form_statistics(
    features: jax.Array, centers: jax.Array, labels: jax.Array, temperature: float
) -> tuple[jax.Array, jax.Array]:
    """The per-cluster sums of SeCu's closed-form centre (SeCu Eq. 4 = App. Eq. 15) over one batch.

    features: (B, D) l2-normalised x_i; centers: (K, D) l2-normalised current w_j; labels: (B,) y_i.
    With p_ij = softmax_j(x_i.w_j / lambda) (Eq. 2) returns the sums S_j = sum_{i: y_i = j} (1 - p_ij) x_i,
    shape (K, D), and the weights Z_j = sum_{i: y_i = j} (1 - p_ij), shape (K,). Nothing gets a gradient.
    1 - p_{i,y_i} is computed as sum_{k != y_i} p_ik, so it stays accurate (not 0) when p -> 1.
    """
    x, w = jax.lax.stop_gradient(features), jax.lax.stop_gradient(centers)
    logits = x @ w.T / temperature
    own = jax.nn.one_hot(labels, w.shape[0], dtype=logits.dtype)
    others = jax.nn.logsumexp(jnp.where(own > 0, -jnp.inf, logits), axis=1)
    hardness = jnp.exp(others - jax.nn.logsumexp(logits, axis=1))  # 1 - p_{i, y_i}
    weights = own * hardness[:, None]  # (B, K)
    return weights.T @ x, jnp.sum(weights, axis=0)


def secu_closed_form_centers(
    features: jax.Array, centers: jax.Array, labels: jax.Array, temperature: float
) -> jax.Array:
    """SeCu's hardness-aware closed-form centres, Eq. 4 (Theorem 1; App. Eq. 15), for fixed x and y:

        w_j = Pi_{||w|| = 1}( sum_{i: y_i = j} (1 - p_ij) x_i / sum_{i: y_i = j} (1 - p_ij) ),

    p_ij computed with the given centres w (Eq. 2). A hard instance (small p) pulls its centre harder
    than in k-means' mean (Eq. 5), which this reduces to as lambda -> infinity (p -> 1/K). A cluster
    without positives (zero weight) keeps its centre. Shapes as `secu_closed_form_statistics`; (K, D).
    """
    sums, weights = secu_closed_form_statistics(features, centers, labels, temperature)
    return jnp.where(weights[:, None] > 0, l2_normalize(sums), centers)


def self_label_loss(
    weak_logits: jax.Array, strong_logits: jax.Array, stored: jax.Array, threshold: float, warmup
) -> tuple[jax.Array, jax.Array]:
    """Self-labeling (SCAN's, as SeCu §4.2 fine-tunes with it; seed_secu.md §7.4): cross-entropy of the
    strong view against the weak view's argmax, on confident rows only.

    weak_logits, strong_logits: (B, K) class logits of the weak (pseudo-label) and the strong (trained)
    view; the weak view gets no gradient. stored: (B,) int labels of a previous stage (SeCu's
    assignments), negative for an instance that has none. warmup: bool scalar (may be traced).
    Outside the warm-up, row i's target is argmax_j p_ij with p = softmax(weak_logits), and it counts
    only if max_j p_ij > threshold. During the warm-up every row counts, with target `stored[i]`
    (the weak argmax where it is negative). Returns (the mean cross-entropy over the counted rows, 0
    when none counts; the fraction of rows counted).
    """
    probs = jax.lax.stop_gradient(jax.nn.softmax(weak_logits, axis=1))
    predicted = jnp.argmax(probs, axis=1)
    target = jnp.where(warmup, jnp.where(stored >= 0, stored, predicted), predicted)
    keep = jnp.where(warmup, 1.0, (jnp.max(probs, axis=1) > threshold).astype(jnp.float32))
    ce = jax.nn.logsumexp(strong_logits, axis=1) - jnp.take_along_axis(strong_logits, target[:, None], axis=1)[:, 0]
    return jnp.sum(keep * ce) / jnp.maximum(jnp.sum(keep), 1.0), jnp.mean(keep)


# ------------------------------------------------------------------------------------------------
# C2BIN (ICLR 2021 submission). Reference: shared/reference/seed_c2bin.md §2.


def cosine_distance_loss(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """C2BIN's bootstrapping loss, 1 - cos(P^a(z_a), z^_a), batch mean (C2BIN Eq. 1); half of BYOL's 2 - 2 cos."""
    return jnp.mean(1.0 - cosine_similarity(prediction, target))


def batch_cluster_assignment_loss(
    assign1: jax.Array,
    assign2: jax.Array,
    temperature: float,
    normalize: bool = True,
    exclude_positive: bool = False,
) -> jax.Array:
    """Contrast of batch-wise cluster assignment vectors (BCAs) across two views (C2BIN Eq. 4).

    assign1, assign2: (n, K) soft assignments (rows on the simplex) of the two views. The BCA c_k is
    column k, a vector over the batch. Row k of S = C'C''^T / tau is an InfoNCE over the K clusters
    with c''_k as the positive, anchored on view 1; the mean over the K rows.
    normalize: cosine between BCAs (default; PICA's PUI) instead of the raw dot product of Eq. 4.
    exclude_positive: the literal 1[j != i] of Eq. 4 (positive left out of the denominator); by
      default the positive is included (softmax cross-entropy, as PICA).
    An all-zero column (a cluster nobody is assigned to) gives a zero BCA, not NaN.
    """
    c1, c2 = assign1.T, assign2.T
    if normalize:
        c1, c2 = l2_normalize(c1), l2_normalize(c2)
    s = c1 @ c2.T / temperature
    positive = jnp.diagonal(s)
    if exclude_positive:
        s = jnp.where(jnp.eye(s.shape[0], dtype=bool), -jnp.inf, s)
    return jnp.mean(jax.nn.logsumexp(s, axis=1) - positive)


def marginal_entropy(assign: jax.Array) -> jax.Array:
    """H(s) of the batch's cluster marginal s_k = sum_i q_ik, normalised to a distribution (C2BIN Eq. 5).

    Natural log, 0 log 0 = 0; in [0, log K], log K exactly when every cluster gets the same mass.
    """
    mass = jnp.sum(assign, axis=0)
    p = mass / jnp.maximum(jnp.sum(mass), NORMALIZE_EPS)
    return -jnp.sum(jax.scipy.special.xlogy(p, p))


# ------------------------------------------------------------------------------------------------
# HaDis (Zhang & Huang, arXiv:2401.14038). Reference: shared/reference/seed_hadis.md §2.2.

# Official HSD: entries that are not negatives are set to this before the min over negatives.
HSD_NOT_NEGATIVE = 1e5
# Official HSD: pairwise distances are sqrt(max(squared distance, this)).
HSD_DISTANCE_EPS = 1e-12


def _pairwise_distance(a: jax.Array, b: jax.Array) -> jax.Array:
    """||a_i - b_j|| as official HSD: sqrt(max(|a|^2 + |b|^2 - 2 a.b, 1e-12)), so the diagonal of a vs a is 1e-6."""
    sq = jnp.sum(a * a, axis=1)[:, None] + jnp.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T
    return jnp.sqrt(jnp.maximum(sq, HSD_DISTANCE_EPS))


def hardness_aware_self_distillation_loss(
    teacher: jax.Array, student: jax.Array, temperature: float = 0.5, partition: str = "code"
) -> jax.Array:
    """HSD (HaDis Eq. 4-8, as the official `HSD` class), mean over anchors.

    teacher: (B, D) teacher embeddings t_i of one view (no gradient). student: (B, D) student
    predictions s_j of the other view (the predictor output with the diffusion noise). Both are
    l2-normalised here. With D^tt_ij = ||t_i - t_j|| and D^ts_ij = ||t_i - s_j||:
      partition "code" (official): j is a negative of anchor i iff D^tt_ij > D^ts_ii (the anchor's own
        teacher-student gap), a positive otherwise, so i is always its own positive;
      partition "paper" (Eq. 4): j is a negative iff D^tt_ij >= D^ts_ij.
    The hardest positive j^h maximises D^ts_ij over positives, the hardest negative m^h minimises it
    over negatives (Eq. 5); the weights w^p = max(D^ts_ij^h - D^tt_ij^h, 0) and w^n =
    max(D^tt_im^h - D^ts_im^h, 0) carry no gradient (Eq. 6); the loss of anchor i is
    softplus((w^p nu^p - w^n nu^n) / tau) (Eq. 7). An anchor without negatives has w^n = 0.
    """
    if partition not in ("code", "paper"):
        raise ValueError(f"HSD partition must be 'code' or 'paper', got {partition!r}.")
    t = jax.lax.stop_gradient(l2_normalize(teacher))
    s = l2_normalize(student)
    d_tt = _pairwise_distance(t, t)
    d_ts = _pairwise_distance(t, s)
    if partition == "code":
        negative = d_tt > jax.lax.stop_gradient(jnp.diagonal(d_ts))[:, None]
    else:
        negative = d_tt >= jax.lax.stop_gradient(d_ts)
    # official: torch.max / torch.min over dim 1, so the gradient reaches the selected entry only
    hard_pos = jnp.argmax(jnp.where(negative, 0.0, jax.lax.stop_gradient(d_ts)), axis=1)
    hard_neg = jnp.argmin(jnp.where(negative, jax.lax.stop_gradient(d_ts), HSD_NOT_NEGATIVE), axis=1)
    pick = lambda m, j: jnp.take_along_axis(m, j[:, None], axis=1)[:, 0]  # noqa: E731
    nu_pos = pick(d_ts, hard_pos)
    nu_neg = jnp.where(jnp.any(negative, axis=1), pick(d_ts, hard_neg), HSD_NOT_NEGATIVE)
    w_pos = jax.lax.stop_gradient(jnp.maximum(nu_pos - pick(d_tt, hard_pos), 0.0))
    w_neg = jax.lax.stop_gradient(jnp.maximum(pick(d_tt, hard_neg) - nu_neg, 0.0))
    return jnp.mean(jax.nn.softplus((w_pos * nu_pos - w_neg * nu_neg) / temperature))


def per_process_psl(online, target, labels, num_clusters, temperature=0.5, processes=1, owner=None, **psl_kwargs):
    """PSL as the official W-process run computes it, emulated on one global batch.

    Process r holds rows [r*B/W, (r+1)*B/W) (or those where `owner` == r). Each computes PSL over the
    gathered batch, deciding which clusters are absent from its own labels [r*B/W, (r+1)*B/W) only,
    and its gradient reaches only its own rows (`GatherLayer.backward`); DDP then averages the
    processes' gradients. The result: the loss is the mean of the W per-process losses, and with the
    same absent clusters everywhere the gradient is 1/W of the global-batch PSL's (reference:
    propos_official.md §2.4). processes=1 is the plain PSL.
    """
    if processes == 1:
        return prototype_scattering_loss(online, target, labels, num_clusters, temperature, **psl_kwargs)
    rows = online.shape[0]
    if rows % processes:
        raise ValueError(f"a batch of {rows} rows does not split over {processes} processes.")
    local = rows // processes
    owner = jnp.arange(rows) // local if owner is None else owner
    per_process = []
    for r in range(processes):
        own_rows = jnp.where((owner == r)[:, None], online, jax.lax.stop_gradient(online))
        present = cluster_presence(labels[r * local:(r + 1) * local], num_clusters)
        per_process.append(prototype_scattering_loss(
            own_rows, target, labels, num_clusters, temperature, present=present, **psl_kwargs))
    return jnp.mean(jnp.stack(per_process))
