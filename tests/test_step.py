import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import tree_equal
from flax_gan.losses import discriminator_loss, generator_loss
from flax_gan.state import create_state, seed_keys
from flax_gan.step import batch_indices, scale_images, train_step, train_steps


@functools.partial(jax.jit, static_argnames="d_for_g")
def reference_step(state, batch, key, d_for_g="updated"):
    """The seed's algorithm written plainly: separate D passes, G's forward pass recomputed."""
    spec = state.spec
    gen, disc, tx = spec.generator, spec.discriminator, spec.optimizer
    z = jax.random.normal(jax.random.fold_in(key, state.step), (batch.shape[0], spec.latent_dim))
    real = scale_images(batch, spec.output_activation)

    def d_loss(dp):
        fake = gen.apply(state.g_params, z)
        return discriminator_loss(disc.apply(dp, real), disc.apply(dp, fake))

    d_grads = jax.grad(d_loss)(state.d_params)
    d_updates, _ = tx.update(d_grads, state.d_opt_state, state.d_params)
    new_d = optax.apply_updates(state.d_params, d_updates)
    dp_for_g = new_d if d_for_g == "updated" else state.d_params
    g_grads = jax.grad(lambda gp: generator_loss(disc.apply(dp_for_g, gen.apply(gp, z)), spec.loss))(state.g_params)
    g_updates, _ = tx.update(g_grads, state.g_opt_state, state.g_params)
    return optax.apply_updates(state.g_params, g_updates), new_d


def max_diff(a, b):
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("loss", ["non-saturating", "minimax"])
def test_step_matches_reference_with_updated_d(small_config, small_images, loss):
    config = small_config.replace(loss=loss)
    init_key, key, _ = seed_keys(0)
    state = create_state(config, init_key)
    # A few steps in first, so Adam's moments are non-zero and D's update matters.
    state, _ = train_steps(state, jnp.asarray(small_images), key, 5, 16)
    batch = jnp.asarray(small_images[:16])
    new, _ = train_step(state, batch, key)
    want_g, want_d = reference_step(state, batch, key)
    assert max_diff(new.d_params, want_d) < 1e-5
    assert max_diff(new.g_params, want_g) < 1e-5
    # The seed's defect (G's update against the old D) gives a measurably different G.
    stale_g, _ = reference_step(state, batch, key, d_for_g="old")
    assert max_diff(stale_g, want_g) > 1e-4


def test_one_step_changes_both_networks_and_optimizer_states(small_config, small_images):
    init_key, key, _ = seed_keys(0)
    state = create_state(small_config, init_key)
    new, metrics = train_step(state, jnp.asarray(small_images[:16]), key)
    assert int(new.step) == 1
    for field in ("g_params", "d_params", "g_opt_state", "d_opt_state"):
        before, after = jax.tree.leaves(getattr(state, field)), jax.tree.leaves(getattr(new, field))
        assert any(not np.array_equal(a, b) for a, b in zip(before, after)), field
    assert set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert 0 < float(metrics["d_real"]) < 1 and 0 < float(metrics["d_fake"]) < 1


def test_fused_equals_stepwise(small_config, small_images):
    init_key, key, _ = seed_keys(3)
    state = create_state(small_config, init_key)
    images = jnp.asarray(small_images)
    n, batch = 13, 16  # crosses an epoch boundary: 100 images, 6 steps an epoch
    stepwise = state
    for step in range(n):
        idx = batch_indices(key, step, len(small_images), batch)
        stepwise, _ = train_step(stepwise, images[idx], key)
    fused, metrics = train_steps(state, images, key, n, batch)
    assert tree_equal(fused, stepwise)
    assert metrics["d_loss"].shape == (n,)
    # Grouping does not matter either: 5 + 8 steps give the same state as 13.
    first, _ = train_steps(state, images, key, 5, batch)
    second, _ = train_steps(first, images, key, 8, batch)
    assert tree_equal(second, fused)


def test_same_seed_same_result_other_seed_differs(small_config, small_images):
    images = jnp.asarray(small_images)

    def run(seed):
        init_key, key, _ = seed_keys(seed)
        return train_steps(create_state(small_config, init_key), images, key, 10, 16)[0]

    assert tree_equal(run(0), run(0))
    assert not tree_equal(run(0).g_params, run(1).g_params)


def test_batches_are_a_permutation_per_epoch():
    key = jax.random.key(0)
    n, b = 50, 8  # 6 steps an epoch, 2 images dropped
    epoch0 = np.concatenate([np.asarray(batch_indices(key, s, n, b)) for s in range(6)])
    epoch1 = np.concatenate([np.asarray(batch_indices(key, s, n, b)) for s in range(6, 12)])
    assert len(set(epoch0.tolist())) == 48 and len(set(epoch1.tolist())) == 48
    assert not np.array_equal(epoch0, epoch1)


def test_train_steps_rejects_bad_input(small_config, small_images):
    init_key, key, _ = seed_keys(0)
    state = create_state(small_config, init_key)
    with pytest.raises(ValueError, match="batch_size must be between 1 and the number of training images"):
        train_steps(state, jnp.asarray(small_images), key, 2, 1000)
    with pytest.raises(ValueError, match="uint8"):
        train_steps(state, jnp.asarray(small_images, jnp.float32), key, 2, 16)
    with pytest.raises(ValueError, match="num_steps"):
        train_steps(state, jnp.asarray(small_images), key, 0, 16)


def test_vmap_over_states(small_config, small_images):
    """The step has no Python-side state: it maps over a batch of GANs."""
    images = jnp.asarray(small_images[:16])
    keys = jax.random.split(jax.random.key(0), 2)
    states = jax.jit(jax.vmap(lambda k: create_state(small_config, k)))(keys)
    new, metrics = jax.jit(jax.vmap(train_step, in_axes=(0, None, 0)))(states, images, keys)
    assert metrics["d_loss"].shape == (2,)
    single, _ = train_step(create_state(small_config, keys[1]), images, keys[1])
    assert max_diff(jax.tree.map(lambda x: x[1], new.g_params), single.g_params) < 1e-5


def test_many_gans_at_once_equal_each_trained_alone(small_config, small_images):
    from flax_gan.step import train_steps_many

    images = jnp.asarray(small_images)
    seeds = (0, 1, 2)
    init_keys = jnp.stack([seed_keys(s)[0] for s in seeds])
    keys = jnp.stack([seed_keys(s)[1] for s in seeds])
    states = jax.jit(jax.vmap(lambda k: create_state(small_config, k)))(init_keys)
    many, metrics = train_steps_many(states, images, keys, 13, 16)  # crosses an epoch boundary
    assert metrics["d_loss"].shape == (13, 3)
    for i, seed in enumerate(seeds):
        alone, alone_metrics = train_steps(create_state(small_config, init_keys[i]), images, keys[i], 13, 16)
        assert max_diff(jax.tree.map(lambda x: x[i], many.g_params), alone.g_params) < 1e-5
        assert max_diff(jax.tree.map(lambda x: x[i], many.d_params), alone.d_params) < 1e-5
        np.testing.assert_allclose(metrics["d_loss"][:, i], alone_metrics["d_loss"], rtol=1e-4)
    assert not np.allclose(metrics["d_loss"][:, 0], metrics["d_loss"][:, 1])
