"""Datasets: digits, the Keras cache, image folders streamed through tf.data (modes, 16-bit PNGs,
resizing, caching, corrupt files)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sweeper.errors import DatasetError
from sweeper.trial import data
from sweeper.trial.splits import ArraySplits, Files, FolderSplits


def _splits(compose_config, *overrides: str) -> data.Splits:
    cfg = compose_config(*overrides)
    return data.load(cfg.dataset, cfg.train.validation_split)


def _arrays(compose_config, *overrides: str) -> ArraySplits:
    s = _splits(compose_config, *overrides)
    assert isinstance(s, ArraySplits)
    return s


def _folder(compose_config, path: Path, *overrides: str) -> FolderSplits:
    s = _splits(compose_config, "dataset=directory", f"dataset.path={path}", *overrides)
    assert isinstance(s, FolderSplits)
    return s


def test_digits_splits_are_fixed_disjoint_and_complete(compose_config) -> None:
    s = _arrays(compose_config)
    assert s.input_shape == (8, 8, 1) and s.num_classes == 10 and s.scale == 16
    assert len(s.x_train) + len(s.x_val) + len(s.x_test) == 1797
    assert s.x_train.max() <= 16 and s.x_train.dtype == np.uint8
    from omegaconf import OmegaConf

    again = data._load_cached.__wrapped__(  # a fresh load, not the cache: same seeded split
        OmegaConf.to_yaml(compose_config().dataset), 0.2)
    assert np.array_equal(again.y_test, s.y_test) and np.array_equal(again.x_val, s.x_val)


def test_limit_caps_training_examples(compose_config) -> None:
    s = _arrays(compose_config, "dataset.limit=100")
    assert len(s.x_train) + len(s.x_val) == 100


def test_keras_dataset_missing_from_the_cache_names_the_file(compose_config, tmp_path,
                                                             monkeypatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(DatasetError, match="cifar-10-batches-py/data_batch_1 not found"):
        _splits(compose_config, "dataset=cifar10")


def _images(folder: Path, classes: dict[str, int], size: int = 12, mode: str = "L") -> None:
    for i, (name, count) in enumerate(classes.items()):
        (folder / name).mkdir(parents=True)
        for j in range(count):
            Image.new(mode, (size + j, size), color=40 * i + j).save(folder / name / f"{j}.png")


def _pixels(s: FolderSplits, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Every image and label of a split, in file order, as the pipeline gives them."""
    batches = list(s.decoded(split).batch(1000).as_numpy_iterator())
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def test_directory_of_class_folders_is_split_with_a_seed(compose_config, tmp_path) -> None:
    _images(tmp_path, {"NORMAL": 10, "PNEUMONIA": 10})
    s = _folder(compose_config, tmp_path, "dataset.image_size=[16,16]")
    assert s.class_names == ("NORMAL", "PNEUMONIA") and s.input_shape == (16, 16, 1)
    assert len(s.train) + len(s.val) + len(s.test) == 20 and len(s.test) == 4
    assert set(s.test.labels.tolist()) == {0, 1}  # stratified
    every = {*s.train.paths, *s.val.paths, *s.test.paths}
    assert len(every) == 20  # disjoint
    x, y = _pixels(s)
    assert x.shape == (4, 16, 16, 1) and x.dtype == np.uint8
    assert y.tolist() == s.test.labels.tolist()


def test_directory_with_train_and_test_folders_keeps_them(compose_config, tmp_path) -> None:
    _images(tmp_path / "train", {"cat": 6, "dog": 6}, mode="RGB")
    _images(tmp_path / "val", {"cat": 2, "dog": 2}, mode="RGB")
    _images(tmp_path / "test", {"cat": 2, "dog": 3}, mode="RGB")
    s = _folder(compose_config, tmp_path, "dataset.color_mode=rgb", "dataset.image_size=[10,12]")
    assert s.input_shape == (10, 12, 3) and len(s.test) == 5
    assert s.test.labels.tolist() == [0, 0, 1, 1, 1] and len(s.train) + len(s.val) == 16
    batches = list(s.test_batches(2))
    assert [len(y) for _, y in batches] == [2, 2, 1] and batches[0][0].dtype == np.float32


