"""The training step: pure, jitted, and fusable into many steps per compiled call.

`train_step` is one D update then one G update on one batch. `train_steps` runs
`num_steps` of them inside one `jax.lax.scan`, drawing each batch on device from the whole
uint8 training set. Both take the run's base `key` and derive a step's randomness as
``jax.random.fold_in(key, state.step)``, so the result never depends on how steps are grouped
into calls: N calls of `train_step` equal one `train_steps` call of N steps, and a resumed run
continues exactly where a checkpoint left it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from flax_gan import parallel
from flax_gan.losses import discriminator_loss, generator_loss
from flax_gan.state import GANState

Metrics = dict[str, jax.Array]


def scale_images(images: jax.Array, output_activation: str) -> jax.Array:
    """uint8 pixels in [0, 255] -> float32 in G's range: [-1, 1] (tanh) or [0, 1] (sigmoid)."""
    x = images.astype(jnp.float32) / 255.0
    return x * 2.0 - 1.0 if output_activation == "tanh" else x


def _train_step(state: GANState, batch: jax.Array, key: jax.Array) -> tuple[GANState, Metrics]:
    spec = state.spec
    gen, disc, tx = spec.generator, spec.discriminator, spec.optimizer
    n = batch.shape[0]
    step_key = jax.random.fold_in(key, state.step)
    z = spec.noise_fn(step_key, n)
    # Dropout masks (only drawn when D has dropout): one for D's update, one for G's.
    d_rngs = {"dropout": jax.random.fold_in(step_key, 1)}
    g_rngs = {"dropout": jax.random.fold_in(step_key, 2)}
    real = scale_images(batch, spec.output_activation)
    # G's forward pass runs once: its output feeds D's update, and its VJP G's update
    # (G does not change in between, and both updates use the same z).
    fake, g_vjp = jax.vjp(lambda p: gen.apply(p, z), state.g_params)

    def d_loss_fn(d_params):
        # One D pass over real and fake together: larger matmuls, the same gradient.
        logits = disc.apply(d_params, jnp.concatenate([real, fake], axis=0), train=True, rngs=d_rngs)
        real_logits, fake_logits = logits[:n], logits[n:]
        loss = spec.d_loss_scale * discriminator_loss(real_logits, fake_logits, 1.0 - spec.label_smoothing)
        return loss, (real_logits, fake_logits)

    (d_loss, (real_logits, fake_logits)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d_params)
    d_updates, d_opt_state = tx.update(d_grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, d_updates)

    # G's update sees the *updated* D (the seed reused D's output from before D's step).
    def g_loss_fn(images):
        return generator_loss(disc.apply(d_params, images, train=True, rngs=g_rngs), spec.loss)

    g_loss, fake_grad = jax.value_and_grad(g_loss_fn)(fake)
    (g_grads,) = g_vjp(fake_grad)
    g_updates, g_opt_state = spec.g_optimizer.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)

    new_state = state.replace(
        step=state.step + 1,
        g_params=g_params,
        d_params=d_params,
        g_opt_state=g_opt_state,
        d_opt_state=d_opt_state,
    )
    metrics = {
        "d_loss": d_loss,
        "g_loss": g_loss,
        "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
        "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
    }
    return new_state, metrics


train_step = jax.jit(_train_step)
train_step.__doc__ = """One GAN update on `batch`: D first, then G against the updated D.

Args:
  state: the `GANState` before the step.
  batch: real images, integer pixels in [0, 255], shape (B, 28, 28, 1); any B.
  key: the run's base PRNG key; the step's noise is drawn from fold_in(key, state.step).

Returns:
  (new_state, metrics) with scalar metrics d_loss, g_loss, d_real = mean D(x) and
  d_fake = mean D(G(z)) (D's outputs before its update).
"""


def _data_key(key: jax.Array) -> jax.Array:
    # Kept apart from the per-step keys fold_in(key, step) that draw the noise.
    return jax.random.split(key)[1]


def _epoch_permutation(key: jax.Array, epoch: jax.Array, num_examples: int) -> jax.Array:
    return jax.random.permutation(jax.random.fold_in(_data_key(key), epoch), num_examples)


