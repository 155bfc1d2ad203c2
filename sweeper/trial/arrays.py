"""Datasets small enough to hold in memory: the embedded digits and the Keras datasets (MNIST,
Fashion-MNIST, CIFAR-10, CIFAR-100), read from the Keras cache in the layout
``keras.datasets.*.load_data()`` leaves there. No TensorFlow import here.

Each reader returns raw pixels (uint8, NHWC) with labels for the source's own train and test
splits, the class names and the largest pixel value.
"""

from __future__ import annotations

import functools
import gzip
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from sweeper.downloads import Download, keras_home
from sweeper.errors import DatasetError
from sweeper.trial.splits import split

Loaded = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[str, ...], float]

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
DIGITS_TOTAL = 1797


def cache_dir(d: Any) -> Path:
    """The Keras cache folder of dataset ``d`` (``dataset.cache_dir``, $KERAS_HOME, ~/.keras)."""
    return keras_home(d.cache_dir)


def downloads(d: Any) -> list[Download]:
    """The files dataset ``d`` needs from its origin, or from ``dataset.origin``."""
    return [Download(f.origin, f.fname, f.file_hash, f.cache_subdir, f.extract).mirrored(d.origin)
            for f in d.files]


def _files(d: Any) -> list[Path]:
    """The cache files ``d`` reads, or one clear error naming the first one missing."""
    root = cache_dir(d)
    got = downloads(d)
    if d.name in ("cifar10", "cifar100"):
        inner = "cifar-10-batches-py" if d.name == "cifar10" else "cifar-100-python"
        folder = got[0].extracted(root) if got else None
        if (root / "datasets" / inner).is_dir():  # older Keras extracted it here
            folder = root / "datasets"
        names = CIFAR10_BATCHES if d.name == "cifar10" else ("train", "test", "meta")
        paths = [(folder or root) / inner / n for n in names]
    else:
        paths = [g.target(root) for g in got]
    for p in paths:
        if not p.exists():
            raise DatasetError(f"dataset={d.name}: {p} not found; run the sweep command on this "
                               "machine to download it, or place the Keras dataset file there")
    return paths


def load(d: Any) -> Loaded:
    """The arrays of dataset ``d``: (train), (test), class names, largest pixel value."""
    if d.name == "digits":
        return _digits(d)
    paths = _files(d)
    if d.name == "mnist":
        return _mnist(paths)
    if d.name == "fashion_mnist":
        return _fashion_mnist(paths)
    if d.name == "cifar10":
        return _cifar10(paths)
    return _cifar100(paths)


def train_total(d: Any) -> int:
    """How many examples the source's own training split holds."""
    if d.name == "digits":
        return DIGITS_TOTAL - int(np.ceil(d.test_split * DIGITS_TOTAL))
    paths = _files(d)
    if d.name == "mnist":
        with np.load(paths[0]) as f:
            return len(f["y_train"])
    if d.name == "fashion_mnist":
        with gzip.open(paths[0], "rb") as f:
            return len(f.read()) - 8
    return _cifar_labels(tuple(paths[:5] if d.name == "cifar10" else paths[:1]),
                         b"labels" if d.name == "cifar10" else b"fine_labels")


@functools.lru_cache(maxsize=8)
def _cifar_labels(paths: tuple[Path, ...], key: bytes) -> int:
    """Labels in CIFAR batch files (remembered: every trial of a sweep asks)."""
    return sum(len(_pickled(p)[key]) for p in paths)


def _digits(d: Any) -> Loaded:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[..., None]  # 0..16
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = split(x, y, d.test_split, d.split_seed)
    return (x_train, y_train), (x_test, y_test), tuple(str(c) for c in range(10)), 16.0


def _mnist(paths: list[Path]) -> Loaded:
    with np.load(paths[0], allow_pickle=False) as f:
        train = (f["x_train"][..., None], f["y_train"].astype(np.int64))
        test = (f["x_test"][..., None], f["y_test"].astype(np.int64))
    return train, test, tuple(str(c) for c in range(10)), 255.0


def _fashion_mnist(paths: list[Path]) -> Loaded:
    def idx(path: Path, offset: int) -> np.ndarray:
        with gzip.open(path, "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    y_train, y_test = idx(paths[0], 8), idx(paths[2], 8)
    x_train = idx(paths[1], 16).reshape(len(y_train), 28, 28, 1)
    x_test = idx(paths[3], 16).reshape(len(y_test), 28, 28, 1)
    return ((x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64)),
            FASHION_CLASSES, 255.0)


def _pickled(path: Path) -> dict:
    with open(path, "rb") as f:
        return dict(pickle.load(f, encoding="bytes"))


def _cifar_batch(path: Path, labels: bytes) -> tuple[np.ndarray, np.ndarray]:
    raw = _pickled(path)
    x = np.asarray(raw[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, np.asarray(raw[labels], np.int64)


def _cifar10(paths: list[Path]) -> Loaded:
    parts = [_cifar_batch(p, b"labels") for p in paths[:5]]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    return (x_train, y_train), _cifar_batch(paths[5], b"labels"), CIFAR10_CLASSES, 255.0


def _cifar100(paths: list[Path]) -> Loaded:
    names = tuple(n.decode() for n in _pickled(paths[2])[b"fine_label_names"])
    return (_cifar_batch(paths[0], b"fine_labels"), _cifar_batch(paths[1], b"fine_labels"),
            names, 255.0)
