"""Sample-quality metrics on arrays of images or of classifier outputs, in JAX.

* `frechet_distance`: FID between two feature sets (Gaussian fits; stable matrix square root).
* `mnist_score`: ``exp(E_x KL(p(y|x) || p(y)))`` from classifier logits (1 to 10 on MNIST).
* `class_histogram`: how many images fall in each predicted class; `min_class_share`.
* `parzen_log_likelihood`: the Gaussian Parzen-window log-likelihood of Goodfellow et al. 2014
  (their ``parzen_ll.py``): sigma chosen on a validation set from ``logspace(-1, 0, 10)``, then the
  mean log-likelihood of the test set and its standard error.

The classifier that gives features and logits lives in `flax_gan.classifier`; these functions
take any arrays, so research code can score its own features or images.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

PARZEN_SIGMAS = tuple(float(s) for s in np.logspace(-1, 0, 10))  # the paper's cross-validation grid


def gaussian_fit(features: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean (D,) and covariance (D, D) of features (N, D), with the unbiased (N - 1) divisor."""
    features = jnp.asarray(features, jnp.float32)
    mean = features.mean(axis=0)
    centered = features - mean
    cov = centered.T @ centered / (features.shape[0] - 1)
    return mean, cov


@jax.jit
def frechet_distance_from_moments(mu1, cov1, mu2, cov2) -> jax.Array:
    """``|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2))`` for Gaussian fits.

    ``tr((C1 C2)^(1/2))`` is computed as ``tr((S C2 S)^(1/2))`` with ``S = C1^(1/2)``: both square
    roots are of symmetric positive semi-definite matrices, taken by `eigh` with negative round-off
    eigenvalues clipped to 0, so there is no complex part to discard (as scipy's ``sqrtm`` route has).
    """
    s = _psd_sqrt(cov1)
    middle = s @ cov2 @ s
    trace_sqrt = jnp.sum(jnp.sqrt(jnp.clip(jnp.linalg.eigvalsh(0.5 * (middle + middle.T)), 0.0)))
    diff = mu1 - mu2
    return diff @ diff + jnp.trace(cov1) + jnp.trace(cov2) - 2.0 * trace_sqrt


def _psd_sqrt(matrix: jax.Array) -> jax.Array:
    values, vectors = jnp.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vectors * jnp.sqrt(jnp.clip(values, 0.0))) @ vectors.T


def frechet_distance(features1: jax.Array, features2: jax.Array) -> float:
    """FID: the Fréchet distance between Gaussian fits of two feature sets (N1, D) and (N2, D)."""
    return float(frechet_distance_from_moments(*gaussian_fit(features1), *gaussian_fit(features2)))


@jax.jit
def _score(logits: jax.Array) -> jax.Array:
    log_p_yx = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), axis=-1)
    log_p_y = jax.scipy.special.logsumexp(log_p_yx, axis=0) - jnp.log(log_p_yx.shape[0])
    kl = jnp.sum(jnp.exp(log_p_yx) * (log_p_yx - log_p_y), axis=-1)
    return jnp.exp(jnp.mean(kl))


def mnist_score(logits: jax.Array) -> float:
    """``exp(E_x KL(p(y|x) || p(y)))`` from classifier logits (N, C): 1 (one class) to C."""
    return float(_score(logits))


def class_histogram(logits: jax.Array, num_classes: int = 10) -> np.ndarray:
    """Counts (num_classes,) of the classifier's predicted classes."""
    predicted = np.asarray(jnp.argmax(logits, axis=-1))
    return np.bincount(predicted, minlength=num_classes)


def min_class_share(histogram: np.ndarray) -> float:
    """The rarest class's share of the images: 1/C when balanced, 0 when a class is missing."""
    histogram = np.asarray(histogram)
    return float(histogram.min() / histogram.sum())


class ParzenResult(NamedTuple):
    """Mean test log-likelihood (nats per image), its standard error, and the chosen sigma(s)."""

    mean: float
    se: float
    sigma: tuple[float, ...]  # one sigma; with no validation set, the one chosen on each half
    valid_means: tuple[tuple[float, ...], ...]  # mean validation log-likelihood per candidate sigma


