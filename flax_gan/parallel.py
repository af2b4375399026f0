"""Data parallelism with jax.sharding: a 1-D device mesh and the placements the step uses.

The training state and the uint8 dataset are replicated on every device of the mesh; each
step's batch is split along the mesh axis ``data`` (`train_steps(..., mesh=mesh)`), and XLA's
SPMD partitioner inserts the gradient all-reduce. The same step function serves one device or
many: the mesh is an argument, not a second copy of the step.

Several hosts: `initialize` starts ``jax.distributed`` (from flags or a cluster's environment),
after which ``jax.devices()`` lists every process's devices and the mesh spans them all. Each
process holds the whole 47 MB training set, so every process computes the same global batch
indices and each device gathers its own slice of the batch from its local copy: the run is the
same, up to float rounding of the all-reduce, as one process with as many devices.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from flax_gan.config import ConfigError

AXIS = "data"
log = logging.getLogger(__name__)

# Environments in which jax.distributed.initialize() finds the cluster on its own.
_CLUSTER_HINTS = (
    ("JAX_COORDINATOR_ADDRESS", lambda v: bool(v)),
    ("SLURM_NTASKS", lambda v: v.isdigit() and int(v) > 1),
    ("OMPI_COMM_WORLD_SIZE", lambda v: v.isdigit() and int(v) > 1),
    ("TPU_WORKER_HOSTNAMES", lambda v: "," in v),
)


def cluster_environment() -> str | None:
    """The environment variable that marks a multi-process job, or None on a single process."""
    for name, is_multi in _CLUSTER_HINTS:
        if is_multi(os.environ.get(name, "")):
            return name
    return None


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
    """Starts jax.distributed for a multi-process run; returns True if it did.

    With `coordinator`, `num_processes` and `process_id` (all three), uses them; else, when a
    cluster's environment is present (Slurm with several tasks, Open MPI, a TPU pod, or
    $JAX_COORDINATOR_ADDRESS), lets JAX read it; else does nothing (one process). Must run
    before anything asks JAX for its devices.
    """
    given = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    if any(v is not None for v in given.values()):
        missing = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is None]
        if missing:
            raise ConfigError(f"a multi-process run needs --coordinator, --num-processes and --process-id; missing {', '.join(missing)}")
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise ConfigError(f"--process-id must be in [0, --num-processes); got {process_id} of {num_processes}")
        if ":" not in coordinator:
            raise ConfigError(f"--coordinator must be host:port, got {coordinator!r}")
        jax.distributed.initialize(coordinator, num_processes, process_id)
    elif cluster_environment() is not None:
        jax.distributed.initialize()
    else:
        return False
    log.info("process %d of %d; %d local and %d global devices", jax.process_index(), jax.process_count(),
             jax.local_device_count(), jax.device_count())
    return True


def check_single_process(what: str) -> None:
    """ConfigError naming `what` if this is a multi-process run."""
    if jax.process_count() > 1:
        raise ConfigError(f"{what} runs in single-process runs only; this run has {jax.process_count()} processes")


def is_main_process() -> bool:
    """True on process 0, the one that writes logs, metrics and samples."""
    return jax.process_index() == 0


def put_replicated(tree: Any, mesh: Mesh) -> Any:
    """Places every leaf of `tree` (the same values on every process) as a full copy on each mesh device.

    Works across processes, where the mesh has devices this process cannot address.
    """
    sharding = replicated(mesh)

    def put(leaf):
        if jax.process_count() == 1:
            return jax.device_put(leaf, sharding)
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        value = np.asarray(leaf)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    return jax.tree.map(put, tree)


def local_copy(tree: Any) -> Any:
    """This process's copy of a replicated pytree, on one local device (for sampling and scoring on
    process 0 alone, which must not start a computation that spans other processes)."""
    return jax.tree.map(lambda leaf: leaf.addressable_data(0) if isinstance(leaf, jax.Array) else leaf, tree)


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh over the first `num_devices` devices (default: all), axis ``data``."""
    devices = jax.devices()
    if num_devices is None:
        num_devices = len(devices)
    if jax.process_count() > 1 and num_devices != len(devices):
        raise ConfigError(
            f"a run over {jax.process_count()} processes uses all {len(devices)} devices; got devices {num_devices}"
        )
    if not 1 <= num_devices <= len(devices):
        raise ConfigError(
            f"devices must be between 1 and the {len(devices)} device(s) JAX sees here "
            f"({devices[0].platform}), got {num_devices}"
        )
    return Mesh(np.array(devices[:num_devices]), (AXIS,))


def run_mesh(config) -> Mesh:
    """The mesh a run trains on: `config.devices` devices, or one with num_seeds > 1 (vmapped GANs).

    ConfigError when the run cannot be placed: `eval_every` or num_seeds > 1 in a multi-process
    run (scoring, the best checkpoint and the stacked GANs live on process 0 alone), or a batch
    that does not split evenly over the devices.
    """
    if config.eval_every is not None:
        check_single_process("eval_every (score afterwards with scripts/evaluate.py)")
    if config.num_seeds > 1:
        check_single_process("num_seeds > 1")
    mesh = make_mesh(1 if config.num_seeds > 1 else config.devices)
    check_batch(config.batch_size, mesh)
    return mesh


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
