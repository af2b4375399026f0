"""GAN losses computed from D's logits, finite for any logit.

With D(x) = sigmoid(logit), ``-log D(x)`` is ``BCE(logit, 1)`` and ``-log(1 - D(x))`` is
``BCE(logit, 0)``; optax computes both through log-sigmoid, so a logit of ±1e4 gives a
large but finite loss and gradient instead of the seed's ``log(0) = -inf``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

G_LOSSES = ("non-saturating", "minimax")


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array, real_target: float = 1.0) -> jax.Array:
    """Mean of ``-log D(x) - log(1 - D(G(z)))`` (the seed's D loss).

    `real_target` below 1 is one-sided label smoothing: real images' target becomes that value.
    """
    real = optax.sigmoid_binary_cross_entropy(real_logits, jnp.full_like(real_logits, real_target))
    fake = optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits))
    return jnp.mean(real) + jnp.mean(fake)


def generator_loss(fake_logits: jax.Array, kind: str = "non-saturating") -> jax.Array:
    """G's loss on D's logits for G(z).

    ``non-saturating``: mean ``-log D(G(z))`` (the seed's and the paper's practical choice).
    ``minimax``: mean ``log(1 - D(G(z)))``, the paper's value function term (saturates early).
    """
    if kind == "non-saturating":
        return jnp.mean(optax.sigmoid_binary_cross_entropy(fake_logits, jnp.ones_like(fake_logits)))
    if kind == "minimax":
        return -jnp.mean(optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits)))
    raise ValueError(f"loss must be one of {', '.join(G_LOSSES)}; got {kind!r}")
