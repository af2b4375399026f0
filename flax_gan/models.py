"""The seed's MLP Generator and Discriminator as Flax Linen modules.

Both are pure: ``module.init(key, x)`` gives parameters, ``module.apply(params, x)`` a result.
Weights and biases are initialised as PyTorch's ``nn.Linear`` does (uniform in
±1/sqrt(fan_in)), so the seed's model starts from the same distribution it did in PyTorch.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

IMAGE_SHAPE = (28, 28, 1)
IMAGE_SIZE = 28 * 28


def _torch_bias_init(fan_in: int):
    bound = 1.0 / fan_in**0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _dense(features: int, fan_in: int, name: str) -> nn.Dense:
    # variance_scaling(1/3, fan_in, uniform) is U(±1/sqrt(fan_in)): PyTorch's Linear default.
    return nn.Dense(
        features,
        kernel_init=nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
        bias_init=_torch_bias_init(fan_in),
        name=name,
    )


class Generator(nn.Module):
    """z (B, latent_dim) -> images (B, 28, 28, 1) in [-1, 1] (tanh) or [0, 1] (sigmoid).

    Works for any batch size B (the seed hard-coded 128).
    """

    hidden: Sequence[int] = (256, 512)
    output_activation: str = "tanh"

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        x = z
        for i, features in enumerate(self.hidden):
            x = nn.relu(_dense(features, x.shape[-1], f"hidden_{i}")(x))
        x = _dense(IMAGE_SIZE, x.shape[-1], "out")(x)
        if self.output_activation == "tanh":
            x = jnp.tanh(x)
        elif self.output_activation == "sigmoid":
            x = jax.nn.sigmoid(x)
        else:
            raise ValueError(f"output_activation must be tanh or sigmoid, got {self.output_activation!r}")
        return x.reshape(z.shape[:-1] + IMAGE_SHAPE)


class Discriminator(nn.Module):
    """images (B, 28, 28, 1) or (B, 784) -> one logit per image, shape (B,).

    Returns the logit, not the probability: the losses apply the sigmoid in a numerically
    stable form (the seed's explicit sigmoid then log hit NaN).
    """

    hidden: Sequence[int] = (256,)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for i, features in enumerate(self.hidden):
            x = nn.relu(_dense(features, x.shape[-1], f"hidden_{i}")(x))
        return _dense(1, x.shape[-1], "out")(x)[:, 0]
