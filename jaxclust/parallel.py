"""Device mesh and shardings: one ('data',) axis over every device of every host."""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh over all devices. Auto axes: plain jnp indexing works on sharded arrays."""
    devices = np.asarray(jax.devices() if devices is None else devices)
    return Mesh(devices, (DATA_AXIS,), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Leading (example) axis split over the data axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


def is_main_process() -> bool:
    return jax.process_index() == 0


def put_global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host array that every process holds whole (the image bank, a batch's
    indices): each process places only the slices of its own devices."""
    array = np.asarray(array)
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def to_host(x: jax.Array) -> np.ndarray:
    """The whole value of a (possibly multi-host) array as numpy, on every process."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)
