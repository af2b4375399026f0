"""Scoring generated images against real MNIST: the reference sets, the `Evaluator`, collapse signs.

`reference_sets` picks the real images every score is measured against:

* test: the original MNIST test files in `test_data` if given, else the data source's test split;
  the bundled (and synthetic) source has none, so there the training images stand in, and
  `Reference.note` says so;
* valid: the held-out set on which the Parzen window's sigma is chosen. With MNIST's 60,000
  training images (TFDS), the last 10,000, as the paper's ``parzen_ll.py`` used
  ``train[50000:60000]`` (the paper's G never saw them; ours trains on the whole split). With
  fewer (bundled: 5000, also the "real" row's images), none: sigma is then cross-fitted on the
  test set's two halves (`metrics.parzen_log_likelihood`), so no image is scored with a sigma
  chosen on itself and a G that copies its training images gains nothing from the choice.
* train: the training images, for the classifier and the "real" reference row.

`Evaluator.scores(images)` gives FID, MNIST score, the class histogram with its rarest share and
the Parzen log-likelihood for any images in [0, 1]; `Evaluator.reference_rows` gives the same for
real images (the ceiling) and uniform noise (the floor).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flax_gan import metrics
from flax_gan.classifier import Classifier, ClassifierConfig, load_or_train, logits_accuracy, to_unit
from flax_gan.data import Dataset, load_mnist, load_test_files
from flax_gan.sampling import sample
from flax_gan.state import GANState

log = logging.getLogger(__name__)

PARZEN_VALID = 10_000  # the paper's validation set: MNIST train[50000:60000]
# Collapse signs: the rarest class below this share of the samples (balanced: 0.1) ...
COLLAPSE_MIN_SHARE = 0.01
# ... or D's loss below this while G's loss climbs.
COLLAPSE_D_LOSS = 0.05


@dataclasses.dataclass(frozen=True)
class Reference:
    """Real images (uint8, (N, 28, 28, 1)) that scores are measured against, and what they are."""

    test: np.ndarray
    test_labels: np.ndarray
    valid: np.ndarray | None
    train: np.ndarray
    train_labels: np.ndarray
    source: str
    test_name: str  # e.g. "MNIST test split (10000 images from ../shared/mnist)"
    test_is_train: bool  # no test split: the training images stand in

    @property
    def note(self) -> str:
        if self.test_is_train:
            return (f"the {self.source} source has no test split, so the {len(self.test)} training images are the "
                    "reference (pass --test-data DIR with the MNIST t10k files for the real test split)")
        return f"reference: {self.test_name}"


def reference_sets(train: Dataset, test_data: str | None = None, data_dir: str | None = None) -> Reference:
    """The test / validation / training images for scoring a model trained on `train`."""
    if test_data is not None:
        test = load_test_files(test_data)
        name, is_train = f"MNIST test split ({len(test.images)} images from {test_data})", False
    elif train.source == "tfds":
        test = load_mnist("tfds", data_dir, split="test")
        name, is_train = f"MNIST test split ({len(test.images)} images from TFDS)", False
    else:
        test, name, is_train = train, f"the {len(train.images)} {train.source} training images", True
    return Reference(
        test=test.images,
        test_labels=test.labels,
        valid=train.images[-PARZEN_VALID:] if len(train.images) >= 6 * PARZEN_VALID else None,
        train=train.images,
        train_labels=train.labels,
        source=train.source,
        test_name=name,
        test_is_train=is_train,
    )


class Evaluator:
    """Scores images in [0, 1] against a `Reference` with a classifier trained on its training images.

    Building it trains (once; then cached) or loads the classifier and fits the test set's
    features, so each `scores` call costs one classifier pass over the images and one Parzen pass.
    """

    def __init__(self, reference: Reference, classifier: Classifier | None = None,
                 classifier_config: ClassifierConfig = ClassifierConfig(), cache_dir: str | None = None):
        self.reference = reference
        if classifier is None:
            classifier = load_or_train(reference.train, reference.train_labels, reference.source,
                                       classifier_config, cache_dir)
        self.classifier = classifier
        # Converted once: every evaluation's Parzen pass reads them.
        self._test = to_unit(reference.test)
        self._valid = None if reference.valid is None else to_unit(reference.valid)
        features, logits = classifier.apply(self._test)  # one pass for the FID fit and the accuracy
        self._test_moments = metrics.gaussian_fit(features)
        self.classifier_accuracy = logits_accuracy(logits, reference.test_labels)
        self.classifier_accuracy_on = "train" if reference.test_is_train else "test"

    def scores(self, images: jax.Array, parzen: bool = True) -> dict[str, Any]:
        """FID, MNIST score, class histogram, rarest class share and (optionally) Parzen LL of `images`.

        `images`: (N, 28, 28, 1) (or (N, 784)) floats in [0, 1], N >= 2.
        """
        images = jnp.asarray(images, jnp.float32).reshape(-1, 28, 28, 1)
        if images.shape[0] < 2:
            raise ValueError(f"scoring needs at least 2 images, got {images.shape[0]}")
        features, logits = self.classifier.apply(images)
        histogram = metrics.class_histogram(logits)
        out: dict[str, Any] = {
            "num": int(images.shape[0]),
            "fid": float(metrics.frechet_distance_from_moments(*metrics.gaussian_fit(features), *self._test_moments)),
            "score": metrics.mnist_score(logits),
            "min_class_share": metrics.min_class_share(histogram),
            "class_histogram": [int(c) for c in histogram],
        }
        if parzen:
            result = metrics.parzen_log_likelihood(images, self._test, self._valid)
            out.update(parzen=result.mean, parzen_se=result.se, parzen_sigma=list(result.sigma))
        out["classifier_accuracy"] = self.classifier_accuracy
        return out

    def score_state(self, state: GANState, key: jax.Array, num: int, parzen: bool = True,
                    ema: bool = True) -> dict[str, Any]:
        """Scores `num` images that `state`'s G draws from `key` (with its moving-average
        weights, if it keeps them and `ema`; else its trained weights: see `sampling.sample`)."""
        return self.scores(sample(state, key, num, ema=ema), parzen=parzen)

    def reference_rows(self, num: int, key: jax.Array, parzen: bool = True) -> dict[str, dict[str, Any]]:
        """Scores of real images (the training images, up to `num`: the ceiling) and uniform noise (the floor)."""
        real = to_unit(self.reference.train[:num])
        noise = jax.random.uniform(key, (num, 28, 28, 1))
        return {"real": self.scores(real, parzen), "noise": self.scores(noise, parzen)}


def collapse_signs(scores: dict[str, Any], d_loss: float | None, g_loss: float | None,
                   previous_g_loss: float | None) -> list[str]:
    """Why training looks collapsed, as short phrases (empty when it does not).

    Two signs: the rarest class nearly absent from the samples (mode dropping), or D's loss near
    0 while G's loss climbs (D wins outright and G gets no useful gradient).
    """
    signs = []
    share = scores.get("min_class_share")
    if share is not None and share < COLLAPSE_MIN_SHARE:
        signs.append(f"the rarest class has {share:.1%} of the samples (balanced: 10%)")
    if (d_loss is not None and g_loss is not None and previous_g_loss is not None
            and d_loss < COLLAPSE_D_LOSS and g_loss > previous_g_loss):
        signs.append(f"D's loss is {d_loss:.2g} while G's loss climbs ({previous_g_loss:.3g} -> {g_loss:.3g})")
    return signs


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    """A plain-text table of score rows (name -> scores)."""
    header = f"{'':<12}{'FID':>10}{'score':>8}{'min class':>11}{'Parzen LL':>18}"
    lines = [header]
    for name, s in rows.items():
        parzen = f"{s['parzen']:.1f} ± {s['parzen_se']:.1f}" if "parzen" in s else "-"
        lines.append(f"{name:<12}{s['fid']:>10.3f}{s['score']:>8.3f}{s['min_class_share']:>11.3f}{parzen:>18}")
    return "\n".join(lines)
