"""Shared fixtures: a small GAN and a small dataset, so the suite runs in minutes on 2 cores."""

import os
import tempfile

import jax
import numpy as np
import pytest

from flax_gan import checkpoint
from flax_gan.config import Config
from flax_gan.data import Dataset
from flax_gan.state import create_run_state

# Evaluation classifiers trained by tests (and by the scripts they start) go to a fresh folder,
# never into the user's ~/.cache/flax_gan.
os.environ["FLAX_GAN_CACHE"] = tempfile.mkdtemp(prefix="flax_gan_test_cache_")


@pytest.fixture
def small_config(tmp_path) -> Config:
    """A tiny model (hidden 32/64 and 32) with the seed's losses and optimizer."""
    return Config(
        steps=40,
        workdir=str(tmp_path / "run"),
        data="synthetic",
        batch_size=16,
        g_hidden=(32, 64),
        d_hidden=(32,),
        latent_dim=8,
        ckpt_every=10,
        sample_every=20,
        log_every=10,
    )


@pytest.fixture
def small_images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (100, 28, 28, 1), dtype=np.uint8)


@pytest.fixture
def small_dataset(small_images) -> Dataset:
    return Dataset(small_images, np.zeros(len(small_images), np.int32), "synthetic", "test")


def restore(workdir, config=None):
    """The latest checkpoint in `workdir` (read-only), for `config` or the workdir's config.json."""
    config = config or checkpoint.read_config(str(workdir))
    manager = checkpoint.make_manager(str(workdir), read_only=True)
    try:
        return checkpoint.restore_latest(manager, create_run_state(config))
    finally:
        manager.close()


def tree_equal(a, b) -> bool:
    """True if two pytrees have the same structure and bit-identical leaves."""
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    return ta == tb and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))