def batch_indices(key: jax.Array, step: int | jax.Array, num_examples: int, batch_size: int) -> jax.Array:
    """Indices into the training set of the batch that `train_steps` uses at `step`.

    Batches follow a fresh random permutation each epoch, with the last partial batch dropped
    (as the seed's DataLoader with shuffle=True, drop_last=True): an epoch is
    ``num_examples // batch_size`` steps, and epoch e's permutation comes from the run key and e.
    """
    steps_per_epoch = _steps_per_epoch(num_examples, batch_size)
    step = jnp.asarray(step)
    perm = _epoch_permutation(key, step // steps_per_epoch, num_examples)
    return jax.lax.dynamic_slice(perm, ((step % steps_per_epoch) * batch_size,), (batch_size,))


def _check_inputs(images: jax.Array, num_steps: int, batch_size: int) -> None:
    """ValueError naming the bad argument of train_steps / train_steps_many."""
    if images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise ValueError(f"images must have shape (N, 28, 28, 1), got {tuple(images.shape)}")
    if images.dtype != jnp.uint8:
        raise ValueError(f"images must be uint8 pixels in [0, 255], got dtype {images.dtype}")
    if not isinstance(num_steps, int) or num_steps <= 0:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    _steps_per_epoch(images.shape[0], batch_size)


def _steps_per_epoch(num_examples: int, batch_size: int) -> int:
    if not 0 < batch_size <= num_examples:
        raise ValueError(
            f"batch_size must be between 1 and the number of training images ({num_examples}), got {batch_size}"
        )
    return num_examples // batch_size


@functools.partial(jax.jit, static_argnames=("num_steps", "batch_size", "mesh"))
def _train_steps(state, images, key, num_steps, batch_size, mesh=None):
    num_examples = images.shape[0]
    steps_per_epoch = num_examples // batch_size

    def body(carry, _):
        state, perm = carry
        step = state.step
        perm = jax.lax.cond(
            step % steps_per_epoch == 0,
            lambda: _epoch_permutation(key, step // steps_per_epoch, num_examples),
            lambda: perm,
        )
        idx = jax.lax.dynamic_slice(perm, ((step % steps_per_epoch) * batch_size,), (batch_size,))
        batch = images[idx]
        if mesh is not None:  # split the batch over the devices; XLA adds the gradient all-reduce
            batch = jax.lax.with_sharding_constraint(batch, parallel.batch_sharded(mesh))
        state, metrics = _train_step(state, batch, key)
        return (state, perm), metrics

    perm0 = _epoch_permutation(key, state.step // steps_per_epoch, num_examples)
    (state, _), metrics = jax.lax.scan(body, (state, perm0), None, length=num_steps)
    return state, metrics


def train_steps(
    state: GANState,
    images: jax.Array,
    key: jax.Array,
    num_steps: int,
    batch_size: int = 128,
    mesh: Mesh | None = None,
) -> tuple[GANState, Metrics]:
    """Runs `num_steps` of `train_step` in one compiled call (`jax.lax.scan`).

    Args:
      state: the `GANState` to start from.
      images: the whole training set on device, uint8, shape (N, 28, 28, 1).
      key: the run's base PRNG key (as for `train_step`).
      num_steps: how many steps to run (static: each distinct value compiles once).
      batch_size: images per step (the global batch); at most N.
      mesh: a 1-D `jax.sharding.Mesh` with axis ``data`` (`flax_gan.parallel.make_mesh`) to
        split each batch over its devices (state and images replicated on them, see
        `flax_gan.parallel`); None runs where the inputs are.

    Each step's batch is drawn inside the call: ``images[batch_indices(key, step, N, B)]``, a
    per-epoch permutation without replacement, last partial batch dropped. The result equals
    `num_steps` calls of `train_step` on those batches.

    Returns:
      (new_state, metrics): each metric stacked over the steps, shape (num_steps,).
    """
    _check_inputs(images, num_steps, batch_size)
    if mesh is not None:
        parallel.check_batch(batch_size, mesh)  # a ConfigError, which is a ValueError
    return _train_steps(state, images, key, num_steps=num_steps, batch_size=batch_size, mesh=mesh)


@functools.partial(jax.jit, static_argnames=("num_steps", "batch_size"))
def _train_steps_many(states, images, keys, num_steps, batch_size):
    num_examples = images.shape[0]
    steps_per_epoch = num_examples // batch_size
    step0 = states.step[0]  # every GAN is at the same step
    permutations = jax.vmap(_epoch_permutation, in_axes=(0, None, None))

    def body(perms, i):
        states, perms = perms
        step = step0 + i  # unbatched, so the cond below stays a cond under the vmap
        perms = jax.lax.cond(
            step % steps_per_epoch == 0,
            lambda: permutations(keys, step // steps_per_epoch, num_examples),
            lambda: perms,
        )
        start = (step % steps_per_epoch) * batch_size
        idx = jax.lax.dynamic_slice_in_dim(perms, start, batch_size, axis=1)
        states, metrics = jax.vmap(_train_step)(states, images[idx], keys)
        return (states, perms), metrics

    perms0 = permutations(keys, step0 // steps_per_epoch, num_examples)
    (states, _), metrics = jax.lax.scan(body, (states, perms0), jnp.arange(num_steps))
    return states, metrics


def train_steps_many(
    states: GANState, images: jax.Array, keys: jax.Array, num_steps: int, batch_size: int = 128
) -> tuple[GANState, Metrics]:
    """`train_steps` for S independent GANs at once, vectorised with `jax.vmap` in one program.

    Args:
      states: S `GANState`s stacked on a leading axis (e.g. ``jax.vmap(create_state)`` over S
        init keys), all at the same step.
      images: the shared training set, uint8 (N, 28, 28, 1).
      keys: S base keys, one per GAN (each GAN's `train_steps` key).
      num_steps, batch_size: as for `train_steps`.

    GAN i follows the trajectory `train_steps(states[i], images, keys[i], ...)` would: its own
    batches, noise and updates (equal up to float rounding of the batched matmuls).

    Returns:
      (new_states, metrics): metrics of shape (num_steps, S).
    """
    _check_inputs(images, num_steps, batch_size)
    if states.step.ndim != 1 or keys.shape[:1] != states.step.shape:
        raise ValueError(f"states and keys need one leading axis of the same length, got {states.step.shape} and {keys.shape}")
    return _train_steps_many(states, images, keys, num_steps=num_steps, batch_size=batch_size)
