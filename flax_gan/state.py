"""GANState: both networks' parameters, each with its own Adam state, and the step.

The state is one pytree (a `flax.struct` dataclass), so it passes through `jit`, `lax.scan`,
`vmap` and orbax unchanged. Its static part, `spec`, says which model, loss and optimizer the
arrays belong to; it is hashable, so states built from equal settings share compiled programs.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from flax_gan.config import Config
from flax_gan.models import Discriminator, Generator, sigmoid_bias_from_marginals
from flax_gan.optimizers import ema_params, paper_sgd, track_ema

PyTree = Any


@dataclasses.dataclass(frozen=True)
class GANSpec:
    """The static description of a GAN: architecture, loss and optimizer settings."""

    latent_dim: int = 100
    g_hidden: tuple[int, ...] = (256, 512)
    d_hidden: tuple[int, ...] = (256,)
    output_activation: str = "tanh"
    loss: str = "non-saturating"
    lr: float = 2e-4
    b1: float = 0.5
    b2: float = 0.999
    g_activation: str = "relu"
    d_activation: str = "relu"
    maxout_pieces: int = 5
    d_dropout_input: float = 0.0
    d_dropout_hidden: float = 0.0
    noise: str = "normal"
    init: str = "torch"
    optimizer_name: str = "adam"
    d_loss_scale: float = 1.0
    label_smoothing: float = 0.0
    g_ema: float = 0.0

    @classmethod
    def from_config(cls, config: Config) -> "GANSpec":
        renamed = {"optimizer_name": "optimizer"}
        return cls(**{f.name: getattr(config, renamed.get(f.name, f.name)) for f in dataclasses.fields(cls)})

    @property
    def generator(self) -> Generator:
        return Generator(hidden=self.g_hidden, output_activation=self.output_activation,
                         activation=self.g_activation, init_scheme=self.init)

    @property
    def discriminator(self) -> Discriminator:
        return Discriminator(hidden=self.d_hidden, activation=self.d_activation, pieces=self.maxout_pieces,
                             dropout_input=self.d_dropout_input, dropout_hidden=self.d_dropout_hidden,
                             init_scheme=self.init)

    @property
    def optimizer(self) -> optax.GradientTransformation:
        """Adam as in the seed, or the paper's SGD; G and D each get their own state of it."""
        if self.optimizer_name == "paper-sgd":
            return paper_sgd()
        return optax.adam(self.lr, b1=self.b1, b2=self.b2)

    @property
    def g_optimizer(self) -> optax.GradientTransformation:
        """G's optimizer: `optimizer`, followed by `track_ema` when ``g_ema`` > 0 (the EMA lives in
        G's optimizer state, so states without it keep the seed's checkpoint layout)."""
        if self.g_ema:
            return optax.chain(self.optimizer, track_ema(self.g_ema))
        return self.optimizer

    def noise_fn(self, key: jax.Array, num: int) -> jax.Array:
        """z for `num` images: N(0, I), or uniform on [-sqrt 3, sqrt 3] (unit variance; the paper's)."""
        shape = (num, self.latent_dim)
        if self.noise == "uniform":
            return jax.random.uniform(key, shape, jnp.float32, -3.0**0.5, 3.0**0.5)
        return jax.random.normal(key, shape, jnp.float32)


@struct.dataclass
class GANState:
    """Training state: step, G and D parameters, and one optax state per network."""

    step: jax.Array
    g_params: PyTree
    d_params: PyTree
    g_opt_state: optax.OptState
    d_opt_state: optax.OptState
    spec: GANSpec = struct.field(pytree_node=False)

    @property
    def g_ema_params(self) -> PyTree | None:
        """The moving average of G's weights (spec.g_ema > 0), else None."""
        return ema_params(self.g_opt_state)

    @property
    def sampling_params(self) -> PyTree:
        """G's weights to draw images with: the moving average when there is one."""
        ema = self.g_ema_params
        return ema if ema is not None else self.g_params


def create_state(config: Config | GANSpec, key: jax.Array, images: jax.Array | None = None) -> GANState:
    """Initialises G and D from `key` (step 0, fresh optimizer states).

    With the paper's init, G's output bias is set from the mean pixels of `images` (uint8
    training images; `sigmoid_bias_from_marginals`); without them it stays 0, which is fine for
    a template to restore a checkpoint into.
    """
    spec = config if isinstance(config, GANSpec) else GANSpec.from_config(config)
    state = _init(spec, key)
    if spec.init == "paper" and images is not None:
        g_params = _set_output_bias(state.g_params, sigmoid_bias_from_marginals(images))
        state = state.replace(g_params=g_params, g_opt_state=spec.g_optimizer.init(g_params))
    return state


def _set_output_bias(g_params: PyTree, bias: jax.Array) -> PyTree:
    params = jax.tree.map(lambda x: x, g_params)  # a copy with new containers
    params["params"]["out"]["bias"] = bias.astype(params["params"]["out"]["bias"].dtype)
    return params


@functools.partial(jax.jit, static_argnums=0)
def _init(spec: GANSpec, key: jax.Array) -> GANState:
    # One compiled program: run eagerly, each initialiser op would compile on its own (seconds).
    g_key, d_key = jax.random.split(key)
    g_params = spec.generator.init(g_key, jnp.zeros((1, spec.latent_dim), jnp.float32))
    d_params = spec.discriminator.init(d_key, jnp.zeros((1, 28, 28, 1), jnp.float32))
    return GANState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_params,
        d_params=d_params,
        g_opt_state=spec.g_optimizer.init(g_params),
        d_opt_state=spec.optimizer.init(d_params),
        spec=spec,
    )


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(init_key, train_key, sample_key) for a run seed: one seed fixes the whole run."""
    init_key, train_key, sample_key = jax.random.split(jax.random.key(seed), 3)
    return init_key, train_key, sample_key


def run_keys(config: Config) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(init, train, sample) keys of a run: `seed_keys(config.seed)`, or with ``num_seeds`` S > 1,
    each stacked over the seeds ``seed, seed + 1, ..., seed + S - 1`` (shape (S,))."""
    if config.num_seeds == 1:
        return seed_keys(config.seed)
    keys = [seed_keys(config.seed + i) for i in range(config.num_seeds)]
    return tuple(jnp.stack([k[j] for k in keys]) for j in range(3))


def create_run_state(config: Config, images: jax.Array | None = None) -> GANState:
    """The fresh state of a run: one GAN, or with ``num_seeds`` S > 1, S GANs stacked on a leading axis.

    Each GAN is initialised on its own and then stacked, so GAN i starts bit for bit where a
    one-GAN run with seed ``config.seed + i`` starts.
    """
    init_keys = run_keys(config)[0]
    if config.num_seeds == 1:
        return create_state(config, init_keys, images)
    states = [create_state(config, k, images) for k in init_keys]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


def state_step(state: GANState) -> int:
    """The step of a state, or of stacked states (all at the same step)."""
    return int(jnp.ravel(state.step)[0])


def select(state: GANState, index: int) -> GANState:
    """GAN `index` of stacked states (as `create_run_state` makes with num_seeds > 1)."""
    return jax.tree.map(lambda leaf: leaf[index], state)
