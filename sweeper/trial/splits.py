"""Train, validation and test splits of a dataset, as the trial feeds them to Keras.

Arrays datasets (digits, MNIST, CIFAR) are held in memory and given to ``model.fit`` as arrays.
Image folders are lists of files, read through a ``tf.data`` pipeline batch by batch
(:mod:`sweeper.trial.pipeline`), so memory is bounded by the batch and ``dataset.cache``. Both
answer the same two questions: what ``model.fit`` takes (:meth:`fit_data`) and the test split in
batches (:meth:`test_batches`). Splits are seeded by ``dataset.split_seed``, not the trial seed, so
every trial of a sweep is scored on the same validation and test examples.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> list[np.ndarray]:
    """``x_a, x_b, y_a, y_b`` with ``fraction`` of the examples in b: stratified and seeded."""
    from sklearn.model_selection import train_test_split

    # Stratify when every class can appear on both sides; tiny data falls back to a plain split.
    counts = np.bincount(y)
    classes = int((counts > 0).sum())
    n_test = math.ceil(fraction * len(y))
    feasible = counts[counts > 0].min() >= 2 and min(n_test, len(y) - n_test) >= classes
    stratify = y if feasible else None
    return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=stratify)


@dataclass(frozen=True)
class ArraySplits:
    """Train, validation and test arrays of raw pixels (uint8, NHWC)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    scale: float  # largest raw pixel value: models divide by it

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def train_size(self) -> int:
        return len(self.x_train)

    @property
    def val_labels(self) -> np.ndarray:
        return self.y_val

    def fit_data(self, batch_size: int, seed: int, weights: str = "none") -> dict[str, Any]:
        """``model.fit``'s data arguments (Keras shuffles arrays itself, seeded by the trial),
        with the class weights of ``train.class_weight``."""
        from sweeper.trial.metrics import class_weight

        return {"x": self.x_train, "y": self.y_train, "batch_size": batch_size,
                "validation_data": (self.x_val, self.y_val),
                "class_weight": class_weight(weights, self.y_train, self.num_classes)}

    def test_batches(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(0, len(self.x_test), size):
            yield self.x_test[i:i + size], self.y_test[i:i + size]


@dataclass(frozen=True)
class Files:
    """Image files of one split, and their class indices."""

    paths: np.ndarray  # str
    labels: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class Decoding:
    """How files become raw pixels: the dataset settings the pipeline reads."""

    image_size: tuple[int, int]
    channels: int
    resize: str
    cache: str
    skip_corrupt: bool
    bits_stored: int | None


@dataclass(frozen=True)
class FolderSplits:
    """Train, validation and test image files, streamed through ``tf.data``."""

    train: Files
    val: Files
    test: Files
    class_names: tuple[str, ...]
    decoding: Decoding
    scale: float = 255.0
    # decoded (and, per dataset.cache, cached) datasets, kept across the trials of a worker
    _decoded: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (*self.decoding.image_size, self.decoding.channels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def train_size(self) -> int:
        return len(self.train)

    @property
    def val_labels(self) -> np.ndarray:
        return self.val.labels

    def decoded(self, name: str) -> Any:
        """The split ``name`` (train, val, test) as decoded images in file order."""
        from sweeper.trial import pipeline

        if name not in self._decoded:
            self._decoded[name] = pipeline.decoded(getattr(self, name), self.decoding, name)
        return self._decoded[name]

    def fit_data(self, batch_size: int, seed: int, weights: str = "none") -> dict[str, Any]:
        """``model.fit``'s data arguments: shuffled training batches, validation batches, the
        class weights of ``train.class_weight``."""
        from sweeper.trial import pipeline
        from sweeper.trial.metrics import class_weight

        return {"x": pipeline.batches(self.decoded("train"), batch_size, self.decoding, seed),
                "validation_data": pipeline.batches(self.decoded("val"), batch_size,
                                                    self.decoding),
                "shuffle": False,  # the pipeline shuffles, seeded by the trial
                "class_weight": class_weight(weights, self.train.labels, self.num_classes)}

    def test_batches(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        from sweeper.trial import pipeline

        batches = pipeline.batches(self.decoded("test"), pipeline.fitting(size, self.decoding),
                                   self.decoding)
        yield from batches.as_numpy_iterator()


Splits = ArraySplits | FolderSplits
