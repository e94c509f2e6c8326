"""Tests for jaxclust.kmeans: parity with the official torch_clustering k-means, plus behaviour.

Fixtures (official PyTorch outputs) are described in shared/fixtures/propos_official/README.md §3.
Shapes are tiny and shared so the jitted functions compile once per shape.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from fixtures import load_official
from jaxclust import kmeans as km

FIXTURE_NAMES = ["kmeans_overlap", "kmeans_empty_cluster"]


def _load(name):
    return load_official(f"{name}.npz")


@functools.cache
def _official_run(name):
    """(name, fixture arrays, our kmeans_from_init result), computed once per fixture."""
    fx = _load(name)
    result = km.kmeans_from_init(fx["X"], fx["init"], max_iter=int(fx["max_iter"]), tol=float(fx["tol"]))
    return name, fx, jax.device_get(result)


@pytest.fixture(scope="module", params=FIXTURE_NAMES)
def official(request):
    return _official_run(request.param)


# ----------------------------------------------------------------------------------------------
# Parity with the official code.


def test_official_fixture_final_result(official):
    name, fx, res = official
    np.testing.assert_array_equal(res.labels, fx["labels"], err_msg=name)
    assert int(res.n_iter) == int(fx["n_iter"])
    assert int(res.best_iter) == int(fx["best_iter"])
    assert bool(res.converged_strict) == bool(fx["converged_strict"])
    if bool(fx["converged_strict"]):
        assert bool(res.converged)  # strict convergence implies convergence
    np.testing.assert_allclose(res.centers, fx["cluster_centers"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(res.inertia, fx["min_inertia"], rtol=1e-5)
    assert res.labels.dtype == np.int32 and res.labels.shape == fx["labels"].shape


def test_official_tolerance_value(official):
    _, fx, _ = official
    tv = km.tolerance_value(fx["X"], float(fx["tol"]))
    # Equal up to float32 rounding of the variance (a few ulp; ddof=0 would be off by ~5e-4 relative).
    np.testing.assert_allclose(np.asarray(tv), fx["tol_value"], rtol=1e-6)


def test_official_trace_replayed_step_by_step(official):
    """Replay the loop with the public building blocks; every predict call must match the trace."""
    name, fx, _ = official
    x, k, n_iter = fx["X"], int(fx["n_clusters"]), int(fx["n_iter"])
    centers = jnp.asarray(fx["init"])
    labels, dist = km.assign(x, centers)
    np.testing.assert_array_equal(labels, fx["label_trace"][0], err_msg=f"{name} step 0")
    np.testing.assert_allclose(jnp.sum(dist), fx["inertia_trace"][0], rtol=1e-5)
    for step in range(1, n_iter + 1):
        previous = labels
        centers = km.update_centers(x, labels, k)
        np.testing.assert_allclose(centers, fx["state_trace"][step], rtol=0, atol=1e-6, err_msg=f"{name} step {step}")
        labels, dist = km.assign(x, centers)
        np.testing.assert_array_equal(labels, fx["label_trace"][step], err_msg=f"{name} step {step}")
        np.testing.assert_allclose(jnp.sum(dist), fx["inertia_trace"][step], rtol=1e-5, err_msg=f"{name} step {step}")
        # strict convergence happens at the last step only, if the run converged strictly
        assert bool(jnp.all(labels == previous)) == (step == n_iter and bool(fx["converged_strict"]))


def test_tolerance_rule_and_max_iter_stop():
    fx = _load("kmeans_overlap")
    x, init, trace = fx["X"], fx["init"], fx["label_trace"]
    assert int(fx["n_iter"]) >= 3, "the fixture needs 3 Lloyd iterations to test max_iter"
    # A huge tol stops after the first Lloyd iteration: through the centre-shift rule, unless the
    # labels already repeat (strict convergence is checked first).
    res = km.kmeans_from_init(x, init, tol=1e9)
    assert int(res.n_iter) == 1 and int(res.best_iter) == 0 and bool(res.converged)
    assert bool(res.converged_strict) == bool(np.array_equal(trace[1], trace[0]))
    np.testing.assert_array_equal(res.labels, trace[1])
    # max_iter = n_iter - 1 stops the loop before convergence; the best is the first strict minimum of
    # the traced inertias (index 0 of the trace is the init assignment, not a candidate).
    stop = int(fx["n_iter"]) - 1
    best = int(np.argmin(fx["inertia_trace"][1:stop + 1]))
    res = km.kmeans_from_init(x, init, max_iter=stop)
    assert int(res.n_iter) == stop and int(res.best_iter) == best and not bool(res.converged)
    np.testing.assert_array_equal(res.labels, trace[1 + best])
    np.testing.assert_allclose(res.centers, fx["state_trace"][1 + best], rtol=0, atol=1e-6)


def test_empty_cluster_official():
    _, fx, res = _official_run("kmeans_empty_cluster")
    e = int(fx["empty_index"])
    assert np.all(res.centers[e] == 0.0)
    assert not np.any(res.labels == e)
    assert np.all(np.isfinite(res.centers)) and np.isfinite(res.inertia)


def test_empty_cluster_zero_center_no_nan():
    rng = np.random.default_rng(1)
    x = np.abs(rng.normal(size=(40, 8))).astype(np.float32)  # positive orthant: every cosine > 0
    labels = rng.integers(0, 3, size=40).astype(np.int32)  # cluster 3 of 4 is empty
    centers = km.update_centers(x, labels, 4)
    assert np.all(np.asarray(centers[3]) == 0.0) and np.all(np.isfinite(centers))
    np.testing.assert_allclose(centers[1], x[labels == 1].mean(0), rtol=1e-5, atol=1e-6)
    # A zero centre is at cosine distance exactly 1, so it loses to any centre with a positive cosine.
    lab, dist = km.assign(x, jnp.concatenate([centers[:3], jnp.zeros((1, 8))]))
    assert np.all(np.isfinite(dist)) and not np.any(np.asarray(lab) == 3)
    _, dist_zero = km.assign(x, jnp.zeros((1, 8)))
    np.testing.assert_array_equal(dist_zero, np.ones(40, np.float32))


# ----------------------------------------------------------------------------------------------
# Behaviour on synthetic data.

K_BLOBS = 4


@pytest.fixture(scope="module")
def blobs():
    """Well separated blobs on the unit sphere: (x (N, D) float32, ground truth (N,))."""
    rng = np.random.default_rng(0)
    n, d = 240, 16
    means = np.eye(d)[:K_BLOBS] * 3.0 + rng.normal(scale=0.1, size=(K_BLOBS, d))
    y = np.repeat(np.arange(K_BLOBS), n // K_BLOBS)
    x = means[y] + rng.normal(scale=0.3, size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(n)
    return x[perm].astype(np.float32), y[perm]


@pytest.fixture(scope="module")
def blob_result(blobs):
    x, _ = blobs
    return jax.device_get(km.spherical_kmeans(jax.random.key(0), x, K_BLOBS, n_init=3))


def test_spherical_kmeans_recovers_blobs_and_matches_sklearn(blobs, blob_result):
    x, y = blobs
    res = blob_result
    assert normalized_mutual_info_score(y, res.labels) == pytest.approx(1.0, abs=1e-12)
    sk = KMeans(K_BLOBS, n_init=3, random_state=0).fit(x / np.linalg.norm(x, axis=1, keepdims=True))
    assert normalized_mutual_info_score(sk.labels_, res.labels) == pytest.approx(1.0, abs=1e-12)
    # Returned centres are plain means of their members, and the inertia is the cosine objective.
    for j in range(K_BLOBS):
        np.testing.assert_allclose(res.centers[j], x[res.labels == j].mean(0), atol=1e-6)
    unit_c = res.centers / np.linalg.norm(res.centers, axis=1, keepdims=True)
    np.testing.assert_allclose(res.inertia, np.sum(1.0 - np.sum(x * unit_c[res.labels], axis=1)), rtol=1e-5)
    assert bool(res.converged) and 0 <= int(res.best_iter) < int(res.n_iter)


def test_determinism_same_key(blobs, blob_result):
    x, _ = blobs
    again = jax.device_get(km.spherical_kmeans(jax.random.key(0), x, K_BLOBS, n_init=3))
    np.testing.assert_array_equal(again.labels, blob_result.labels)
    np.testing.assert_array_equal(again.centers, blob_result.centers)
    assert again.inertia == blob_result.inertia


def test_kmeans_plusplus_keys_and_rows(blobs):
    x, _ = blobs
    a = np.asarray(km.kmeans_plusplus(jax.random.key(0), x, K_BLOBS))
    b = np.asarray(km.kmeans_plusplus(jax.random.key(0), x, K_BLOBS))
    c = np.asarray(km.kmeans_plusplus(jax.random.key(1), x, K_BLOBS))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Every centre is a row of x, and the rows are distinct (a chosen row has zero potential).
    rows = [int(np.flatnonzero(np.all(x == center, axis=1))[0]) for center in a]
    assert len(set(rows)) == K_BLOBS
    # The draw is made in original row order, so it does not depend on the chunking.
    np.testing.assert_array_equal(a, np.asarray(km.kmeans_plusplus(jax.random.key(0), x, K_BLOBS, chunk_size=50)))


def test_restarts_seeded_together_are_their_lone_seedings(blobs, monkeypatch):
    """kmeans_plusplus(n_init=R) seeds spherical_kmeans's R restarts together (one product per centre for
    all their candidates): restart i draws with key i of split(key, R) and keeps the row it keeps alone
    (on these blobs the candidates' potentials are far apart, so the product's rounding cannot change a
    choice), whatever the groups the memory bound makes."""
    x, _ = blobs
    key, n_trials = jax.random.key(0), 2 + int(np.log(K_BLOBS))
    together = np.asarray(km.kmeans_plusplus(key, x, K_BLOBS, n_init=5))
    alone = np.stack([np.asarray(km.kmeans_plusplus(k, x, K_BLOBS)) for k in jax.random.split(key, 5)])
    assert together.shape == (5, K_BLOBS, x.shape[1])
    np.testing.assert_array_equal(together, alone)
    # A bound of two restarts per group: 3 groups, the last filled up with a dead restart.
    monkeypatch.setattr(km, "_SEEDING_DISTANCES", 2 * x.shape[0] * n_trials)
    assert km._seeding_groups(x.shape[0], n_trials, 5) == (3, 2)
    # (another chunk_size, which the draws do not depend on, so that the seeding is traced again)
    grouped = km.kmeans_plusplus(key, x, K_BLOBS, n_init=5, chunk_size=77)
    np.testing.assert_array_equal(np.asarray(grouped), together)


@pytest.mark.parametrize("block", [4, 4096])
def test_candidate_sampling_is_proportional_to_potential(block):
    """k-means++ draws candidates with P proportional to the potential (plain distance, not squared)."""
    weights = np.array([0.0, 1.0, 2.0, 3.0, 0.0, 4.0, 0.5, 0.0, 1.5, 2.0], np.float32)  # block 4: padded
    draws = 40_000
    rows = np.asarray(km._sample_proportional(jax.random.key(7), jnp.asarray(weights), draws, block=block))
    freq = np.bincount(rows, minlength=weights.size) / draws
    p = weights / weights.sum()
    assert np.all(freq[weights == 0] == 0)
    np.testing.assert_allclose(freq, p, atol=5 * np.sqrt(p.max() / draws))


def test_kmeans_plusplus_k_equals_n_picks_every_row():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 3)).astype(np.float32)
    init = np.asarray(km.kmeans_plusplus(jax.random.key(3), x, 6))
    np.testing.assert_array_equal(np.sort(init, axis=0), np.sort(x, axis=0))
    assert len({row.tobytes() for row in init}) == 6


def test_restarts_keep_the_best_of_all_inits():
    """n_init restarts = k-means++ from each key of split(key, n_init), keeping the minimum inertia."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(120, 6)).astype(np.float32)  # no structure: restarts end in different optima
    key, n_init, k = jax.random.key(5), 4, 5
    singles = [km.kmeans_from_init(x, km.kmeans_plusplus(kk, x, k)) for kk in jax.random.split(key, n_init)]
    inertias = [float(r.inertia) for r in singles]
    assert len(set(inertias)) > 1, "test data should give different local optima"
    res = km.spherical_kmeans(key, x, k, n_init=n_init)
    best = singles[int(np.argmin(inertias))]
    np.testing.assert_allclose(res.inertia, min(inertias), rtol=1e-6)  # same maths, separately compiled
    np.testing.assert_array_equal(res.labels, best.labels)
    np.testing.assert_allclose(res.centers, best.centers, rtol=0, atol=1e-6)
    assert int(res.n_iter) == int(best.n_iter) and int(res.best_iter) == int(best.best_iter)


