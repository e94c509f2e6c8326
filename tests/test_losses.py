"""Losses against the official ProPos outputs and against independent numpy formulas."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxclust import losses
from fixtures import load_official


@pytest.mark.parametrize("name", ["psl_a.npz", "psl_b.npz", "psl_c.npz"])
def test_psl_matches_official(name):
    f = load_official(name)
    k = int(f["num_cluster"])
    tau = float(f["temperature"])
    q, t, labels = jnp.asarray(f["q"]), jnp.asarray(f["k"]), jnp.asarray(f["labels"], jnp.int32)

    loss_fn = lambda q_: losses.prototype_scattering_loss(q_, t, labels, k, tau)
    loss, grad = jax.value_and_grad(loss_fn)(q)
    np.testing.assert_allclose(loss, f["loss"], atol=1e-6)
    # torch-independent float64 values, for the same inputs
    np.testing.assert_allclose(loss, f["loss_f64"], atol=1e-6)
    grad_tol = max(1e-7, 1e-5 * np.abs(f["grad_q"]).max())
    np.testing.assert_allclose(grad, f["grad_q"], atol=grad_tol)

    q_centers = losses.cluster_prototypes(losses.l2_normalize(q), labels, k)
    k_centers = losses.cluster_prototypes(t, labels, k)
    np.testing.assert_allclose(q_centers, f["q_centers"], atol=1e-6)
    np.testing.assert_allclose(k_centers, f["k_centers"], atol=1e-6)
    # absent clusters: exact zero prototypes, present mask as the fixture derives it
    np.testing.assert_array_equal(losses.cluster_presence(labels, k), f["present"])
    assert np.all(np.asarray(q_centers)[~f["present"]] == 0)


def test_byol_alignment_matches_official():
    f = load_official("byol_alignment.npz")
    p, k = jnp.asarray(f["p"]), jnp.asarray(f["k"])
    np.testing.assert_allclose(losses.cosine_similarity(p, k), f["cos"], atol=1e-6)
    for form in ("v1", "v2"):
        loss, grad = jax.value_and_grad(lambda p_: losses.byol_alignment_loss(p_, k, form))(p)
        np.testing.assert_allclose(loss, f[f"loss_{form}"], atol=1e-6)
        np.testing.assert_allclose(grad, f[f"grad_p_{form}"], atol=1e-7)


def _numpy_psl_terms(q, t, labels, k, tau):
    """Eq. 5 split, in float64 numpy, written from the paper plus the official masking rule."""
    qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    present = np.array([np.any(labels == c) for c in range(k)])
    mu = np.zeros((k, q.shape[1]))
    mu_t = np.zeros((k, q.shape[1]))
    for c in np.flatnonzero(present):
        m, mt = qn[labels == c].mean(0), t[labels == c].mean(0)
        mu[c], mu_t[c] = m / np.linalg.norm(m), mt / np.linalg.norm(mt)
    align, unif = [], []
    for c in np.flatnonzero(present):
        align.append(-mu[c] @ mu_t[c] / tau)
        others = [mu[c] @ mu[j] / tau if present[j] else -10.0 for j in range(k) if j != c]
        unif.append(np.log(np.sum(np.exp(others))))
    return np.mean(align), np.mean(unif)


@pytest.mark.parametrize("name", ["psl_a.npz", "psl_b.npz", "psl_c.npz"])
def test_psl_split_terms_match_equation_5(name):
    f = load_official(name)
    k, tau = int(f["num_cluster"]), float(f["temperature"])
    args = (jnp.asarray(f["q"]), jnp.asarray(f["k"]), jnp.asarray(f["labels"], jnp.int32), k, tau)
    align, unif = _numpy_psl_terms(f["q"].astype(np.float64), f["k"].astype(np.float64), f["labels"], k, tau)
    np.testing.assert_allclose(losses.prototype_scattering_loss(*args, terms="alignment"), align, atol=1e-5)
    np.testing.assert_allclose(losses.prototype_scattering_loss(*args, terms="uniformity"), unif, atol=1e-5)


def test_psl_gradient_finite_with_absent_clusters_and_zero_weight():
    # K = 12 > batch 4: most prototypes are zero rows; lambda = 0 must still give finite gradients.
    q = jax.random.normal(jax.random.key(0), (4, 8))
    t = losses.l2_normalize(jax.random.normal(jax.random.key(1), (4, 8)))
    labels = jnp.array([0, 0, 5, 11])
    for weight in (0.0, 0.1):
        g = jax.grad(lambda q_: weight * losses.prototype_scattering_loss(q_, t, labels, 12))(q)
        assert np.all(np.isfinite(g))
    g0 = jax.grad(lambda x: jnp.sum(losses.l2_normalize(x)))(jnp.zeros((2, 3)))
    assert np.all(np.isfinite(g0))


def test_psl_single_present_cluster_sees_only_masked_negatives():
    # One present cluster: its only negatives are the constant -10 logits, so loss = log(1 + (K-1)e^{-10-pos}).
    q = jax.random.normal(jax.random.key(2), (5, 4))
    t = losses.l2_normalize(q)
    labels = jnp.zeros(5, jnp.int32)
    loss = losses.prototype_scattering_loss(q, t, labels, 3, 0.5)
    # The loss (1.2e-5) is logsumexp(row) - pos with both terms near the positive logit 2.0, so
    # float32 leaves an error of about one ulp of 2.0 (np.spacing(float32(2)) = 2.4e-7): allow 4 ulps.
    # Still sharp: K instead of K-1 negatives is off by 6.1e-6, -inf for absent columns by 1.2e-5.
    tol = 4 * np.spacing(np.float32(2.0))
    np.testing.assert_allclose(loss, np.log1p(2 * np.exp(-10.0 - 2.0)), rtol=0, atol=tol)


def test_per_process_psl_reproduces_the_official_gradient_scale():
    """With every cluster present in every process's rows, the W-process PSL has the global value and
    1/W of its gradient (the official ratio measured under 1/2/4-process gloo: 1, 1/2, 1/4)."""
    f = load_official("psl_a.npz")
    q, t, tau = jnp.asarray(f["q"]), jnp.asarray(f["k"]), float(f["temperature"])
    batch = q.shape[0]
    counts = [w for w in (1, 2, 4) if batch % w == 0]
    assert len(counts) > 1, f"psl_a's batch of {batch} rows does not split over 2 processes"
    # the fixture's K, or fewer clusters when a process's rows cannot hold all K
    k = min(int(f["num_cluster"]), batch // counts[-1])
    labels = jnp.arange(batch, dtype=jnp.int32) % k  # every process's rows hold all k clusters
    full = lambda x: losses.prototype_scattering_loss(x, t, labels, k, tau)
    value, grad = jax.value_and_grad(full)(q)
    # separately compiled, same maths: a few float32 ulps of the loss and of the largest gradient entry
    grad_tol = 8 * np.spacing(np.float32(np.abs(grad).max()))
    for w in counts:
        v, g = jax.value_and_grad(lambda x: losses.per_process_psl(x, t, labels, k, tau, processes=w))(q)
        np.testing.assert_allclose(v, value, rtol=8 * np.finfo(np.float32).eps)
        np.testing.assert_allclose(g, grad / w, rtol=0, atol=grad_tol)


def test_per_process_psl_masks_clusters_absent_from_each_process():
    q = jax.random.normal(jax.random.key(3), (8, 6))
    t = losses.l2_normalize(jax.random.normal(jax.random.key(4), (8, 6)))
    labels = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])  # process 0 holds clusters {0, 1}, process 1 {2, 3}
    got = losses.per_process_psl(q, t, labels, 4, 0.5, processes=2)
    want = np.mean([
        losses.prototype_scattering_loss(q, t, labels, 4, 0.5, present=jnp.array([1, 1, 0, 0], bool)),
        losses.prototype_scattering_loss(q, t, labels, 4, 0.5, present=jnp.array([0, 0, 1, 1], bool)),
    ])
    np.testing.assert_allclose(got, want, rtol=1e-6)
