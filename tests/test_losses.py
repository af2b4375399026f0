import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flax_gan.losses import discriminator_loss, generator_loss

EXTREME = jnp.array([-1e4, -100.0, 0.0, 100.0, 1e4], jnp.float32)


def test_losses_match_the_seeds_formulas_at_moderate_logits():
    real = jnp.array([0.3, -1.2, 2.0])
    fake = jnp.array([-0.5, 0.7, 1.5])
    d_real, d_fake = jax.nn.sigmoid(real), jax.nn.sigmoid(fake)
    want_d = np.mean(-np.log(d_real)) + np.mean(-np.log(1 - d_fake))
    np.testing.assert_allclose(discriminator_loss(real, fake), want_d, rtol=1e-5)
    np.testing.assert_allclose(generator_loss(fake), np.mean(-np.log(d_fake)), rtol=1e-5)
    np.testing.assert_allclose(generator_loss(fake, "minimax"), np.mean(np.log(1 - d_fake)), rtol=1e-5)


@pytest.mark.parametrize("kind", ["non-saturating", "minimax"])
def test_losses_and_gradients_finite_at_extreme_logits(kind):
    values = [discriminator_loss(EXTREME, EXTREME), generator_loss(EXTREME, kind)]
    grads = [
        jax.grad(lambda x: discriminator_loss(x, x))(EXTREME),
        jax.grad(lambda x: generator_loss(x, kind))(EXTREME),
    ]
    for v in values + grads:
        assert bool(jnp.all(jnp.isfinite(v))), v
    # -log D(G(z)) at logit -1e4 is 1e4: large, finite, exact.
    np.testing.assert_allclose(generator_loss(jnp.array([-1e4])), 1e4, rtol=1e-6)


def test_unknown_loss():
    with pytest.raises(ValueError, match="non-saturating, minimax"):
        generator_loss(EXTREME, "wasserstein")
