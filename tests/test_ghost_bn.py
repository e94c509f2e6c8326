"""Ghost BatchNorm: per-slice statistics, as the per-GPU BatchNorm of a multi-GPU PyTorch run."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxclust.models.resnet import BatchNorm


def numpy_bn(x, eps=1e-5):
    mean = x.mean(axis=tuple(range(x.ndim - 1)))
    var = ((x - mean) ** 2).mean(axis=tuple(range(x.ndim - 1)))
    return (x - mean) / np.sqrt(var + eps), mean, var


def test_groups_normalise_each_slice_with_its_own_statistics():
    x = np.asarray(jax.random.normal(jax.random.key(0), (12, 3, 3, 5))) * 3 + 1
    bn = BatchNorm(groups=3)
    variables = bn.init(jax.random.key(1), jnp.asarray(x), train=False)
    y, updates = bn.apply(variables, jnp.asarray(x), train=True, mutable=["batch_stats"])
    for g in range(3):
        want, _, _ = numpy_bn(x[4 * g:4 * g + 4])
        np.testing.assert_allclose(y[4 * g:4 * g + 4], want, atol=1e-5)
    # running statistics follow slice 0 (rank 0's buffers), with torch's unbiased variance
    _, mean0, var0 = numpy_bn(x[:4])
    n = 4 * 3 * 3
    np.testing.assert_allclose(updates["batch_stats"]["mean"], 0.1 * mean0, atol=1e-6)
    np.testing.assert_allclose(updates["batch_stats"]["var"], 0.9 + 0.1 * var0 * n / (n - 1), atol=1e-5)


def test_one_group_is_plain_batchnorm():
    x = jax.random.normal(jax.random.key(2), (8, 4))
    variables = BatchNorm().init(jax.random.key(3), x, train=False)
    a = BatchNorm().apply(variables, x, train=True, mutable=["batch_stats"])
    b = BatchNorm(groups=1).apply(variables, x, train=True, mutable=["batch_stats"])
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(u, v)
