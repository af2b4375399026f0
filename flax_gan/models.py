"""The MLP Generator and Discriminator as Flax Linen modules, with the paper's Maxout and dropout.

Both are pure: ``module.init(key, x)`` gives parameters, ``module.apply(params, x)`` a result.
With ``init_scheme="torch"`` (the seed's model) weights and biases are initialised as PyTorch's
``nn.Linear`` does (uniform in ±1/sqrt(fan_in)); with ``init_scheme="paper"`` as the paper's pylearn2
code did: weights uniform in ±irange (G 0.05, D 0.005), biases 0 (G's output bias can then be set
from the data, `sigmoid_bias_from_marginals`).
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


ACTIVATIONS = ("relu", "leaky_relu", "maxout")
INITS = ("torch", "paper")
PAPER_IRANGE = {"generator": 0.05, "discriminator": 0.005}  # mnist.yaml's irange


def _layer(features: int, fan_in: int, name: str, init: str, irange: float) -> nn.Dense:
    if init == "torch":
        return _dense(features, fan_in, name)
    return nn.Dense(features, kernel_init=_uniform(irange), bias_init=nn.initializers.zeros, name=name)


def _uniform(irange: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -irange, irange)

    return init


def _activate(x: jax.Array, activation: str) -> jax.Array:
    if activation == "relu":
        return nn.relu(x)
    if activation == "leaky_relu":
        return nn.leaky_relu(x, 0.2)
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")


class Maxout(nn.Module):
    """Maxout units (Goodfellow et al. 2013): the max over `pieces` affine maps per unit."""

    features: int
    pieces: int = 5
    init_scheme: str = "paper"
    irange: float = 0.005

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = _layer(self.features * self.pieces, x.shape[-1], "linear", self.init_scheme, self.irange)(x)
        return y.reshape(*y.shape[:-1], self.features, self.pieces).max(axis=-1)


def sigmoid_bias_from_marginals(images, eps: float = 1e-3):
    """G's output bias that makes a zero pre-activation give the data's mean pixel values:
    ``logit(clip(mean, eps, 1 - eps))``, as pylearn2's ``init_sigmoid_bias_from_marginals``
    (used by the paper's mnist.yaml). `images`: uint8 (N, 28, 28, 1) -> (784,) float32."""
    mean = jnp.clip(jnp.asarray(images, jnp.float32).reshape(images.shape[0], -1).mean(0) / 255.0, eps, 1 - eps)
    return jnp.log(mean / (1 - mean))


class Generator(nn.Module):
    """z (B, latent_dim) -> images (B, 28, 28, 1) in [-1, 1] (tanh) or [0, 1] (sigmoid).

    Works for any batch size B (the seed hard-coded 128).
    """

    hidden: Sequence[int] = (256, 512)
    output_activation: str = "tanh"
    activation: str = "relu"  # or leaky_relu (slope 0.2)
    init_scheme: str = "torch"

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        x = z
        irange = PAPER_IRANGE["generator"]
        for i, features in enumerate(self.hidden):
            x = _activate(_layer(features, x.shape[-1], f"hidden_{i}", self.init_scheme, irange)(x), self.activation)
        x = _layer(IMAGE_SIZE, x.shape[-1], "out", self.init_scheme, irange)(x)
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

    Dropout (the paper's D: keep 0.8 of the inputs, 0.5 of each hidden layer's inputs) is
    inverted dropout, kept values scaled by 1/keep as pylearn2's ``input_scales`` did; it is on
    only with ``train=True``, which needs a ``'dropout'`` rng: ``apply(..., rngs={'dropout': key})``.
    """

    hidden: Sequence[int] = (256,)
    activation: str = "relu"  # leaky_relu (slope 0.2) or maxout
    pieces: int = 5  # maxout pieces
    dropout_input: float = 0.0  # drop rates (1 - keep probability)
    dropout_hidden: float = 0.0
    init_scheme: str = "torch"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        irange = PAPER_IRANGE["discriminator"]
        for i, features in enumerate(self.hidden):
            rate = self.dropout_input if i == 0 else self.dropout_hidden
            x = nn.Dropout(rate, deterministic=not train or rate == 0.0)(x)
            if self.activation == "maxout":
                x = Maxout(features, self.pieces, self.init_scheme, irange, name=f"hidden_{i}")(x)
            else:
                x = _activate(_layer(features, x.shape[-1], f"hidden_{i}", self.init_scheme, irange)(x), self.activation)
        rate = self.dropout_hidden if self.hidden else self.dropout_input
        x = nn.Dropout(rate, deterministic=not train or rate == 0.0)(x)
        return _layer(1, x.shape[-1], "out", self.init_scheme, irange)(x)[:, 0]
