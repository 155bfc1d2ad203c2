"""Datasets: the embedded digits, the Keras datasets from the local cache, folders of images.

Every loader returns raw pixels (uint8, NHWC) and the pixel scale; models rescale inside
themselves, so a checkpoint or an export takes the same raw pixels a client has. Splits are
seeded by ``dataset.split_seed``, not the trial seed, so every trial of a sweep is scored on the
same validation and test examples. No TensorFlow import here.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from sweeper.config.schema import IMAGE_SUFFIXES
from sweeper.errors import DatasetError


@dataclass(frozen=True)
class Splits:
    """Train, validation and test arrays of one dataset, with what a model needs to know of them."""

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


def load(dataset: DictConfig, validation_split: float) -> Splits:
    """Load ``dataset`` once per process; later calls with the same settings reuse the arrays."""
    key = OmegaConf.to_yaml(dataset)
    return _load_cached(key, validation_split)


@functools.lru_cache(maxsize=4)
def _load_cached(dataset_yaml: str, validation_split: float) -> Splits:
    d = OmegaConf.create(dataset_yaml)
    loader = _LOADERS[d.name]
    (x_trainval, y_trainval), (x_test, y_test), names, scale = loader(d)
    if d.limit is not None and len(x_trainval) > d.limit:
        x_trainval, _, y_trainval, _ = _split(x_trainval, y_trainval, 1 - d.limit / len(x_trainval),
                                              d.split_seed)
    x_train, x_val, y_train, y_val = _split(x_trainval, y_trainval, validation_split, d.split_seed)
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, names, scale)


def _split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> list[np.ndarray]:
    from sklearn.model_selection import train_test_split

    # Stratify when every class can appear on both sides; tiny data falls back to a plain split.
    counts = np.bincount(y)
    classes = int((counts > 0).sum())
    n_test = math.ceil(fraction * len(y))
    feasible = counts[counts > 0].min() >= 2 and min(n_test, len(y) - n_test) >= classes
    stratify = y if feasible else None
    return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=stratify)


Loaded = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[str, ...], float]


def _digits(d: Any) -> Loaded:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[..., None]  # 0..16
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = _split(x, y, d.test_split, d.split_seed)
    return (x_train, y_train), (x_test, y_test), tuple(str(c) for c in range(10)), 16.0


def keras_cache_dir(cfg: Any) -> Path:
    """Folder Keras caches datasets in (``$KERAS_HOME/datasets``, default ``~/.keras/datasets``)."""
    base = cfg.cache_dir or os.environ.get("KERAS_HOME") or "~/.keras"
    return Path(base).expanduser() / "datasets"


def _cached(d: Any, *relative: str) -> list[Path]:
    """Paths of cache files, or one clear error naming the first one missing."""
    root = keras_cache_dir(d)
    paths = [root / r for r in relative]
    for p in paths:
        if not p.exists():
            raise DatasetError(
                f"dataset={d.name}: {p} not found; this machine cannot download it, so place the "
                f"Keras dataset file there (or set dataset.cache_dir / $KERAS_HOME)"
            )
    return paths


FASHION_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def cache_files(d: Any) -> list[Path]:
    """The Keras cache files dataset ``d`` reads (none for digits and folders); raises
    :class:`DatasetError` naming the first one missing."""
    if d.name == "mnist":
        return _cached(d, "mnist.npz")
    if d.name == "fashion_mnist":
        return _cached(d, *(f"fashion-mnist/{f}" for f in FASHION_FILES))
    if d.name == "cifar10":
        # Keras 3 extracts to cifar-10-batches-py-target/; older Keras to cifar-10-batches-py/.
        folder = "cifar-10-batches-py-target/cifar-10-batches-py"
        if (keras_cache_dir(d) / "cifar-10-batches-py").is_dir():
            folder = "cifar-10-batches-py"
        return _cached(d, *(f"{folder}/{n}" for n in CIFAR10_BATCHES))
    return []


def check(d: Any, train: Any) -> None:
    """Fail before any work on data a trial could not use: missing cache files, corrupt images
    (unless ``dataset.skip_corrupt``), a batch larger than the training split."""
    cache_files(d)
    if d.name == "directory" and not d.skip_corrupt:
        _verify_images(Path(d.path).expanduser())
    examples = _train_examples(d, train.validation_split)
    if examples is not None and train.batch_size > examples:
        raise DatasetError(f"train.batch_size={train.batch_size}: larger than the {examples} "
                           f"training examples of dataset={d.name}")


def _verify_images(root: Path) -> None:
    from PIL import Image

    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            try:
                with Image.open(path) as img:
                    img.verify()
            except Exception as e:
                raise DatasetError(f"dataset.path: corrupt image {path} ({type(e).__name__}); "
                                   "set dataset.skip_corrupt=true to leave such files out") from e


def _train_examples(d: Any, validation_split: float) -> int | None:
    """How many examples train a model (what remains after the test and validation splits)."""
    if d.name == "digits":
        total = 1797
        total -= math.ceil(d.test_split * total)
    elif d.name == "mnist":
        with np.load(cache_files(d)[0]) as f:
            total = len(f["y_train"])
    elif d.name == "fashion_mnist":
        with gzip.open(cache_files(d)[0], "rb") as f:
            total = len(f.read()) - 8
    elif d.name == "cifar10":
        total = 50_000
    else:
        root = Path(d.path).expanduser()
        folder = root / "train" if (root / "train").is_dir() else root
        total = sum(1 for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not (root / "test").is_dir():
            total -= math.ceil(d.test_split * total)
    if d.limit is not None:
        total = min(total, d.limit)
    return total - math.ceil(validation_split * total)


def _mnist(d: Any) -> Loaded:
    (path,) = cache_files(d)
    with np.load(path, allow_pickle=False) as f:
        train = (f["x_train"][..., None], f["y_train"].astype(np.int64))
        test = (f["x_test"][..., None], f["y_test"].astype(np.int64))
    return train, test, tuple(str(c) for c in range(10)), 255.0


FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


def _fashion_mnist(d: Any) -> Loaded:
    paths = cache_files(d)

    def idx(path: Path, offset: int) -> np.ndarray:
        with gzip.open(path, "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    y_train, y_test = idx(paths[0], 8), idx(paths[2], 8)
    x_train = idx(paths[1], 16).reshape(len(y_train), 28, 28, 1)
    x_test = idx(paths[3], 16).reshape(len(y_test), 28, 28, 1)
    return ((x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64)),
            FASHION_CLASSES, 255.0)


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


def _cifar10(d: Any) -> Loaded:
    paths = cache_files(d)

    def batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
        with open(path, "rb") as f:
            raw = pickle.load(f, encoding="bytes")
        x = np.asarray(raw[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(raw[b"labels"], np.int64)

    parts = [batch(p) for p in paths[:5]]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    return (x_train, y_train), batch(paths[5]), CIFAR10_CLASSES, 255.0


def _directory(d: Any) -> Loaded:
    root = Path(d.path).expanduser()
    has = {s: (root / s).is_dir() for s in ("train", "val", "test")}
    if has["train"]:
        names = _class_names(root / "train")
        x_train, y_train = _read_folder(root / "train", names, d)
        if has["val"]:  # a shipped validation split joins training; ours is re-drawn, seeded
            x_val, y_val = _read_folder(root / "val", names, d)
            x_train, y_train = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])
        if has["test"]:
            x_test, y_test = _read_folder(root / "test", names, d)
            return (x_train, y_train), (x_test, y_test), names, 255.0
        x, y = x_train, y_train
    else:
        names = _class_names(root)
        x, y = _read_folder(root, names, d)
    x_train, x_test, y_train, y_test = _split(x, y, d.test_split, d.split_seed)
    return (x_train, y_train), (x_test, y_test), names, 255.0


def _class_names(folder: Path) -> tuple[str, ...]:
    return tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))


def _read_folder(folder: Path, names: tuple[str, ...], d: Any) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    height, width = d.image_size
    mode = "L" if d.color_mode == "grayscale" else "RGB"
    images, labels = [], []
    for label, name in enumerate(names):
        for path in sorted((folder / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(path) as img:
                    pixels = np.asarray(img.convert(mode).resize((width, height)), np.uint8)
            except (OSError, UnidentifiedImageError) as e:
                if d.skip_corrupt:
                    continue
                raise DatasetError(f"dataset.path: cannot read image {path}: {e}") from e
            images.append(pixels.reshape(height, width, -1))
            labels.append(label)
    return np.stack(images), np.asarray(labels, np.int64)


_LOADERS = {
    "digits": _digits,
    "mnist": _mnist,
    "fashion_mnist": _fashion_mnist,
    "cifar10": _cifar10,
    "directory": _directory,
}
