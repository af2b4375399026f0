"""The evaluation's MNIST CNN: its conv-as-matmul layers, its training and its cache."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flax_gan import classifier
from flax_gan.data import load_mnist

TINY = classifier.ClassifierConfig(conv_features=(8,), dense_features=16, steps=60, batch_size=64)


def test_patches_conv_equals_a_3x3_same_convolution():
    x = jax.random.normal(jax.random.key(0), (2, 14, 14, 3))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 3, 5))
    conv = nn.Conv(5, (3, 3), use_bias=False)
    expected = conv.apply({"params": {"kernel": kernel}}, x)
    ours = classifier.patches3x3(x) @ kernel.reshape(27, 5)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_shift_moves_whole_images_within_the_limit():
    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, 10:14, 12:15] = 1.0
    images = jnp.asarray(np.repeat(image, 50, 0))
    shifted = np.asarray(classifier._shift(jax.random.key(0), images, 2))
    assert np.all(shifted.sum((1, 2, 3)) == image.sum())  # nothing lost: the content is inside the border
    rows = np.argmax(shifted.any(2)[..., 0], 1)
    cols = np.argmax(shifted.any(1)[..., 0], 1)
    assert set(rows - 10) <= set(range(-2, 3)) and set(cols - 12) <= set(range(-2, 3))
    assert len(set(zip(rows, cols))) > 5  # different images get different shifts
    assert np.array_equal(np.asarray(classifier._shift(jax.random.key(0), images, 0)), np.asarray(images))


def test_cnn_outputs_features_and_logits():
    model = classifier.CNN((8, 16), 32)
    params = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    features, logits = model.apply(params, jnp.zeros((5, 28, 28, 1)))
    assert features.shape == (5, 32) and logits.shape == (5, 10)


@pytest.fixture(scope="module")
def bundled():
    return load_mnist("bundled")


def test_training_learns_and_the_cache_is_reused(bundled, tmp_path, monkeypatch):
    images, labels = bundled.images[0::2], bundled.labels[0::2]  # bundled is sorted by class
    first = classifier.load_or_train(images, labels, "bundled", TINY, cache_dir=str(tmp_path))
    assert first.info["train_accuracy"] > 0.5  # chance is 0.1
    assert first.accuracy(bundled.images[1::2], bundled.labels[1::2]) > 0.5  # images it never saw
    entries = [p for p in tmp_path.iterdir()]
    assert [p.name.startswith("bundled-") for p in entries] == [True]  # one complete entry, no temporaries

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(classifier, "train_classifier", no_training)
    second = classifier.load_or_train(images, labels, "bundled", TINY, cache_dir=str(tmp_path))
    x = classifier.to_unit(bundled.images[:100])
    np.testing.assert_array_equal(np.asarray(first.apply(x)[1]), np.asarray(second.apply(x)[1]))
    with pytest.raises(AssertionError, match="cached"):  # other data: another entry, trained anew
        classifier.load_or_train(images[:-1], labels[:-1], "bundled", TINY, cache_dir=str(tmp_path))


def test_fingerprint_depends_on_data_labels_and_config(bundled):
    images, labels = bundled.images[::50], bundled.labels[::50]
    base = classifier.fingerprint(images, labels, TINY)
    assert base == classifier.fingerprint(images.copy(), labels.copy(), TINY)
    assert base != classifier.fingerprint(images[::-1], labels, TINY)
    assert base != classifier.fingerprint(images, labels[::-1], TINY)
    assert base != classifier.fingerprint(images, labels, classifier.ClassifierConfig(steps=61))
