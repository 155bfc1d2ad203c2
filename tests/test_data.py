"""Loaders: digits, the Keras cache formats (tiny files in a temporary cache), image folders."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sweeper.errors import DatasetError
from sweeper.trial import data


def _splits(compose_config, *overrides: str) -> data.Splits:
    cfg = compose_config(*overrides)
    return data.load(cfg.dataset, cfg.train.validation_split)


def test_digits_splits_are_fixed_disjoint_and_complete(compose_config) -> None:
    s = _splits(compose_config)
    assert s.input_shape == (8, 8, 1) and s.num_classes == 10 and s.scale == 16
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) == 1797
    assert s.x_train.max() <= 16 and s.x_train.dtype == np.uint8
    again = data._load_cached.__wrapped__(  # a fresh load, not the cache: same seeded split
        _yaml(compose_config), 0.2)
    assert np.array_equal(again.y_test, s.y_test) and np.array_equal(again.x_val, s.x_val)


def _yaml(compose_config) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(compose_config().dataset)


def test_limit_caps_training_examples(compose_config) -> None:
    s = _splits(compose_config, "dataset.limit=100")
    assert len(s.x_train) + len(s.x_val) == 100


def _write_mnist(root: Path, n: int = 30) -> None:
    rng = np.random.default_rng(0)
    (root / "datasets").mkdir(parents=True)
    np.savez(root / "datasets" / "mnist.npz",
             x_train=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
             y_train=np.arange(n, dtype=np.uint8) % 10,
             x_test=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
             y_test=np.arange(10, dtype=np.uint8))


def _write_fashion(root: Path, n: int = 30) -> None:
    folder = root / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    for prefix, count in (("train", n), ("t10k", 10)):
        labels = bytes(8) + bytes(np.arange(count, dtype=np.uint8) % 10)
        images = bytes(16) + bytes(np.full(count * 28 * 28, 7, np.uint8))
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(labels)
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(images)


def _write_cifar(root: Path, per_batch: int = 6) -> None:
    folder = root / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in data.CIFAR10_BATCHES:
        n = 10 if name == "test_batch" else per_batch
        batch = {b"data": np.full((n, 3 * 32 * 32), 200, np.uint8),
                 b"labels": [i % 10 for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)


@pytest.mark.parametrize("name,writer,shape,train_total", [
    ("mnist", _write_mnist, (28, 28, 1), 30),
    ("fashion_mnist", _write_fashion, (28, 28, 1), 30),
    ("cifar10", _write_cifar, (32, 32, 3), 30),
])
def test_keras_datasets_load_from_the_cache(compose_config, tmp_path, monkeypatch, name, writer,
                                            shape, train_total) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    writer(tmp_path)
    s = _splits(compose_config, f"dataset={name}")
    assert s.input_shape == shape and s.scale == 255 and s.num_classes == 10
    assert len(s.x_train) + len(s.x_val) == train_total and len(s.x_test) == 10
    assert s.y_test.tolist() == list(range(10))


def test_keras_dataset_missing_names_the_file(compose_config, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cfg = compose_config("dataset=cifar10")
    with pytest.raises(DatasetError, match="cifar-10-batches-py/data_batch_1 not found"):
        data.cache_files(cfg.dataset)


def _images(folder: Path, classes: dict[str, int], size: int = 12, mode: str = "L") -> None:
    for i, (name, count) in enumerate(classes.items()):
        (folder / name).mkdir(parents=True)
        for j in range(count):
            Image.new(mode, (size + j, size), color=40 * i + j).save(folder / name / f"{j}.png")


def test_directory_of_class_folders_is_split_with_a_seed(compose_config, tmp_path) -> None:
    _images(tmp_path, {"NORMAL": 10, "PNEUMONIA": 10})
    s = _splits(compose_config, "dataset=directory", f"dataset.path={tmp_path}",
                "dataset.image_size=[16,16]")
    assert s.class_names == ("NORMAL", "PNEUMONIA") and s.input_shape == (16, 16, 1)
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) == 20 and len(s.x_test) == 4
    assert set(s.y_test.tolist()) == {0, 1}  # stratified


def test_directory_with_train_and_test_folders_keeps_them(compose_config, tmp_path) -> None:
    _images(tmp_path / "train", {"cat": 6, "dog": 6}, mode="RGB")
    _images(tmp_path / "test", {"cat": 2, "dog": 3}, mode="RGB")
    s = _splits(compose_config, "dataset=directory", f"dataset.path={tmp_path}",
                "dataset.color_mode=rgb", "dataset.image_size=[10,12]")
    assert s.input_shape == (10, 12, 3) and len(s.x_test) == 5
    assert s.y_test.tolist() == [0, 0, 1, 1, 1] and len(s.x_train) + len(s.x_val) == 12


def test_corrupt_image_is_named(compose_config, tmp_path) -> None:
    _images(tmp_path, {"a": 3, "b": 3})
    (tmp_path / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"b/broken\.png"):
        _splits(compose_config, "dataset=directory", f"dataset.path={tmp_path}")