@pytest.mark.parametrize("chunk_size", [1, 7, 20, 103, 4096])
def test_chunked_assign_equals_unchunked(chunk_size):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(103, 8)).astype(np.float32)
    centers = rng.normal(size=(5, 8)).astype(np.float32)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    cn = centers / np.linalg.norm(centers, axis=1, keepdims=True)
    dense = 1.0 - xn.astype(np.float64) @ cn.T.astype(np.float64)
    labels, dist = km.assign(x, centers, chunk_size=chunk_size)
    assert labels.shape == (103,) and labels.dtype == jnp.int32 and dist.shape == (103,)
    np.testing.assert_array_equal(labels, dense.argmin(1))
    np.testing.assert_allclose(dist, dense.min(1), atol=1e-6)


def test_block_rows_shrink_with_k_and_keep_the_cap():
    """Large K gets fewer rows per block (its distances stay in cache); chunk_size stays an upper bound."""
    from jaxclust.kmeans_rows import _block_rows

    assert _block_rows(32768, 10) == 32768 and _block_rows(4096, 10) == 4096
    assert _block_rows(32768, 100) == 20971 and _block_rows(32768, 1000) == 2097 and _block_rows(100, 1000) == 100
    assert _block_rows(32768, 100_000) == 256  # never below 256 rows


