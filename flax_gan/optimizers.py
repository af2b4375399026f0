"""The optimizers a GAN can use: the seed's Adam, and the paper's SGD with rising momentum.

The paper's code (goodfeli/adversarial, ``mnist.yaml``) trains both nets with pylearn2's SGD:
learning rate 0.1 divided by 1.000004 after every update (``ExponentialDecay``, floor 1e-6), and
classic momentum (``v = m v - lr g; p += v``) rising linearly from 0.5 to 0.7 between epochs 1
and 250 (``MomentumAdjustor(start=1, saturate=250)``). Its epochs were 500 updates (50,000
images in batches of 100); we count epochs in those 500-update units whatever the dataset, so
the schedule depends on the update count alone (our choice: with the bundled 5000 images an
epoch would be 50 updates and the momentum would saturate 10x sooner).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

PAPER_LR = 0.1
PAPER_LR_DECAY = 1.000004
PAPER_MIN_LR = 1e-6
PAPER_MOMENTUM = (0.5, 0.7)
PAPER_MOMENTUM_EPOCHS = (1, 250)  # MomentumAdjustor start, saturate
PAPER_UPDATES_PER_EPOCH = 500  # 50,000 images / batch 100


def paper_learning_rate(step: jax.Array | int) -> jax.Array:
    """0.1 / 1.000004**step, at least 1e-6: the rate of update number `step` (from 0)."""
    step = jnp.asarray(step, jnp.float32)
    # log(1.000004) taken in float64: in float32, 1.000004 itself is off by 1.6% of its log.
    return jnp.maximum(PAPER_LR * jnp.exp(-step * math.log(PAPER_LR_DECAY)), PAPER_MIN_LR)


def paper_momentum(step: jax.Array | int) -> jax.Array:
    """0.5 until epoch 1, then linear to 0.7 at epoch 250 and after (epochs of 500 updates)."""
    epoch = jnp.asarray(step, jnp.float32) // PAPER_UPDATES_PER_EPOCH
    start, saturate = PAPER_MOMENTUM_EPOCHS
    alpha = jnp.clip((epoch - start) / (saturate - start), 0.0, 1.0)
    return PAPER_MOMENTUM[0] * (1 - alpha) + alpha * PAPER_MOMENTUM[1]


class PaperSGDState(NamedTuple):
    count: jax.Array
    velocity: optax.Updates


def paper_sgd() -> optax.GradientTransformation:
    """pylearn2's SGD with the paper's schedules: ``v = m(t) v - lr(t) g``, update ``v``."""

    def init(params):
        return PaperSGDState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params))

    def update(grads, state, params=None):
        del params
        lr, momentum = paper_learning_rate(state.count), paper_momentum(state.count)
        velocity = jax.tree.map(lambda v, g: momentum * v - lr * g, state.velocity, grads)
        return velocity, PaperSGDState(state.count + 1, velocity)

    return optax.GradientTransformation(init, update)


class EmaState(NamedTuple):
    """The moving average of the parameters after each update."""

    ema: optax.Params


def track_ema(decay: float) -> optax.GradientTransformation:
    """Keeps ``ema = decay * ema + (1 - decay) * new_params`` in its state; passes updates through.

    Chained after an optimizer (``optax.chain(adam, track_ema(0.999))``), it averages the weights
    each update produces, starting from the initial weights. `ema_params` reads it back.
    """

    def init(params):
        return EmaState(jax.tree.map(jnp.asarray, params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("track_ema needs the parameters: call update(updates, state, params)")
        new = optax.apply_updates(params, updates)
        ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema, new)
        return updates, EmaState(ema)

    return optax.GradientTransformation(init, update)


def ema_params(opt_state) -> optax.Params | None:
    """The averaged parameters in an optimizer state that has `track_ema`, else None."""
    for part in opt_state if isinstance(opt_state, tuple) else ():
        if isinstance(part, EmaState):
            return part.ema
    return None
