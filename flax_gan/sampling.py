"""Images from a trained generator, and 5x5 grids of them as PNG files."""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from flax_gan.files import atomic_path
from flax_gan.state import GANState


@functools.partial(jax.jit, static_argnames=("num", "ema"))
def _sample(state: GANState, key: jax.Array, num: int, ema: bool) -> jax.Array:
    spec = state.spec
    z = spec.noise_fn(key, num)
    images = spec.generator.apply(state.sampling_params if ema else state.g_params, z)
    if spec.output_activation == "tanh":
        images = (images + 1.0) / 2.0
    return jnp.clip(images, 0.0, 1.0)


def sample(state: GANState, key: jax.Array, num: int, ema: bool = True) -> jax.Array:
    """`num` images from G, float32 in [0, 1], shape (num, 28, 28, 1), whatever G's output activation.

    z (the spec's noise) is drawn from `key`: the same state, key and num always give the same
    images. G's moving-average weights are used when the state keeps them (``g_ema``) and `ema`
    is True; ``ema=False`` samples G's trained weights. The average never feeds back into
    training, so those are the weights the same run without ``g_ema`` would have.
    """
    if not isinstance(num, int) or num <= 0:
        raise ValueError(f"num must be a positive integer, got {num!r}")
    return _sample(state, key, num, bool(ema))


def image_grid(images: np.ndarray, rows: int = 5, cols: int = 5, pad: int = 2) -> np.ndarray:
    """The first rows*cols images in [0, 1] tiled into one uint8 grayscale picture."""
    images = np.asarray(images, np.float32).reshape(-1, 28, 28)[: rows * cols]
    grid = np.zeros((rows * (28 + pad) + pad, cols * (28 + pad) + pad), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        y, x = pad + r * (28 + pad), pad + c * (28 + pad)
        grid[y : y + 28, x : x + 28] = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return grid


def save_png(path: str, picture: np.ndarray, scale: int = 4) -> None:
    """Writes a uint8 grayscale picture as PNG (enlarged `scale` times), atomically."""
    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image = Image.fromarray(picture, mode="L")
    if scale > 1:
        image = image.resize((picture.shape[1] * scale, picture.shape[0] * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