def test_assign_with_large_k_blocks_equals_dense():
    """K = 8200 allows at most 256 rows per block: 1100 rows run as 5 blocks of 220; the labels and
    distances are the dense computation's."""
    from jaxclust.kmeans_rows import _block_rows, _chunk_geometry

    assert _chunk_geometry(1100, _block_rows(km.DEFAULT_CHUNK_SIZE, 8200)) == (5, 220)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(1100, 4)).astype(np.float32)
    centers = rng.normal(size=(8200, 4)).astype(np.float32)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    cn = centers / np.linalg.norm(centers, axis=1, keepdims=True)
    dense = 1.0 - xn.astype(np.float64) @ cn.T.astype(np.float64)
    labels, dist = km.assign(x, centers)
    gap = np.sort(dense, axis=1)[:, 1] - dense.min(1)
    clear = gap > 1e-5  # rows whose best centre float32 rounding cannot change
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(np.asarray(labels)[clear], dense.argmin(1)[clear])
    np.testing.assert_allclose(dist, dense.min(1), atol=1e-6)


def test_kmeans_from_init_chunk_size_does_not_divide_n():
    fx = _load("kmeans_empty_cluster")
    n = fx["X"].shape[0]
    chunk = next(c for c in range(7, n) if n % c)  # a chunk that does not divide N: padded rows are masked out
    res = km.kmeans_from_init(fx["X"], fx["init"], chunk_size=chunk)
    np.testing.assert_array_equal(res.labels, fx["labels"])
    assert int(res.n_iter) == int(fx["n_iter"]) and int(res.best_iter) == int(fx["best_iter"])
    np.testing.assert_allclose(res.centers, fx["cluster_centers"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(res.inertia, fx["min_inertia"], rtol=1e-5)


@pytest.mark.parametrize("chunk_size", [4096, 7])  # 7: the strided layout pads 240 rows to 245
def test_sharded_input_matches_unsharded(blobs, blob_result, chunk_size):
    devices = jax.devices()
    if len(devices) < 2:
        pytest.skip("needs several (simulated) devices; tests/conftest.py sets 8 CPU devices")
    n_dev = 8 if len(devices) >= 8 else 2
    mesh = jax.make_mesh((n_dev,), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices[:n_dev])
    x, _ = blobs
    xs = jax.device_put(x, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data")))
    assert km._row_sharded(xs) and not km._row_sharded(x)  # the strided layout, against the contiguous one
    res = jax.device_get(km.spherical_kmeans(jax.random.key(0), xs, K_BLOBS, n_init=3, chunk_size=chunk_size))
    np.testing.assert_array_equal(res.labels, blob_result.labels)
    np.testing.assert_allclose(res.centers, blob_result.centers, atol=1e-6)


@pytest.fixture(scope="module")
def unstructured():
    """Data with no clusters, where restarts end in different local optima; and their sequential result."""
    x = np.random.default_rng(4).normal(size=(120, 6)).astype(np.float32)
    key, k, n_init = jax.random.key(5), 5, 4
    return x, key, k, n_init, jax.device_get(km.spherical_kmeans(key, x, k, n_init=n_init))


@pytest.mark.parametrize("n_dev", [1, 2, 3, 8])
def test_restarts_spread_over_devices_equal_sequential(unstructured, n_dev):
    """restart_mesh gives each device a copy of x and its share of the restarts (3 and 8 devices pad
    4 restarts with dead ones): the result is the sequential one (labels and counts exactly)."""
    devices = jax.devices()
    if len(devices) < n_dev:
        pytest.skip(f"needs {n_dev} (simulated) devices; tests/conftest.py sets 8 CPU devices")
    x, key, k, n_init, sequential = unstructured
    mesh = jax.make_mesh((n_dev,), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices[:n_dev])
    # x sharded on its rows when the device count divides N, as the training loop's features are
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data" if 120 % n_dev == 0 else None))
    spread = jax.device_get(km.spherical_kmeans(key, jax.device_put(x, sharding), k, n_init=n_init, restart_mesh=mesh))
    # Bit for bit on the machines tried, but the two programs compile separately and XLA may sum in
    # another order elsewhere: the floats get the float32 worst case of a sum of N terms, (N-1) eps.
    bound = (x.shape[0] - 1) * np.finfo(np.float32).eps
    for name, a, b in zip(km.KMeansResult._fields, spread, sequential):
        if name == "centers":
            np.testing.assert_allclose(a, b, rtol=0, atol=bound * np.abs(x).max(), err_msg=name)
        elif name == "inertia":
            np.testing.assert_allclose(a, b, rtol=bound, err_msg=name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_n_local_trials(blobs):
    """None is the official 2 + int(log K) candidates; more greedy candidates give a lower initial potential."""
    x, _ = blobs
    official = np.asarray(km.kmeans_plusplus(jax.random.key(0), x, K_BLOBS))
    explicit = np.asarray(km.kmeans_plusplus(jax.random.key(0), x, K_BLOBS, n_local_trials=2 + int(np.log(K_BLOBS))))
    np.testing.assert_array_equal(official, explicit)

    x = np.random.default_rng(6).normal(size=(200, 5)).astype(np.float32)  # no clusters: seeding matters

    def mean_potential(trials):
        pots = []
        for i in range(24):
            init = km.kmeans_plusplus(jax.random.key(i), x, 8, n_local_trials=trials)
            rows = {np.flatnonzero(np.all(x == c, axis=1))[0] for c in np.asarray(init)}
            assert len(rows) == 8, "every centre is a distinct row of x"
            pots.append(float(jnp.sum(km.assign(x, init)[1])))
        return np.mean(pots), np.std(pots) / np.sqrt(len(pots))

    plain, plain_se = mean_potential(1)
    greedy, greedy_se = mean_potential(8)
    assert greedy < plain - 3 * np.hypot(plain_se, greedy_se), (plain, greedy)


# ----------------------------------------------------------------------------------------------
# Input validation.


def test_bad_inputs_raise_clear_errors():
    x = np.zeros((10, 3), np.float32)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="2-D"):
        km.spherical_kmeans(key, np.zeros(10, np.float32), 2)
    with pytest.raises(ValueError, match="2-D"):
        km.assign(np.zeros((2, 3, 4), np.float32), np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="1 <= k <= N"):
        km.spherical_kmeans(key, x, 0)
    with pytest.raises(ValueError, match="1 <= k <= N"):
        km.spherical_kmeans(key, x, 11)
    with pytest.raises(ValueError, match="1 <= k <= N"):
        km.kmeans_plusplus(key, x, 11)
    with pytest.raises(ValueError, match="n_init"):
        km.spherical_kmeans(key, x, 2, n_init=0)
    with pytest.raises(ValueError, match="max_iter"):
        km.kmeans_from_init(x, x[:2], max_iter=0)
    with pytest.raises(ValueError, match="chunk_size"):
        km.assign(x, x[:2], chunk_size=0)
    with pytest.raises(ValueError, match="init must have shape"):
        km.kmeans_from_init(x, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="1 <= k <= N"):
        km.kmeans_from_init(x, np.zeros((11, 3), np.float32))
    with pytest.raises(ValueError, match="labels must have shape"):
        km.update_centers(x, np.zeros(9, np.int32), 2)
    with pytest.raises(ValueError, match="tol"):
        km.spherical_kmeans(key, x, 2, tol=-1.0)
    with pytest.raises(ValueError, match="n_local_trials"):
        km.spherical_kmeans(key, x, 2, n_local_trials=0)
    with pytest.raises(ValueError, match="restart_mesh must be a jax.sharding.Mesh"):
        km.spherical_kmeans(key, x, 2, restart_mesh="data")
