import json
import os

import jax.numpy as jnp
import optax
import pytest

from conftest import restore, tree_equal
from flax_gan import checkpoint, loop
from flax_gan.config import ConfigError
from flax_gan.state import create_state, seed_keys
from flax_gan.step import train_steps




def test_round_trip_keeps_types_and_values(small_config, small_images, tmp_path):
    init_key, key, _ = seed_keys(0)
    state, _ = train_steps(create_state(small_config, init_key), jnp.asarray(small_images), key, 3, 16)
    manager = checkpoint.make_manager(str(tmp_path))
    checkpoint.save(manager, state)
    manager.wait_until_finished()
    manager.close()
    restored = restore(str(tmp_path), small_config)
    assert tree_equal(restored, state)
    assert isinstance(restored.g_opt_state[0], optax.ScaleByAdamState)
    assert int(restored.step) == 3


def test_resume_is_exact(small_config, small_dataset, tmp_path):
    full = small_config.replace(workdir=str(tmp_path / "full"))
    loop.run(full, small_dataset, progress=False)

    half = small_config.replace(workdir=str(tmp_path / "half"), steps=20)
    loop.run(half, small_dataset, progress=False)
    resumed = loop.run(half.replace(steps=40), small_dataset, progress=False)

    assert int(resumed.step) == 40
    assert tree_equal(restore(full.workdir, full), restore(half.workdir, half))
    # metrics.jsonl holds each logged step once, in order.
    with open(os.path.join(half.workdir, loop.METRICS_FILE)) as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == [10, 20, 30, 40]


def test_resume_drops_metrics_logged_after_the_checkpoint(small_config, small_dataset):
    config = small_config.replace(steps=20)
    loop.run(config, small_dataset, progress=False)
    path = os.path.join(config.workdir, loop.METRICS_FILE)
    with open(path, "a") as f:  # as if the run had logged step 30, then died before saving it
        f.write(json.dumps({"step": 30, "d_loss": 0.0}) + "\n" + '{"step": 3')
    loop.run(config.replace(steps=30), small_dataset, progress=False)
    with open(path) as f:
        assert [json.loads(line)["step"] for line in f] == [10, 20, 30]


def test_last_three_checkpoints_kept(small_config, small_dataset):
    loop.run(small_config, small_dataset, progress=False)
    assert sorted(os.listdir(checkpoint.checkpoint_dir(small_config.workdir))) == ["20", "30", "40"]


def test_check_resume_names_the_setting(small_config):
    with pytest.raises(ConfigError, match=r"loss is 'minimax' but the run in .* used 'non-saturating'"):
        checkpoint.check_resume(small_config, small_config.replace(loss="minimax"))
    with pytest.raises(ConfigError, match=r"g_hidden .*\(and lr\)"):
        checkpoint.check_resume(small_config, small_config.replace(g_hidden=(8,), lr=1e-3))
    checkpoint.check_resume(small_config, small_config.replace(steps=10**6, ckpt_every=7))


def test_restore_into_a_different_model_is_a_clear_error(small_config, small_dataset):
    loop.run(small_config.replace(steps=10), small_dataset, progress=False)
    with pytest.raises(ConfigError, match="does not match this run's model"):
        restore(small_config.workdir, small_config.replace(g_hidden=(8, 8)))


def test_restore_into_another_layout_is_an_error_not_damage(small_config, small_dataset):
    loop.run(small_config.replace(steps=10), small_dataset, progress=False)
    manager = checkpoint.make_manager(small_config.workdir)
    template = create_state(small_config.replace(g_ema=0.9), seed_keys(0)[0])  # G's optimizer state grows
    try:
        with pytest.raises(ConfigError, match="another layout|does not match this run's model"):
            checkpoint.restore_latest(manager, template, quarantine=True)
    finally:
        manager.close()
    assert sorted(os.listdir(checkpoint.checkpoint_dir(small_config.workdir))) == ["10"]  # nothing moved
    assert not os.path.exists(os.path.join(small_config.workdir, checkpoint.DAMAGED_DIR))


def test_config_file_round_trip(small_config, tmp_path):
    checkpoint.write_config(str(tmp_path), small_config)
    assert checkpoint.read_config(str(tmp_path)) == small_config
    assert checkpoint.read_config(str(tmp_path / "none")) is None
    (tmp_path / checkpoint.CONFIG_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        checkpoint.read_config(str(tmp_path))
