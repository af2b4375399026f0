"""The MNIST classifier behind FID and the MNIST score: a small Flax CNN the package trains itself.

TF-GAN's MNIST metrics use a frozen classifier downloaded from the web; here the classifier is
trained on the training split of whichever data source is in use (random shifts of up to 2
pixels as augmentation), once, and cached with orbax under
``~/.cache/flax_gan/classifier/<source>-<hash>/``, where the hash covers the training images,
their labels and the `ClassifierConfig`. FID uses its penultimate layer (128 features).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from flax_gan.files import write_text_atomic

log = logging.getLogger(__name__)

CHUNK = 250  # training steps per compiled call
INFO_FILE = "info.json"
PARAMS_DIR = "params"


def default_cache_dir() -> str:
    """$FLAX_GAN_CACHE/classifier, else ~/.cache/flax_gan/classifier."""
    root = os.environ.get("FLAX_GAN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "flax_gan")
    return os.path.join(root, "classifier")


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """The CNN's sizes and its training schedule (Adam, cosine decay, batch of shifted images)."""

    conv_features: tuple[int, ...] = (32, 64)
    dense_features: int = 128
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    max_shift: int = 2
    seed: int = 0


def patches3x3(x: jax.Array) -> jax.Array:
    """(N, H, W, C) -> (N, H, W, 9C): each pixel's 3x3 neighbourhood (zero-padded), for a conv as a matmul."""
    h, w = x.shape[1], x.shape[2]
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return jnp.concatenate([padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=-1)


class CNN(nn.Module):
    """Conv 3x3 + ReLU + 2x2 max-pool per entry of `conv_features`, a dense ReLU layer, 10 logits.

    Each 3x3 convolution ('SAME' padding) is a Dense layer over `patches3x3`: the same function as
    ``nn.Conv``, but its gradient is a plain matmul, which XLA's CPU backend runs about 10x faster
    than the transposed convolutions of ``nn.Conv``'s gradient (measured: 236 ms vs ~20 ms per
    batch of 128 on the 2-core CI machine).
    """

    conv_features: tuple[int, ...] = (32, 64)
    dense_features: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Images (N, 28, 28, 1) in [0, 1] -> (features (N, dense_features), logits (N, 10))."""
        x = jnp.asarray(x, jnp.float32).reshape(-1, 28, 28, 1)
        for features in self.conv_features:
            x = nn.relu(nn.Dense(features)(patches3x3(x)))
            n, h, w, c = x.shape
            x = x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))  # 2x2 max-pool
        features = nn.relu(nn.Dense(self.dense_features)(x.reshape(x.shape[0], -1)))
        return features, nn.Dense(10)(features)


class Classifier(NamedTuple):
    """A trained CNN: `apply(images)` -> (features, logits); its config and training facts."""

    model: CNN
    params: Any
    config: ClassifierConfig
    info: dict[str, Any]

    def apply(self, images: jax.Array, batch_size: int = 2000) -> tuple[jax.Array, jax.Array]:
        """Features and logits of images (N, 28, 28, 1) with pixels in [0, 1], in batches."""
        outs = [_apply(self.model, self.params, images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        return jnp.concatenate([f for f, _ in outs]), jnp.concatenate([l for _, l in outs])

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Share of uint8 images (N, 28, 28, 1) whose predicted class equals the label."""
        _, logits = self.apply(to_unit(images))
        return logits_accuracy(logits, labels)


def logits_accuracy(logits: jax.Array, labels: np.ndarray) -> float:
    """Share of rows of `logits` whose argmax equals the label."""
    return float(np.mean(np.asarray(jnp.argmax(logits, -1)) == np.asarray(labels)))


@functools.partial(jax.jit, static_argnums=0)
def _apply(model: CNN, params, images):
    return model.apply(params, images)


def to_unit(images: np.ndarray) -> jax.Array:
    """uint8 images -> float32 in [0, 1]."""
    return jnp.asarray(images, jnp.float32) / 255.0


def _shift(key: jax.Array, images: jax.Array, max_shift: int) -> jax.Array:
    """Each image moved by a random whole-pixel offset in [-max_shift, max_shift]^2, zero-filled."""
    if max_shift == 0:
        return images
    padded = jnp.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
    offsets = jax.random.randint(key, (images.shape[0], 2), 0, 2 * max_shift + 1)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (28, 28, 1))

    return jax.vmap(crop)(padded, offsets)


