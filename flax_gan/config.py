"""Every setting of a run in one validated dataclass.

`Config` is the single source of truth for a training run: the command line builds one, the
workdir stores one (``config.json``), and a resumed run is checked against it. `validate`
raises `ConfigError` with a one-line message that names the bad value and what is allowed,
before anything is written to disk.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Mapping

DATA_SOURCES = ("auto", "tfds", "bundled", "synthetic")
OUTPUT_ACTIVATIONS = ("tanh", "sigmoid")
LOSSES = ("non-saturating", "minimax")
G_ACTIVATIONS = ("relu", "leaky_relu")
D_ACTIVATIONS = ("relu", "leaky_relu", "maxout")
NOISES = ("normal", "uniform")
INITS = ("torch", "paper")
OPTIMIZERS = ("adam", "paper-sgd")

# Parameters of G and D together: the seed's model has 0.77M; 250M is 4 GB of state with Adam.
MAX_PARAMS = 250_000_000
MAX_SEEDS = 4096  # GANs under one vmap
MAX_EVAL_NUM = 100_000  # images per evaluation (the Parzen pass is num x 10,000 distances)

# Settings that decide the training trajectory. A run resumed in a workdir must use the same
# values, or it would not continue the run it claims to continue.
TRAJECTORY_FIELDS = (
    "seed",
    "data",
    "batch_size",
    "latent_dim",
    "g_hidden",
    "d_hidden",
    "output_activation",
    "loss",
    "lr",
    "b1",
    "b2",
    "num_seeds",
    "g_activation",
    "d_activation",
    "maxout_pieces",
    "d_dropout_input",
    "d_dropout_hidden",
    "noise",
    "init",
    "optimizer",
    "d_loss_scale",
    "label_smoothing",
    "g_ema",
)


# Named starting points for --preset; flags and --config files apply on top.
PRESETS: dict[str, dict[str, Any]] = {
    # Our defaults: the seed's model, losses and optimizer, with the tanh output its post preferred.
    "default": {},
    # The seed's code exactly as listed: sigmoid output (data in [0, 1]), everything else as default.
    "seed": {"output_activation": "sigmoid"},
    # The paper's own MNIST model (goodfeli/adversarial, mnist.yaml): G 1200-1200 ReLU with a
    # sigmoid output whose bias starts at the data's mean pixel logits, uniform noise on
    # [-sqrt 3, sqrt 3]; D two maxout layers of 240 units x 5 pieces, dropout keep 0.8 on the
    # input and 0.5 on hidden layers; SGD lr 0.1 / 1.000004^t (floor 1e-6) with momentum 0.5 ->
    # 0.7; batch 100; D loss 0.5 (BCE real + BCE fake); G non-saturating. Our choices where the
    # paper's code is unclear or differs from our step: the momentum ramp counts epochs of 500
    # updates (its 50,000 images / 100) on any dataset (flax_gan.optimizers); G is updated after D,
    # against the updated D and with a fresh dropout mask, where the paper's code updated both at
    # once from one forward pass.
    "paper": {
        "batch_size": 100,
        "g_hidden": (1200, 1200),
        "d_hidden": (240, 240),
        "output_activation": "sigmoid",
        "d_activation": "maxout",
        "maxout_pieces": 5,
        "d_dropout_input": 0.2,
        "d_dropout_hidden": 0.5,
        "noise": "uniform",
        "init": "paper",
        "optimizer": "paper-sgd",
        "d_loss_scale": 0.5,
    },
    # The best MLP GAN measured so far on the bundled 5000 images (README, "Presets"): the
    # PyTorch-GAN-style MLP (G 256-512-1024 LeakyReLU 0.2, tanh; D 512-256 LeakyReLU 0.2 with
    # dropout 0.3; the seed's Adam) sampled from an EMA of G's weights with decay 0.99, which
    # beat the plain MLP on every metric at 5k steps; EMA 0.999 and label smoothing 0.1 did not,
    # and over 50k steps EMA 0.999 trailed 0.99 on FID at every evaluation (higher Parzen LL).
    # `paper` reaches a lower FID than this from 30k steps on (README, "Presets").
    "stable": {
        "g_hidden": (256, 512, 1024),
        "g_activation": "leaky_relu",
        "d_hidden": (512, 256),
        "d_activation": "leaky_relu",
        "d_dropout_hidden": 0.3,
        "g_ema": 0.99,
    },
}


class ConfigError(ValueError):
    """A setting is invalid; the message is one line meant for the user."""


@dataclasses.dataclass(frozen=True)
class Config:
    """All settings of a training run (defaults are the seed's setup)."""

    steps: int = 6000
    workdir: str = "runs/gan"
    seed: int = 0
    data: str = "auto"
    data_dir: str | None = None
    batch_size: int = 128
    latent_dim: int = 100
    g_hidden: tuple[int, ...] = (256, 512)
    d_hidden: tuple[int, ...] = (256,)
    output_activation: str = "tanh"
    loss: str = "non-saturating"
    lr: float = 2e-4
    b1: float = 0.5
    b2: float = 0.999
    devices: int | None = None  # None: every local device (one with num_seeds > 1); a batch is split over them
    num_seeds: int = 1  # GANs trained at once under vmap, with seeds seed, seed + 1, ...
    g_activation: str = "relu"  # G's hidden activation: relu or leaky_relu (slope 0.2)
    d_activation: str = "relu"  # D's hidden layers: relu, leaky_relu (0.2) or maxout
    maxout_pieces: int = 5  # pieces per maxout unit (d_activation maxout)
    d_dropout_input: float = 0.0  # D's dropout rate on its input (the paper: 0.2)
    d_dropout_hidden: float = 0.0  # D's dropout rate on each hidden layer's output (the paper: 0.5)
    noise: str = "normal"  # z ~ N(0, I), or uniform on [-sqrt 3, sqrt 3] (unit variance, the paper's)
    init: str = "torch"  # PyTorch Linear's init, or the paper's (uniform irange; G's output bias from data)
    optimizer: str = "adam"  # Adam(lr, b1, b2), or paper-sgd (lr, b1, b2 unused)
    d_loss_scale: float = 1.0  # D's loss = scale x (BCE real + BCE fake); the paper: 0.5
    label_smoothing: float = 0.0  # one-sided: D's target for real images is 1 - this
    g_ema: float = 0.0  # decay of an exponential moving average of G's weights, used for sampling; 0: off
    ckpt_every: int = 1000
    sample_every: int = 2000
    log_every: int = 100
    eval_every: int | None = None  # None: no evaluation during training
    eval_num: int = 10_000  # images generated per evaluation
    test_data: str | None = None  # a folder with MNIST's t10k .gz files: the evaluation's reference
    classifier_steps: int = 2000  # training steps of the evaluation's MNIST classifier (cached)

    def replace(self, **changes: Any) -> "Config":
        """Returns a copy with `changes` applied (not validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["g_hidden"] = list(self.g_hidden)
        d["d_hidden"] = list(self.d_hidden)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Config":
        """Builds a Config from `to_dict` output; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        d = dict(d)
        for key in ("g_hidden", "d_hidden"):
            if key in d and not isinstance(d[key], str):
                d[key] = tuple(d[key])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def validate(self) -> "Config":
        """Checks every value; returns self or raises `ConfigError` (one line)."""
        _positive_int("steps", self.steps)
        if self.steps >= 2**31:
            raise ConfigError(f"steps must be below 2**31 (the step counter is int32), got {self.steps}")
        _int("seed", self.seed)
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in [0, 2**32), got {self.seed}")
        _positive_int("num_seeds", self.num_seeds)
        if self.num_seeds > MAX_SEEDS:
            raise ConfigError(f"num_seeds must be at most {MAX_SEEDS}, got {self.num_seeds}")
        if self.seed + self.num_seeds > 2**32:
            raise ConfigError(f"seed + num_seeds must be at most 2**32, got {self.seed} + {self.num_seeds}")
        if self.num_seeds > 1 and self.devices not in (None, 1):
            raise ConfigError(f"num_seeds > 1 trains its GANs on one device; got devices {self.devices} (use --devices 1)")
        if self.num_seeds > 1 and self.eval_every is not None:
            raise ConfigError("eval_every works with one GAN per run; with num_seeds > 1 score each GAN "
                              "afterwards: scripts/evaluate.py --seed-index I")
        _choice("data", self.data, DATA_SOURCES)
        _positive_int("batch_size", self.batch_size)
        _positive_int("latent_dim", self.latent_dim)
        for name in ("g_hidden", "d_hidden"):
            sizes = getattr(self, name)
            if not isinstance(sizes, tuple) or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
                raise ConfigError(f"{name} must be a list of positive integers, got {sizes!r}")
        if not self.g_hidden:
            raise ConfigError("g_hidden must name at least one hidden layer, got none")
        g_dims = [self.latent_dim, *self.g_hidden, 784]
        d_dims = [784, *self.d_hidden, 1]
        pieces = [self.maxout_pieces if self.d_activation == "maxout" else 1] * len(self.d_hidden) + [1]
        params = sum((a + 1) * b for a, b in zip(g_dims[:-1], g_dims[1:]))
        params += sum((a + 1) * b * k for a, b, k in zip(d_dims[:-1], d_dims[1:], pieces))
        if params * self.num_seeds > MAX_PARAMS:
            times = f" times {self.num_seeds} seeds" if self.num_seeds > 1 else ""
            raise ConfigError(
                f"g_hidden {','.join(map(str, self.g_hidden))} and d_hidden {','.join(map(str, self.d_hidden))} "
                f"make {params:,} parameters{times}; at most {MAX_PARAMS:,} are allowed (with Adam's two moments "
                "and the gradients that is 16 bytes each)"
            )
        _choice("output_activation", self.output_activation, OUTPUT_ACTIVATIONS)
        _choice("g_activation", self.g_activation, G_ACTIVATIONS)
        _choice("d_activation", self.d_activation, D_ACTIVATIONS)
        _positive_int("maxout_pieces", self.maxout_pieces)
        _choice("noise", self.noise, NOISES)
        _choice("init", self.init, INITS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        for name in ("d_dropout_input", "d_dropout_hidden", "label_smoothing", "g_ema"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
        _positive_float("d_loss_scale", self.d_loss_scale)
        _choice("loss", self.loss, LOSSES)
        _positive_float("lr", self.lr)
        for name in ("b1", "b2"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
        if self.devices is not None:
            _positive_int("devices", self.devices)
        for name in ("ckpt_every", "sample_every", "log_every"):
            _positive_int(name, getattr(self, name))
        if self.eval_every is not None:
            _positive_int("eval_every", self.eval_every)
        _positive_int("classifier_steps", self.classifier_steps)
        _int("eval_num", self.eval_num)
        if not 2 <= self.eval_num <= MAX_EVAL_NUM:
            raise ConfigError(f"eval_num must be between 2 and {MAX_EVAL_NUM:,}, got {self.eval_num}")
        if self.test_data is not None and not os.path.isdir(self.test_data):
            raise ConfigError(f"test_data {self.test_data!r} does not exist or is not a directory")
        if not isinstance(self.workdir, str) or not self.workdir:
            raise ConfigError(f"workdir must be a non-empty path, got {self.workdir!r}")
        if os.path.exists(self.workdir) and not os.path.isdir(self.workdir):
            raise ConfigError(f"workdir {self.workdir!r} exists and is not a directory")
        if self.data_dir is not None and not os.path.isdir(self.data_dir):
            raise ConfigError(f"data_dir {self.data_dir!r} does not exist or is not a directory")
        return self

    def trajectory_diff(self, other: "Config") -> list[tuple[str, Any, Any]]:
        """The trajectory settings where `self` and `other` differ: (name, self's, other's)."""
        return [
            (name, getattr(self, name), getattr(other, name))
            for name in TRAJECTORY_FIELDS
            if getattr(self, name) != getattr(other, name)
        ]


def load_config_file(path: str) -> dict[str, Any]:
    """Settings from a JSON (.json) or YAML (.yaml/.yml) file: a mapping of Config field names.

    Dashes in keys are accepted for underscores (``batch-size``); unknown keys are an error.
    """
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist")
    try:
        with open(path) as f:
            text = f.read()
        if path.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text)
        elif path.endswith(".json"):
            data = json.loads(text)
        else:
            raise ConfigError(f"config file must end in .json, .yaml or .yml, got {path!r}")
    except (OSError, ValueError) as e:  # json and yaml parse errors are ValueErrors
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"cannot parse config file {path!r}: {str(e).splitlines()[0]}") from None
    except Exception as e:  # yaml.YAMLError
        raise ConfigError(f"cannot parse config file {path!r}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path!r} must hold a mapping of settings, got {type(data).__name__}")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"config file {path!r}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    for key in ("lr", "b1", "b2", "d_dropout_input", "d_dropout_hidden", "d_loss_scale", "label_smoothing", "g_ema"):
        if isinstance(data.get(key), str):  # YAML reads 2e-4 (no dot) as a string
            try:
                data[key] = float(data[key])
            except ValueError:
                pass  # validate() names the bad value
    for key in ("g_hidden", "d_hidden"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
        elif isinstance(data.get(key), str):
            data[key] = parse_sizes(data[key])
    return data


def preset(name: str) -> dict[str, Any]:
    """The settings of a named preset."""
    if name not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    return dict(PRESETS[name])


def parse_sizes(text: str) -> tuple[int, ...]:
    """'256,512' -> (256, 512); raises ConfigError naming the text otherwise."""
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"layer sizes must be comma-separated positive integers like 256,512, got {text!r}") from None
    if not sizes or any(s <= 0 for s in sizes):
        raise ConfigError(f"layer sizes must be comma-separated positive integers like 256,512, got {text!r}")
    return sizes


def _int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")


def _positive_int(name: str, value: Any) -> None:
    _int(name, value)
    if value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value}")


def _positive_float(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
