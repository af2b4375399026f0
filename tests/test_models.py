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


def test_maxout_takes_the_max_over_pieces():
    from flax_gan.models import Maxout

    layer = Maxout(features=3, pieces=4)
    x = jax.random.normal(jax.random.key(0), (5, 7))
    params = layer.init(jax.random.key(1), x)
    out = layer.apply(params, x)
    kernel, bias = params["params"]["linear"]["kernel"], params["params"]["linear"]["bias"]
    assert kernel.shape == (7, 12) and out.shape == (5, 3)
    np.testing.assert_allclose(out, ((x @ kernel + bias).reshape(5, 3, 4)).max(-1), rtol=1e-6)
    assert float(jnp.max(jnp.abs(kernel))) <= 0.005  # the paper's irange


def test_paper_discriminator_dropout_scaling_and_off_outside_training():
    disc = Discriminator(hidden=(240, 240), activation="maxout", pieces=5, dropout_input=0.2,
                         dropout_hidden=0.5, init_scheme="paper")
    x = jax.random.uniform(jax.random.key(0), (64, 28, 28, 1))
    params = disc.init(jax.random.key(1), x)
    assert params["params"]["hidden_0"]["linear"]["kernel"].shape == (784, 1200)
    eval_a, eval_b = disc.apply(params, x), disc.apply(params, x)
    np.testing.assert_array_equal(eval_a, eval_b)  # no dropout without train=True
    train_a = disc.apply(params, x, train=True, rngs={"dropout": jax.random.key(2)})
    train_b = disc.apply(params, x, train=True, rngs={"dropout": jax.random.key(3)})
    assert not np.allclose(train_a, train_b) and not np.allclose(train_a, eval_a)
    # Inverted dropout: kept inputs are scaled by 1/keep, so the mean input is unchanged.
    import flax.linen as nn

    drop = nn.Dropout(0.2, deterministic=False)
    ones = jnp.ones((200_000,))
    kept = drop.apply({}, ones, rngs={"dropout": jax.random.key(4)})
    assert set(np.unique(np.asarray(kept)).round(6)) == {0.0, 1.25}
    assert float(kept.mean()) == pytest.approx(1.0, abs=0.01)


def test_paper_generator_init_and_output_bias_from_the_data():
    from flax_gan.models import sigmoid_bias_from_marginals

    images = np.zeros((4, 28, 28, 1), np.uint8)
    images[:2, 0, 0] = 255  # pixel 0 is on in half the images; the rest always off
    bias = sigmoid_bias_from_marginals(images)
    assert float(bias[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(bias[1]) == pytest.approx(np.log(1e-3 / (1 - 1e-3)), rel=1e-4)  # clipped at 1e-3
    gen = Generator(hidden=(1200, 1200), output_activation="sigmoid", init_scheme="paper")
    params = gen.init(jax.random.key(0), jnp.zeros((1, 100)))
    kernels = [params["params"][k]["kernel"] for k in ("hidden_0", "hidden_1", "out")]
    assert all(float(jnp.max(jnp.abs(k))) <= 0.05 + 1e-7 for k in kernels), [float(jnp.max(jnp.abs(k))) for k in kernels]
    assert float(jnp.max(jnp.abs(kernels[0]))) > 0.04  # uniform over the whole range


def test_leaky_relu_models():
    gen = Generator(hidden=(16,), activation="leaky_relu")
    disc = Discriminator(hidden=(16,), activation="leaky_relu", dropout_hidden=0.3)
    z = jax.random.normal(jax.random.key(0), (3, 100))
    x = gen.apply(gen.init(jax.random.key(1), z), z)
    assert x.shape == (3, 28, 28, 1)
    params = disc.init(jax.random.key(2), x)
    assert disc.apply(params, x).shape == (3,)
