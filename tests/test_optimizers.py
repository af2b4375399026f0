"""The paper's SGD: its learning-rate and momentum schedules, and its update rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flax_gan.optimizers import paper_learning_rate, paper_momentum, paper_sgd


@pytest.mark.parametrize("step, lr", [
    (0, 0.1),
    (1, 0.1 / 1.000004),
    (100_000, 0.1 / 1.000004**100_000),  # 0.0670
    (2_000_000, 1e-6 * 0 + 0.1 / 1.000004**2_000_000),  # 3.4e-5, above the floor
    (3_000_000, 1e-6),  # 0.1 / 1.000004**3e6 = 6e-7: the floor
])
def test_paper_learning_rate(step, lr):
    assert float(paper_learning_rate(step)) == pytest.approx(max(lr, 1e-6), rel=1e-4)


@pytest.mark.parametrize("step, momentum", [
    (0, 0.5), (499, 0.5), (500, 0.5),  # epoch 1 is the start of the ramp
    (1000, 0.5 + 0.2 / 249), (500 * 125, 0.5 + 0.2 * 124 / 249), (500 * 250, 0.7), (10**7, 0.7),
])
def test_paper_momentum(step, momentum):
    assert float(paper_momentum(step)) == pytest.approx(momentum, rel=1e-6)


def test_paper_sgd_is_classic_momentum_with_the_schedules():
    tx = paper_sgd()
    params = {"w": jnp.array([1.0, -2.0])}
    state = tx.init(params)
    velocity = np.zeros(2)
    p = np.array([1.0, -2.0])
    for t in range(3):
        grads = {"w": jnp.array([0.5, 1.5]) * (t + 1)}
        updates, state = tx.update(grads, state, params)
        params = jax.tree.map(lambda a, u: a + u, params, updates)
        velocity = float(paper_momentum(t)) * velocity - float(paper_learning_rate(t)) * np.asarray(grads["w"])
        p = p + velocity
    np.testing.assert_allclose(np.asarray(params["w"]), p, rtol=1e-6)
    assert int(state.count) == 3


def test_track_ema_averages_the_updated_weights():
    import optax

    from flax_gan.optimizers import ema_params, track_ema

    tx = optax.chain(optax.sgd(1.0), track_ema(0.5))
    params = {"w": jnp.array(4.0)}
    state = tx.init(params)
    assert float(ema_params(state)["w"]) == 4.0
    for grad, expected in ((1.0, 0.5 * 4.0 + 0.5 * 3.0), (1.0, 0.5 * 3.5 + 0.5 * 2.0)):
        updates, state = tx.update({"w": jnp.array(grad)}, state, params)
        params = optax.apply_updates(params, updates)
        assert float(ema_params(state)["w"]) == pytest.approx(expected)
    assert ema_params(optax.sgd(1.0).init(params)) is None
