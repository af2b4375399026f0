"""Data parallelism with jax.sharding: a 1-D device mesh and the placements the step uses.

The training state and the uint8 dataset are replicated on every device of the mesh; each
step's batch is split along the mesh axis ``data`` (`train_steps(..., mesh=mesh)`), and XLA's
SPMD partitioner inserts the gradient all-reduce. The same step function serves one device or
many: the mesh is an argument, not a second copy of the step.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from flax_gan.config import ConfigError

AXIS = "data"


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh over the first `num_devices` devices (default: all), axis ``data``."""
    devices = jax.devices()
    if num_devices is None:
        num_devices = len(devices)
    if not 1 <= num_devices <= len(devices):
        raise ConfigError(
            f"devices must be between 1 and the {len(devices)} device(s) JAX sees here "
            f"({devices[0].platform}), got {num_devices}"
        )
    return Mesh(np.array(devices[:num_devices]), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """The placement of the state and the dataset: a full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """The placement of a batch: split along its first axis over ``data``."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def check_batch(batch_size: int, mesh: Mesh) -> None:
    """Raises ConfigError unless the global batch splits evenly over the mesh."""
    if batch_size % mesh.size:
        raise ConfigError(
            f"batch_size {batch_size} does not split evenly over {mesh.size} devices; "
            f"use a multiple of {mesh.size}"
        )