def _encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


# A colour every format keeps exactly (JPEG's is checked within its loss).
COLOUR = (200, 100, 40)
GREY = round(0.299 * 200 + 0.587 * 100 + 0.114 * 40)  # what PIL's convert("L") gives: 124


def _every(s: FolderSplits) -> FolderSplits:
    """``s`` with every file of the folder as its test split, in file order."""
    paths = np.concatenate([s.train.paths, s.val.paths, s.test.paths])
    return FolderSplits(s.train, s.val, Files(paths, np.zeros(len(paths), np.int64)),
                        s.class_names, s.decoding)


@pytest.mark.parametrize("mode,fmt", [
    ("RGB", "PNG"), ("RGBA", "PNG"), ("P", "PNG"), ("L", "PNG"), ("LA", "PNG"), ("I;16", "PNG"),
    ("RGB", "JPEG"), ("L", "JPEG"), ("CMYK", "JPEG"), ("RGB", "BMP"), ("P", "GIF"),
])
@pytest.mark.parametrize("color_mode", ["grayscale", "rgb"])
def test_any_colour_mode_and_format_loads_as_the_dataset_colour_mode(
        compose_config, tmp_path, mode, fmt, color_mode) -> None:
    rgb = Image.new("RGB", (12, 10), COLOUR)
    if mode == "I;16":  # 16-bit grey: 8-bit grey scaled up to 16 bits, as PNG stores it
        img = Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257)
    elif mode == "P":
        img = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    else:
        img = rgb.convert(mode)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for name in ("x", "y"):
            (tmp_path / cls / f"{name}.{fmt.lower()}").write_bytes(_encoded(img, fmt))
    s = _every(_folder(compose_config, tmp_path, f"dataset.color_mode={color_mode}",
                       "dataset.image_size=[10,12]", "dataset.test_split=0.5"))
    x, _ = _pixels(s)
    grey_source = mode in ("L", "LA", "I;16")
    want = np.array([GREY] if color_mode == "grayscale" or grey_source else COLOUR)
    assert x.shape == (4, 10, 12, 1 if color_mode == "grayscale" else 3)
    tolerance = 6 if fmt == "JPEG" else 1
    assert np.abs(x.reshape(-1, x.shape[-1]).astype(int) - want).max() <= tolerance


def _png16(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint16)).save(path)  # a 16-bit greyscale PNG


def test_16_bit_pngs_are_scaled_not_clipped(compose_config, tmp_path, caplog) -> None:
    """A 12-bit X-ray stored as the PNG standard says (samples scaled up to 16 bits) spans the
    whole 8-bit range; raw 0..4095 values need dataset.bits_stored=12, and the preflight warns."""
    twelve = np.tile(np.linspace(0, 4095, 64).round().astype(np.uint16), (8, 1))
    spec = (twelve << 4) | (twelve >> 8)  # PNG's left bit replication
    for cls in ("a", "b"):
        for name in ("x", "y"):
            _png16(tmp_path / "spec" / cls / f"{name}.png", spec)
            _png16(tmp_path / "raw" / cls / f"{name}.png", twelve)
    size = "dataset.image_size=[8,64]"

    def loaded(folder: str, *extra: str) -> np.ndarray:
        s = _folder(compose_config, tmp_path / folder, size, "dataset.test_split=0.5", *extra)
        return _pixels(s)[0][0, 0, :, 0]  # one row of the gradient

    row = loaded("spec")
    assert row.min() == 0 and row.max() == 255 and len(set(row.tolist())) == 64
    assert np.abs(row.astype(int) - np.linspace(0, 255, 64)).max() <= 1
    assert loaded("raw").max() <= 16  # as the PNG standard reads it: nearly black
    assert np.array_equal(loaded("raw", "dataset.bits_stored=12"), row)

    cfg = compose_config("dataset=directory", f"dataset.path={tmp_path / 'raw'}", size,
                         "train.batch_size=1", "train.validation_split=0.5")
    data.check(cfg.dataset, cfg.train)
    assert "set dataset.bits_stored=12" in caplog.text
    caplog.clear()
    data.check(compose_config("dataset=directory", f"dataset.path={tmp_path / 'spec'}",
                              "train.batch_size=1").dataset, cfg.train)
    assert "bits_stored" not in caplog.text


