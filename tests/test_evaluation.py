"""Reference sets, the Evaluator on real / shifted / noise images, collapse signs, IDX test files."""

import gzip

import jax
import numpy as np
import pytest

from flax_gan import classifier, evaluation
from flax_gan.data import DataError, Dataset, load_mnist, load_test_files

TINY = classifier.ClassifierConfig(conv_features=(8,), dense_features=16, steps=60, batch_size=64)


def write_idx(path, array):
    header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


@pytest.fixture(scope="module")
def bundled():
    return load_mnist("bundled")


@pytest.fixture(scope="module")
def test_dir(bundled, tmp_path_factory):
    """MNIST-format test files holding every 5th bundled image."""
    directory = tmp_path_factory.mktemp("t10k")
    write_idx(directory / "t10k-images-idx3-ubyte.gz", bundled.images[::5, :, :, 0])
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", bundled.labels[::5])
    return directory


def test_load_test_files_reads_idx(bundled, test_dir):
    test = load_test_files(str(test_dir))
    assert np.array_equal(test.images, bundled.images[::5]) and np.array_equal(test.labels, bundled.labels[::5])
    assert test.images.dtype == np.uint8 and test.labels.dtype == np.int32


def test_load_test_files_errors(tmp_path, bundled):
    with pytest.raises(DataError, match="lacks t10k-images"):
        load_test_files(str(tmp_path))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", bundled.labels[:10])  # 1-D: wrong magic
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", bundled.labels[:10])
    with pytest.raises(DataError, match="not an MNIST IDX file of 3"):
        load_test_files(str(tmp_path))
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write((0x0803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (10, 28, 28)) + b"\0" * 100)
    with pytest.raises(DataError, match="truncated"):
        load_test_files(str(tmp_path))
    with pytest.raises(DataError, match="does not exist"):
        load_test_files(str(tmp_path / "nope"))


def test_reference_sets(bundled, test_dir):
    ref = evaluation.reference_sets(bundled)
    assert ref.test_is_train and "no test split" in ref.note
    assert np.array_equal(ref.test, bundled.images) and ref.valid is None  # sigma cross-fitted on the test set
    ref = evaluation.reference_sets(bundled, str(test_dir))
    assert not ref.test_is_train and len(ref.test) == 1000 and "MNIST test split" in ref.note
    big = Dataset(np.zeros((60000, 28, 28, 1), np.uint8), np.zeros(60000, np.int32), "synthetic", "")
    assert np.array_equal(evaluation.reference_sets(big).valid, big.images[50000:])  # the paper's valid set


@pytest.fixture(scope="module")
def evaluator(bundled, test_dir, tmp_path_factory):
    ref = evaluation.reference_sets(bundled, str(test_dir))
    return evaluation.Evaluator(ref, classifier_config=TINY, cache_dir=str(tmp_path_factory.mktemp("cache")))


def test_evaluator_orders_real_shifted_and_noise(evaluator, bundled):
    real = classifier.to_unit(bundled.images[1::5])  # real images not in the reference
    noise = jax.random.uniform(jax.random.key(0), (1000, 28, 28, 1))
    shifted = np.roll(np.asarray(real), 4, axis=2)
    s_real, s_shift, s_noise = (evaluator.scores(x) for x in (real, shifted, noise))
    assert s_real["fid"] < s_shift["fid"] < s_noise["fid"]
    assert s_real["parzen"] > s_noise["parzen"]
    assert s_real["min_class_share"] > 0.03 and s_real["score"] > s_noise["score"]
    assert sum(s_real["class_histogram"]) == 1000
    assert evaluator.classifier_accuracy_on == "test" and 0.5 < evaluator.classifier_accuracy <= 1.0
    for key in ("fid", "score", "parzen", "parzen_se", "min_class_share", "classifier_accuracy"):
        assert np.isfinite(s_real[key])
    assert "parzen" not in evaluator.scores(real, parzen=False)
    with pytest.raises(ValueError, match="at least 2"):
        evaluator.scores(real[:1])


def test_evaluator_scores_the_reference_itself_as_fid_zero(evaluator):
    scores = evaluator.scores(classifier.to_unit(evaluator.reference.test), parzen=False)
    assert abs(scores["fid"]) < 1e-2


def test_collapse_signs():
    fine = {"min_class_share": 0.08}
    assert evaluation.collapse_signs(fine, 0.6, 1.0, 0.9) == []
    assert "rarest class" in evaluation.collapse_signs({"min_class_share": 0.001}, 0.6, 1.0, 0.9)[0]
    signs = evaluation.collapse_signs(fine, 1e-4, 12.0, 9.0)
    assert len(signs) == 1 and "climbs" in signs[0]
    assert evaluation.collapse_signs(fine, 1e-4, 8.0, 9.0) == []  # G's loss falling: not collapse
    assert evaluation.collapse_signs(fine, 1e-4, 12.0, None) == []  # no earlier evaluation to compare
