"""The image-folder loaders the data benchmark compares, each giving what a trial trains on.

- ``old``: the in-memory loader sweeper had before image folders streamed (every image read
  with PIL into one array per worker), kept here as it was, for comparison;
- ``new``: sweeper's own ``tf.data`` pipeline (:mod:`sweeper.trial.pipeline`);
- ``keras``: ``keras.utils.image_dataset_from_directory`` + ``prefetch``, the reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from sweeper.config.schema import IMAGE_SUFFIXES
from sweeper.trial.splits import ArraySplits, split


def old(d: DictConfig, validation_split: float) -> ArraySplits:
    """The old loader: PIL reads every image into one uint8 array, then a seeded split."""
    from PIL import Image

    root = Path(d.path).expanduser()
    names = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    height, width = d.image_size
    mode = "L" if d.color_mode == "grayscale" else "RGB"
    images, labels = [], []
    for label, name in enumerate(names):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with Image.open(path) as img:
                pixels = np.asarray(img.convert(mode).resize((width, height)), np.uint8)
            images.append(pixels.reshape(height, width, -1))
            labels.append(label)
    x, y = np.stack(images), np.asarray(labels, np.int64)
    x_trainval, x_test, y_trainval, y_test = split(x, y, d.test_split, d.split_seed)
    x_train, x_val, y_train, y_val = split(x_trainval, y_trainval, validation_split, d.split_seed)
    return OldSplits(x_train, y_train, x_val, y_val, x_test, y_test, names, 255.0)


def _evaluation_batch(size: int, shape: tuple[int, ...]) -> int:
    """The evaluation batch the streamed pipeline uses for images of ``shape``: the same for every
    loader, so that peak memory compares the loaders, not the evaluation."""
    return max(1, min(size, EVALUATION_BYTES // (4 * int(np.prod(shape)))))


EVALUATION_BYTES = 8 << 20  # sweeper.trial.pipeline.BATCH_BYTES


class OldSplits(ArraySplits):
    def test_batches(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield from super().test_batches(_evaluation_batch(size, self.input_shape))


@dataclass
class KerasSplits:
    """``image_dataset_from_directory``'s training and validation subsets (+ prefetch); the
    validation subset is split in two for validation and test."""

    d: DictConfig
    validation_split: float
    class_names: tuple[str, ...] = ()
    scale: float = 255.0

    def __post_init__(self) -> None:
        root = Path(self.d.path).expanduser()
        self.class_names = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
        total = sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        held = self.d.test_split + (1 - self.d.test_split) * self.validation_split
        self.counts = {"test": math.ceil(self.d.test_split * total)}
        self.counts["val"] = math.ceil(held * total) - self.counts["test"]
        self.counts["train"] = total - self.counts["val"] - self.counts["test"]
        self.held = held

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (*self.d.image_size, 1 if self.d.color_mode == "grayscale" else 3)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def train_size(self) -> int:
        return self.counts["train"]

    def _subsets(self, batch_size: int, seed: int) -> tuple[Any, Any]:
        import keras

        return keras.utils.image_dataset_from_directory(
            self.d.path, labels="inferred", label_mode="int", color_mode=self.d.color_mode,
            batch_size=batch_size, image_size=tuple(self.d.image_size), shuffle=True, seed=seed,
            validation_split=self.held, subset="both")

    def fit_data(self, batch_size: int, seed: int) -> dict[str, Any]:
        import tensorflow as tf

        train, held = self._subsets(batch_size, self.d.split_seed)
        val_batches = math.ceil(self.counts["val"] / batch_size)
        return {"x": train.prefetch(tf.data.AUTOTUNE),
                "validation_data": held.take(val_batches).prefetch(tf.data.AUTOTUNE),
                "shuffle": False}

    def test_batches(self, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import tensorflow as tf

        size = _evaluation_batch(size, self.input_shape)
        _, held = self._subsets(size, self.d.split_seed)
        held = held.unbatch().skip(self.counts["val"]).batch(size)
        yield from held.prefetch(tf.data.AUTOTUNE).as_numpy_iterator()


def keras(d: DictConfig, validation_split: float) -> KerasSplits:
    return KerasSplits(d, validation_split)


def counts(splits: Any) -> dict[str, int]:
    """Training, validation and test images of a loader's splits."""
    if isinstance(splits, ArraySplits):
        return {"train": len(splits.y_train), "val": len(splits.y_val),
                "test": len(splits.y_test)}
    if isinstance(splits, KerasSplits):
        return dict(splits.counts)
    return {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}