@pytest.mark.parametrize("resize,expected", [
    # (left end of the middle row, its right end, top of a right column, its middle)
    ("stretch", (0, 255, 255, 255)),  # the whole picture squeezed: its black left quarter shows
    ("crop", (255, 255, 255, 255)),   # the centre square only: white
    ("pad", (0, 255, 0, 255)),        # the whole picture, black bands above and below
])
def test_resize_stretches_crops_or_pads(compose_config, tmp_path, resize, expected) -> None:
    wide = np.full((20, 40), 255, np.uint8)
    wide[:, :10] = 0  # the left quarter black
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for name in ("x", "y"):
            Image.fromarray(wide).save(tmp_path / cls / f"{name}.png")
    s = _folder(compose_config, tmp_path, "dataset.image_size=[8,8]", f"dataset.resize={resize}",
                "dataset.test_split=0.5")
    image = _pixels(s)[0][0, :, :, 0].astype(int)
    assert (image[4, 0], image[4, 7], image[0, 6], image[4, 6]) == expected


def _epochs(s: FolderSplits, seed: int, n: int = 2) -> list[np.ndarray]:
    train = s.fit_data(4, seed)["x"]
    return [np.concatenate([y for _, y in train.as_numpy_iterator()]) for _ in range(n)]


def test_the_cache_changes_speed_not_batches(compose_config, tmp_path) -> None:
    _images(tmp_path, {"a": 12, "b": 12})
    orders = {}
    for cache in ("none", "memory", "disk"):
        s = _folder(compose_config, tmp_path, f"dataset.cache={cache}", "dataset.image_size=[8,8]")
        orders[cache] = _epochs(s, seed=3)
        x, _ = _pixels(s, "val")
        assert x.shape[1:] == (8, 8, 1)
    for cache in ("memory", "disk"):
        assert all(map(np.array_equal, orders["none"], orders[cache]))
    first, second = orders["none"]
    assert not np.array_equal(first, second)  # reshuffled every epoch
    assert sorted(first.tolist()) == sorted(second.tolist())


def test_corrupt_image_is_named_unless_skipped(compose_config, tmp_path) -> None:
    _images(tmp_path, {"a": 6, "b": 6})
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    cfg = compose_config("dataset=directory", f"dataset.path={tmp_path}", "train.batch_size=2")
    with pytest.raises(DatasetError, match=r"image .*b/broken\.png is corrupt"):
        data.check(cfg.dataset, cfg.train)
    s = _folder(compose_config, tmp_path, "dataset.skip_corrupt=true", "dataset.test_split=0.5",
                "dataset.image_size=[8,8]")
    x, _ = _pixels(_every(s))
    assert len(x) == 12  # the broken file left out while streaming


def test_the_sweep_process_checks_data_without_tensorflow(tmp_path) -> None:
    """The preflight reads image folders and the Keras cache without importing TensorFlow."""
    import subprocess
    import sys

    from helpers.mirror import sha256, write_mnist

    _images(tmp_path / "photos", {"a": 6, "b": 6})
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    write_mnist(tmp_path / "keras" / "datasets")
    code = ("import sys\nfrom sweeper import preflight\n"
            f"preflight.check(['dataset=directory', 'dataset.path={tmp_path / 'photos'}', "
            "'train.batch_size=2'])\n"
            f"preflight.check(['dataset=mnist', 'dataset.cache_dir={tmp_path / 'keras'}', "
            f"'dataset.files.0.file_hash={sha256(tmp_path / 'keras/datasets/mnist.npz')}', "
            "'train.batch_size=2'])\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
