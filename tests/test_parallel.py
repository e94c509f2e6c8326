"""One code path on 1 and on 8 (simulated) devices: the same global batch gives the same numbers."""
import jax
import numpy as np
import pytest

from jaxclust import parallel
from jaxclust.methods.common import kmeans_options
from jaxclust.trainer import Run
from test_train_e2e import tiny_digits_config


def make_run(tmp_path, devices):
    cfg = tiny_digits_config()
    cfg.train.batch_size = 128  # divisible by 8
    cfg.kmeans.restarts_over_devices = "always"
    return Run(cfg, tmp_path, mesh=parallel.make_mesh(devices))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if jax.device_count() < 8:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8 (set by conftest.py)")
    tmp = tmp_path_factory.mktemp("parallel")
    return make_run(tmp, jax.devices()[:1]), make_run(tmp, jax.devices()[:8])


def test_train_step_on_8_devices_equals_1_device(runs):
    indices = np.arange(128) * 7 % 1797  # one global batch
    key = jax.random.key(5)
    state = runs[0].init_state()
    # a step after the warm-up, so that PSL and the PSA noise are on
    state = jax.device_get(state.replace(step=np.int32(runs[0].steps_per_epoch)))  # host copy: steps donate
    results = []
    for run in runs:
        s = jax.device_put(state, run.replicated)
        new, metrics = run.step(s, *run.feeder.batch(indices), key)
        results.append(jax.device_get((new, metrics)))
    (s1, m1), (s8, m8) = results
    assert len(runs[1].feeder.images.sharding.device_set) == 8
    for name in ("loss", "align_loss", "psl_loss"):
        np.testing.assert_allclose(m1[name], m8[name], rtol=1e-5)
    for a, b in zip(jax.tree.leaves((s1.params, s1.target_params, s1.batch_stats, s1.target_batch_stats)),
                    jax.tree.leaves((s8.params, s8.target_params, s8.batch_stats, s8.target_batch_stats))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_e_step_on_8_devices_equals_1_device(runs):
    state = jax.device_get(runs[0].init_state())
    feats = [run.embed_all(jax.device_put(state, run.replicated)) for run in runs]
    np.testing.assert_allclose(feats[0], feats[1], atol=1e-5)
    # The E-step itself, on the same features: restarts spread over the 8 devices give the 1-device
    # k-means bit for bit (every device clusters a whole copy; row-sharded k-means can flip labels of
    # these near-tied random-network features through float summation order).
    key = jax.random.key(3)
    out = [run.method.cluster(jax.device_put(state, run.replicated), jax.device_put(feats[0], f.sharding), key)
           for run, f in zip(runs, feats)]
    assert len(feats[1].sharding.device_set) == 8
    options = kmeans_options(runs[1].cfg.kmeans, feats[1], runs[1].cfg.kmeans.n_init)
    assert options["restart_mesh"] is not None and options["restart_mesh"].size == 8  # spread, not row-sharded
    assert runs[1].cfg.kmeans.n_init % 8 != 0  # dead restarts pad the spread
    np.testing.assert_array_equal(jax.device_get(out[0][1]), jax.device_get(out[1][1]))
    # centroids: means of the same rows, in two separately compiled programs; allow the float32 worst
    # case of a sum of N terms, (N-1) eps times the largest feature (bit for bit on the machines tried)
    feats0 = np.asarray(jax.device_get(feats[0]))
    atol = (feats0.shape[0] - 1) * np.finfo(np.float32).eps * np.abs(feats0).max()
    np.testing.assert_allclose(jax.device_get(out[0][0].extra["centroids"]), jax.device_get(out[1][0].extra["centroids"]),
                               rtol=0, atol=atol)
    assert out[0][2] == out[1][2]


def test_restarts_over_devices_rule(monkeypatch):
    """auto spreads restarts when the device count divides n_init and a whole copy of the features is small."""
    if jax.device_count() < 8:
        pytest.skip("needs 8 (simulated) devices")
    from jaxclust.methods import common

    cfg = tiny_digits_config().kmeans
    mesh8, mesh1 = parallel.make_mesh(jax.devices()[:8]), parallel.make_mesh(jax.devices()[:1])
    feats8 = jax.device_put(np.zeros((64, 4), np.float32), parallel.batch_sharded(mesh8))
    feats1 = jax.device_put(np.zeros((64, 4), np.float32), parallel.batch_sharded(mesh1))

    def spread(mode, feats, n_init):
        cfg.restarts_over_devices = mode
        return kmeans_options(cfg, feats, n_init)["restart_mesh"] is not None

    assert spread("auto", feats8, 16) and not spread("auto", feats8, 10) and not spread("auto", feats1, 16)
    assert spread("always", feats8, 10) and not spread("never", feats8, 16)
    monkeypatch.setattr(common, "SPREAD_MAX_BYTES", 64 * 4 * 4 - 1)  # the copy is now too large
    assert not spread("auto", feats8, 16) and spread("always", feats8, 16)
