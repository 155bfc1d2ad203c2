"""Image folders (``dataset=directory``): which files, which class, which split. No TensorFlow.

``dataset.path`` holds one sub-folder per class, or ``train/``, ``val/`` and ``test/`` sub-folders
each holding the class folders. A shipped test split is kept; a shipped validation split joins
training (the validation split is drawn again with ``dataset.split_seed``, so every trial sees the
same one); without a test split one is drawn, stratified and seeded. The files themselves are
read by :mod:`sweeper.trial.pipeline`, in the worker.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from sweeper.config.schema import IMAGE_SUFFIXES
from sweeper.errors import DatasetError
from sweeper.trial.splits import Decoding, Files, FolderSplits, split

log = logging.getLogger(__name__)

RAW_SAMPLE = 8  # 16-bit images the preflight looks into for raw (unscaled) 12-bit values


def load(d: Any, validation_split: float) -> FolderSplits:
    """The files of each split of the folder ``d.path`` (less the unusable ones, with
    ``dataset.skip_corrupt``: they count in no split and no epoch's steps)."""
    root = Path(d.path).expanduser()
    left_out = frozenset(unusable(root)) if d.skip_corrupt else frozenset()
    if (root / "train").is_dir():
        names = class_names(root / "train")
        trainval = _files(root / "train", names, left_out)
        if (root / "val").is_dir():
            trainval = _join(trainval, _files(root / "val", names, left_out))
        test = _files(root / "test", names, left_out) if (root / "test").is_dir() else None
    else:
        names = class_names(root)
        trainval, test = _files(root, names, left_out), None
    if test is None:
        trainval, test = _split(trainval, d.test_split, d.split_seed)
    if d.limit is not None and len(trainval) > d.limit:
        trainval, _ = _split(trainval, 1 - d.limit / len(trainval), d.split_seed)
    train, val = _split(trainval, validation_split, d.split_seed)
    decoding = Decoding(image_size=(int(d.image_size[0]), int(d.image_size[1])),
                        channels=1 if d.color_mode == "grayscale" else 3, resize=str(d.resize),
                        cache=str(d.cache), skip_corrupt=bool(d.skip_corrupt),
                        bits_stored=d.bits_stored)
    return FolderSplits(train, val, test, names, decoding)


def class_names(folder: Path) -> tuple[str, ...]:
    return tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _files(folder: Path, names: tuple[str, ...], left_out: frozenset[str]) -> Files:
    paths, labels = [], []
    for label, name in enumerate(names):
        if (folder / name).is_dir():
            found = [p for p in _images(folder / name) if str(p) not in left_out]
            paths += [str(p) for p in found]
            labels += [label] * len(found)
    return Files(np.asarray(paths, dtype=str), np.asarray(labels, dtype=np.int64))


def _join(a: Files, b: Files) -> Files:
    return Files(np.concatenate([a.paths, b.paths]), np.concatenate([a.labels, b.labels]))


def _split(files: Files, fraction: float, seed: int) -> tuple[Files, Files]:
    a_paths, b_paths, a_labels, b_labels = split(files.paths, files.labels, fraction, seed)
    return Files(a_paths, a_labels), Files(b_paths, b_labels)


def train_total(d: Any) -> int:
    """How many images train and validate (what the test split leaves)."""
    root = Path(d.path).expanduser()

    def count(folder: Path) -> int:
        return sum(len(_images(c)) for c in folder.iterdir() if c.is_dir())

    if not (root / "train").is_dir():
        total = count(root)
    else:
        total = count(root / "train") + (count(root / "val") if (root / "val").is_dir() else 0)
        if (root / "test").is_dir():
            return total
    return total - math.ceil(d.test_split * total)


def survey(d: Any) -> None:
    """Before any trial: every image usable, or (``dataset.skip_corrupt``) the ones that are not
    named, as the trials will leave them out; and a warning when 16-bit images look like raw
    12-bit values that would load nearly black."""
    root = str(Path(d.path).expanduser())
    bad, sixteen = _survey(root)
    if bad and not d.skip_corrupt:
        path, why = next(iter(bad.items()))
        raise DatasetError(f"dataset.path: image {path} is {why}; remove it, or set "
                           "dataset.skip_corrupt=true to leave such files out")
    if bad:
        shown = "; ".join(f"{path} ({why})" for path, why in list(bad.items())[:SHOWN])
        more = f"; and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
        log.warning("dataset.skip_corrupt: %d image(s) left out of every split: %s%s", len(bad),
                    shown, more)
    if d.bits_stored is None and sixteen and all(_largest(p) < 4096 for p in sixteen):
        log.warning("dataset.path: 16-bit images such as %s hold no value above 4095, as raw "
                    "12-bit data does; read as the PNG standard says they are nearly black: "
                    "set dataset.bits_stored=12 if 0..4095 is their black..white", sixteen[0])


SHOWN = 10  # files a warning names one by one


def unusable(root: Path) -> dict[str, str]:
    """The image files under ``root`` no trial can use, and why (path -> reason)."""
    return _survey(str(root))[0]


@functools.lru_cache(maxsize=16)  # the preflight asks once per trial configuration
def _survey(root: str) -> tuple[dict[str, str], tuple[Path, ...]]:
    """The unusable images under ``root`` (corrupt, or too large to decode safely: a
    decompression bomb), and a sample of its 16-bit PNGs."""
    from PIL import Image

    bad: dict[str, str] = {}
    sixteen: list[Path] = []
    # Opening reads the header only: the size is checked here, against Pillow's own limit, so
    # that a decompression bomb is named as one (Pillow would refuse it before its size is known).
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        for path in sorted(Path(root).rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(path) as img:
                    width, height = img.size
                    if limit is not None and width * height > limit:
                        bad[str(path)] = (f"{width}x{height} pixels, too large to decode safely "
                                          f"(over Pillow's {limit:,}: a decompression bomb?)")
                        continue
                    if img.format == "PNG" and img.mode.startswith("I") and \
                            len(sixteen) < RAW_SAMPLE:
                        sixteen.append(path)
                    img.verify()
            except Exception as e:
                bad[str(path)] = f"corrupt ({type(e).__name__})"
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return bad, tuple(sixteen)


def _largest(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as img:
        return int(np.asarray(img).max())
