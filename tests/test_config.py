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
