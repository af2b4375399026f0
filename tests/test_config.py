import math
import re

import pytest

from flax_gan.config import Config, ConfigError, parse_sizes


def test_defaults_are_the_seeds_setup():
    c = Config().validate()
    assert (c.batch_size, c.lr, c.b1, c.b2, c.latent_dim) == (128, 2e-4, 0.5, 0.999, 100)
    assert (c.g_hidden, c.d_hidden, c.loss) == ((256, 512), (256,), "non-saturating")
    assert Config.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    "change, message",
    [
        ({"steps": 0}, "steps must be a positive integer, got 0"),
        ({"steps": -3}, "steps must be a positive integer, got -3"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"data": "imagenet"}, "data must be one of auto, tfds, bundled, synthetic; got 'imagenet'"),
        ({"lr": -1.0}, "lr must be a positive finite number, got -1.0"),
        ({"lr": math.nan}, "lr must be a positive finite number, got nan"),
        ({"b1": 1.0}, "b1 must be a number in [0, 1), got 1.0"),
        ({"output_activation": "relu"}, "output_activation must be one of tanh, sigmoid; got 'relu'"),
        ({"loss": "hinge"}, "loss must be one of non-saturating, minimax; got 'hinge'"),
        ({"g_hidden": (0,)}, "g_hidden must be a list of positive integers"),
        ({"ckpt_every": 0}, "ckpt_every must be a positive integer, got 0"),
        ({"seed": -1}, "seed must be in [0, 2**32), got -1"),
        ({"data_dir": "/no/such/dir"}, "data_dir '/no/such/dir' does not exist"),
        ({"steps": 2**31}, "steps must be below 2**31"),
        ({"steps": 2.5}, "steps must be an integer, got 2.5"),
        ({"latent_dim": 0}, "latent_dim must be a positive integer, got 0"),
        ({"d_hidden": (16, -1)}, "d_hidden must be a list of positive integers"),
        ({"g_hidden": ()}, "g_hidden must name at least one hidden layer"),
        ({"b2": -0.1}, "b2 must be a number in [0, 1), got -0.1"),
        ({"sample_every": -2}, "sample_every must be a positive integer, got -2"),
        ({"log_every": 0}, "log_every must be a positive integer, got 0"),
        ({"workdir": ""}, "workdir must be a non-empty path"),
    ],
)
def test_validation_names_value_and_what_is_allowed(change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config().replace(**change).validate()


def test_workdir_that_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        Config(workdir=str(path)).validate()


def test_parse_sizes_and_unknown_keys():
    assert parse_sizes("256,512") == (256, 512)
    for bad in ("", "a,b", "256,-1"):
        with pytest.raises(ConfigError, match="comma-separated positive integers"):
            parse_sizes(bad)
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.from_dict({"stepz": 3})


def test_presets_and_config_files(tmp_path):
    from flax_gan.config import load_config_file, preset

    assert preset("seed") == {"output_activation": "sigmoid"}
    assert preset("paper")["optimizer"] == "paper-sgd"
    with pytest.raises(ConfigError, match="preset must be one of default, seed, paper.*; got 'nope'"):
        preset("nope")
    (tmp_path / "a.json").write_text('{"steps": 50, "batch-size": 32, "g_hidden": [64, 64]}')
    assert load_config_file(str(tmp_path / "a.json")) == {"steps": 50, "batch_size": 32, "g_hidden": (64, 64)}
    (tmp_path / "b.yaml").write_text("steps: 50\nlr: 2e-4\nd_hidden: 128,64\n")
    assert load_config_file(str(tmp_path / "b.yaml")) == {"steps": 50, "lr": 2e-4, "d_hidden": (128, 64)}


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("c.json", '{"stepz": 5}', "unknown setting(s) stepz"),
        ("c.json", "{not json", "cannot parse config file"),
        ("c.yaml", "steps: [1", "cannot parse config file"),
        ("c.json", "[1, 2]", "must hold a mapping of settings, got list"),
        ("c.toml", "steps = 5", "must end in .json, .yaml or .yml"),
    ],
)
def test_bad_config_files(tmp_path, name, text, message):
    from flax_gan.config import load_config_file

    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config_file(str(tmp_path / name))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(str(tmp_path / "missing.json"))