def parzen_log_likelihood(
    samples: jax.Array,
    test: jax.Array,
    valid: jax.Array | None = None,
    sigmas: tuple[float, ...] = PARZEN_SIGMAS,
    batch_size: int = 1000,
) -> ParzenResult:
    """The paper's Parzen-window estimate of the test log-likelihood.

    A Gaussian kernel of width sigma sits on each of the `samples` (N, ...); for each test image x,
    ``log p(x) = logmeanexp_i(-|x - s_i|^2 / (2 sigma^2)) - D log(sigma sqrt(2 pi))``. Sigma is the
    candidate with the highest mean log-likelihood on `valid`; the result is the mean over `test`
    and ``std / sqrt(len(test))``, as ``parzen_ll.py`` reports it. Images are flattened; pass
    pixels in [0, 1] to compare with the paper. Squared distances are computed once per batch of
    `batch_size` rows (memory ``batch_size x N`` floats) and reused for every sigma.

    With `valid` None (no held-out set besides the test set), sigma is cross-fitted on the test
    set's two halves (even and odd rows): each half is scored with the sigma that the other half
    chose, so no image is scored with a sigma chosen on itself.
    """
    samples = _flat(samples)
    sigmas_arr = jnp.asarray(sigmas, jnp.float32)
    test_ll = np.asarray(_parzen_rows(samples, _flat(test), sigmas_arr, batch_size), np.float64)
    if valid is not None:
        valid_means = [np.asarray(_parzen_rows(samples, _flat(valid), sigmas_arr, batch_size), np.float64).mean(0)]
        chosen = [int(np.argmax(valid_means[0]))]
        scored = test_ll[:, chosen[0]]
    else:
        if test_ll.shape[0] < 2:
            raise ValueError("Parzen without a validation set needs at least 2 test images")
        halves = (np.arange(test_ll.shape[0]) % 2 == 0, np.arange(test_ll.shape[0]) % 2 == 1)
        valid_means = [test_ll[h].mean(0) for h in halves]
        chosen = [int(np.argmax(m)) for m in valid_means]
        scored = np.empty(test_ll.shape[0])
        scored[halves[1]] = test_ll[halves[1], chosen[0]]  # sigma chosen on the even rows
        scored[halves[0]] = test_ll[halves[0], chosen[1]]  # and on the odd rows
    return ParzenResult(
        mean=float(scored.mean()),
        se=float(scored.std() / np.sqrt(scored.shape[0])),
        sigma=tuple(float(sigmas[i]) for i in chosen),
        valid_means=tuple(tuple(float(v) for v in m) for m in valid_means),
    )


def _flat(images) -> jax.Array:
    images = jnp.asarray(images, jnp.float32)
    return images.reshape(images.shape[0], -1)


def _parzen_rows(samples: jax.Array, x: jax.Array, sigmas: jax.Array, batch_size: int) -> jax.Array:
    """Log-likelihood (M, num_sigmas) of each row of x under the Parzen window on `samples`."""
    if x.shape[1] != samples.shape[1]:
        raise ValueError(f"Parzen: images of {x.shape[1]} values do not match samples of {samples.shape[1]}")
    rows = []
    for start in range(0, x.shape[0], batch_size):
        rows.append(_parzen_batch(samples, x[start : start + batch_size], sigmas))
    return jnp.concatenate(rows)


@jax.jit
def _parzen_batch(samples: jax.Array, x: jax.Array, sigmas: jax.Array) -> jax.Array:
    # |x - s|^2 = |x|^2 + |s|^2 - 2 x.s, clipped at 0 against round-off.
    cross = jnp.dot(x, samples.T, precision=jax.lax.Precision.HIGHEST)
    sq = jnp.clip(jnp.sum(x * x, 1)[:, None] + jnp.sum(samples * samples, 1)[None, :] - 2.0 * cross, 0.0)
    dim, n = samples.shape[1], samples.shape[0]

    def for_sigma(sigma):
        e = jax.scipy.special.logsumexp(-sq / (2.0 * sigma * sigma), axis=1) - jnp.log(n)
        return e - dim * jnp.log(sigma * jnp.sqrt(2.0 * jnp.pi))

    return jax.vmap(for_sigma, out_axes=1)(sigmas)
