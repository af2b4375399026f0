"""Each preset trains a few steps on TFDS's mock MNIST, with the pieces that make it what it is."""

import dataclasses

import jax
import numpy as np
import pytest

from flax_gan import data, loop
from flax_gan.config import PRESETS, Config
from flax_gan.models import sigmoid_bias_from_marginals
from flax_gan.optimizers import PaperSGDState
from flax_gan.state import create_state, seed_keys


@pytest.fixture(scope="module")
def mock_mnist():
    tfds = pytest.importorskip("tensorflow_datasets")
    original = data.host_reachable
    data.host_reachable = lambda *a, **k: True  # mock_data never downloads
    try:
        with tfds.testing.mock_data(num_examples=256):
            return data.load_mnist("tfds")
    finally:
        data.host_reachable = original


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_trains_a_few_steps(name, mock_mnist, tmp_path):
    config = Config(steps=4, workdir=str(tmp_path / name), data="tfds", log_every=2, ckpt_every=4,
                    sample_every=4).replace(**PRESETS[name]).validate()
    state = loop.run(config, mock_mnist, progress=False)
    assert int(state.step) == 4
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(state))
    assert (tmp_path / name / "samples" / "step_0000004.png").is_file()
    if name == "paper":
        assert isinstance(state.g_opt_state, PaperSGDState) and int(state.g_opt_state.count) == 4
        assert state.d_params["params"]["hidden_0"]["linear"]["kernel"].shape == (784, 240 * 5)
    if name == "stable":
        assert state.d_params["params"]["hidden_1"]["kernel"].shape == (512, 256)
        assert state.g_ema_params is not None
    else:
        assert state.g_ema_params is None


def test_g_ema_tracks_g_and_is_used_for_sampling(mock_mnist, tmp_path):
    from flax_gan.sampling import sample

    config = Config(steps=3, workdir=str(tmp_path / "ema"), data="tfds", g_hidden=(32,), d_hidden=(32,),
                    batch_size=16, g_ema=0.9, log_every=3, ckpt_every=3, sample_every=3).validate()
    state = loop.run(config, mock_mnist, progress=False)
    ema, g = jax.tree.leaves(state.g_ema_params), jax.tree.leaves(state.g_params)
    assert not all(np.array_equal(a, b) for a, b in zip(ema, g))
    key = jax.random.key(0)
    with_ema = np.asarray(sample(state, key, 4))
    plain = state.replace(g_opt_state=state.g_opt_state[0], spec=dataclasses.replace(state.spec, g_ema=0.0))
    assert plain.g_ema_params is None
    assert not np.allclose(with_ema, np.asarray(sample(plain, key, 4)))
    np.testing.assert_array_equal(with_ema, np.asarray(sample(plain.replace(g_params=state.g_ema_params), key, 4)))
    np.testing.assert_array_equal(np.asarray(sample(state, key, 4, ema=False)), np.asarray(sample(plain, key, 4)))


def test_g_ema_never_changes_the_training_trajectory(mock_mnist, tmp_path):
    """The average only reads G's weights: a run's trained weights equal the run without it, so
    ``--raw-weights`` scores the same run as the plain MLP."""
    common = dict(steps=4, data="tfds", g_hidden=(32,), d_hidden=(32,), batch_size=16, log_every=2,
                  ckpt_every=4, sample_every=4)
    with_ema = loop.run(Config(workdir=str(tmp_path / "a"), g_ema=0.5, **common).validate(), mock_mnist, progress=False)
    plain = loop.run(Config(workdir=str(tmp_path / "b"), **common).validate(), mock_mnist, progress=False)
    for name in ("g_params", "d_params"):
        for a, b in zip(jax.tree.leaves(getattr(with_ema, name)), jax.tree.leaves(getattr(plain, name))):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(jax.tree.leaves(with_ema.g_ema_params)[0], jax.tree.leaves(plain.g_params)[0])


def test_paper_output_bias_starts_at_the_data_marginals(mock_mnist):
    config = Config().replace(**PRESETS["paper"])
    state = create_state(config, seed_keys(0)[0], mock_mnist.images)
    np.testing.assert_allclose(state.g_params["params"]["out"]["bias"], sigmoid_bias_from_marginals(mock_mnist.images))
    assert float(np.abs(create_state(config, seed_keys(0)[0]).g_params["params"]["out"]["bias"]).max()) == 0.0
