import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flax_gan.models import Discriminator, Generator


@pytest.mark.parametrize("batch", [1, 7, 128])
def test_generator_any_batch_and_range(batch):
    for activation, lo, hi in (("tanh", -1.0, 1.0), ("sigmoid", 0.0, 1.0)):
        g = Generator(output_activation=activation)
        params = g.init(jax.random.key(0), jnp.zeros((1, 100)))
        z = jax.random.normal(jax.random.key(1), (batch, 100))
        x = g.apply(params, z)
        assert x.shape == (batch, 28, 28, 1) and x.dtype == jnp.float32
        assert float(x.min()) >= lo and float(x.max()) <= hi


def test_seed_sizes_and_logits():
    g_params = Generator().init(jax.random.key(0), jnp.zeros((1, 100)))
    d = Discriminator()
    d_params = d.init(jax.random.key(1), jnp.zeros((1, 28, 28, 1)))
    g_shapes = [p["kernel"].shape for p in g_params["params"].values()]
    d_shapes = [p["kernel"].shape for p in d_params["params"].values()]
    assert g_shapes == [(100, 256), (256, 512), (512, 784)]
    assert d_shapes == [(784, 256), (256, 1)]
    logits = d.apply(d_params, jnp.ones((5, 28, 28, 1)) * 100.0)
    # A logit, not a probability: unbounded, and (B,) shaped.
    assert logits.shape == (5,) and logits.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(logits))) > 1.0


def test_hidden_sizes_configurable_and_torch_like_init():
    params = Generator(hidden=(16, 8, 4)).init(jax.random.key(0), jnp.zeros((1, 100)))
    shapes = [p["kernel"].shape for p in params["params"].values()]
    assert shapes == [(100, 16), (16, 8), (8, 4), (4, 784)]
    # PyTorch's Linear init: weights and biases uniform in +-1/sqrt(fan_in).
    k = np.asarray(Generator().init(jax.random.key(0), jnp.zeros((1, 100)))["params"]["hidden_1"]["kernel"])
    assert np.abs(k).max() <= 1 / np.sqrt(256) and np.abs(k).max() > 0.9 / np.sqrt(256)


def test_bad_output_activation():
    with pytest.raises(ValueError, match="tanh or sigmoid"):
        Generator(output_activation="relu").init(jax.random.key(0), jnp.zeros((1, 100)))
