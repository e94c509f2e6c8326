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