def train_classifier(images: np.ndarray, labels: np.ndarray, config: ClassifierConfig = ClassifierConfig(),
                     progress: bool = True):
    """Trains the CNN on uint8 images (N, 28, 28, 1) and int labels (N,); returns (params, train accuracy)."""
    model = CNN(config.conv_features, config.dense_features)
    key = jax.random.key(config.seed)
    init_key, train_key = jax.random.split(key)
    params = model.init(init_key, jnp.zeros((1, 28, 28, 1)))
    schedule = optax.cosine_decay_schedule(config.lr, config.steps)
    optimizer = optax.adam(schedule)
    data = to_unit(images)
    targets = jnp.asarray(labels, jnp.int32)
    batch = min(config.batch_size, data.shape[0])

    def loss_fn(params, x, y):
        _, logits = model.apply(params, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @functools.partial(jax.jit, static_argnums=3)
    def run(params, opt_state, start, length):
        def step(carry, i):
            params, opt_state = carry
            k = jax.random.fold_in(train_key, i)
            idx = jax.random.choice(jax.random.fold_in(k, 0), data.shape[0], (batch,), replace=False)
            x = _shift(jax.random.fold_in(k, 1), data[idx], config.max_shift)
            loss, grads = jax.value_and_grad(loss_fn)(params, x, targets[idx])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), start + jnp.arange(length))
        return params, opt_state, losses

    # Chunks of fused steps, so a progress bar can show the minutes this takes on a CPU.
    from tqdm import tqdm

    opt_state = optimizer.init(params)
    with tqdm(total=config.steps, desc="classifier", unit="step", disable=not progress, mininterval=1.0) as bar:
        for start in range(0, config.steps, CHUNK):
            length = min(CHUNK, config.steps - start)
            params, opt_state, losses = run(params, opt_state, start, length)
            bar.update(length)
            bar.set_postfix(loss=f"{float(losses[-1]):.3f}")
    classifier = Classifier(model, params, config, {})
    return params, classifier.accuracy(images, labels)


def fingerprint(images: np.ndarray, labels: np.ndarray, config: ClassifierConfig) -> str:
    """A short hash of the training data and the classifier config: the cache key."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels, np.int32).tobytes())
    h.update(json.dumps(dataclasses.asdict(config), sort_keys=True).encode())
    return h.hexdigest()[:16]


def load_or_train(
    images: np.ndarray,
    labels: np.ndarray,
    source: str,
    config: ClassifierConfig = ClassifierConfig(),
    cache_dir: str | None = None,
) -> Classifier:
    """The classifier for this training set: from the cache if there, else trained and cached.

    The cache entry is written into a temporary folder and renamed when complete, so an
    interrupted training leaves no half entry behind.
    """
    cache_dir = cache_dir or default_cache_dir()
    entry = os.path.join(cache_dir, f"{source}-{fingerprint(images, labels, config)}")
    model = CNN(config.conv_features, config.dense_features)
    if os.path.isfile(os.path.join(entry, INFO_FILE)):
        return _load(entry, model, config)
    log.info("training the MNIST classifier on %d %s images (once; cached in %s)", len(images), source, entry)
    params, train_accuracy = train_classifier(images, labels, config)
    info = {"source": source, "num_train": int(len(images)), "train_accuracy": train_accuracy,
            "config": dataclasses.asdict(config)}
    os.makedirs(cache_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=cache_dir, prefix=".tmp-")
    try:
        import orbax.checkpoint as ocp

        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(os.path.join(tmp, PARAMS_DIR), params)
        write_text_atomic(os.path.join(tmp, INFO_FILE), json.dumps(info, indent=2) + "\n")
        try:
            os.rename(tmp, entry)
        except OSError:  # another process cached the same classifier first
            if not os.path.isfile(os.path.join(entry, INFO_FILE)):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Classifier(model, params, config, info)


def _load(entry: str, model: CNN, config: ClassifierConfig) -> Classifier:
    import orbax.checkpoint as ocp

    with open(os.path.join(entry, INFO_FILE)) as f:
        info = json.load(f)
    template = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    with ocp.StandardCheckpointer() as checkpointer:
        params = checkpointer.restore(os.path.join(entry, PARAMS_DIR), abstract)
    return Classifier(model, params, config, info)
