import os
import time

import numpy as np
import pytest

from flax_gan import data
from flax_gan.data import DataError, choose_source, load_mnist


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and no prepared TFDS data, whatever this machine has."""
    monkeypatch.setattr(data, "host_reachable", lambda *a, **k: False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "empty_tfds"))


def test_bundled_is_real_mnist():
    ds = load_mnist("bundled")
    assert ds.images.shape == (5000, 28, 28, 1) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int32 and np.bincount(ds.labels).tolist() == [500] * 10
    # Real digits: mostly black background, some full-white strokes.
    assert ds.images.max() == 255 and (ds.images == 0).mean() > 0.7
    with pytest.raises(DataError, match="only a train split"):
        load_mnist("bundled", split="test")


def test_synthetic():
    ds = load_mnist("synthetic", num_synthetic=64, seed=1)
    assert ds.images.shape == (64, 28, 28, 1) and ds.images.dtype == np.uint8
    assert np.array_equal(ds.images, load_mnist("synthetic", num_synthetic=64, seed=1).images)


def test_auto_offline_falls_back_to_bundled_fast(offline):
    start = time.perf_counter()
    ds = load_mnist("auto")
    assert time.perf_counter() - start < 10
    assert ds.source == "bundled" and "cannot be reached" in ds.reason


def test_auto_offline_without_stubs_decides_in_seconds(monkeypatch, tmp_path):
    """The real network probe, not a stub: it must answer well inside 10 s either way."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    start = time.perf_counter()
    source, reason = choose_source(None)
    assert time.perf_counter() - start < 10
    assert source in ("tfds", "bundled") and reason


def test_auto_prefers_prepared_tfds(offline, tmp_path):
    prepared = tmp_path / "tfds" / "mnist" / "3.0.1"
    prepared.mkdir(parents=True)
    (prepared / "dataset_info.json").write_text("{}")
    assert choose_source(str(tmp_path / "tfds"))[0] == "tfds"


def test_tfds_offline_unprepared_fails_fast_with_advice(offline):
    start = time.perf_counter()
    with pytest.raises(DataError, match="cannot be reached.*four MNIST .gz files"):
        load_mnist("tfds")
    assert time.perf_counter() - start < 10


def test_bad_data_dir_and_partial_gz_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist("tfds", data_dir=str(tmp_path / "missing"))
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_mnist("tfds", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="must be one of"):
        load_mnist("imagenet")


def test_tfds_path_under_mock_data(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(data, "host_reachable", lambda *a, **k: True)  # mock_data never downloads
    with tfds.testing.mock_data(num_examples=40):
        train = load_mnist("tfds")
        test = load_mnist("tfds", split="test")
    assert train.source == "tfds"
    assert train.images.shape == (40, 28, 28, 1) and train.images.dtype == np.uint8
    assert train.labels.shape == (40,) and train.labels.dtype == np.int32
    assert test.images.shape == (40, 28, 28, 1)


def test_tfds_manual_dir_checks_checksums(tmp_path):
    """Four .gz files in the data dir go through TFDS's manual dir, which verifies their sha256."""
    pytest.importorskip("tensorflow_datasets")
    import gzip

    for name in data.MNIST_FILES:
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(b"not mnist")
    with pytest.raises(DataError, match="checksum"):
        load_mnist("tfds", data_dir=str(tmp_path))
    assert os.path.isfile(tmp_path / data.MNIST_FILES[0])  # the user's files are left alone
