"""Datasets: what the sweep checks and fetches before any trial, and what a trial trains on.

In the sweep process (no TensorFlow): :func:`fetch` downloads the Keras datasets' files once,
before the first trial (:mod:`sweeper.downloads`), and :func:`check` refuses data a trial
could not use. In a worker: :func:`load` gives the splits, in memory for the arrays datasets
(:mod:`sweeper.trial.arrays`), streamed through ``tf.data`` for image folders
(:mod:`sweeper.trial.folders`, :mod:`sweeper.trial.pipeline`).

Every source gives raw pixels and the pixel scale; models rescale inside themselves, so a
checkpoint or an export takes the same raw pixels a client has.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeper.downloads import Download, ensure
from sweeper.errors import DatasetError
from sweeper.trial import arrays, folders
from sweeper.trial.splits import ArraySplits, FolderSplits, Splits, split

__all__ = ["ArraySplits", "FolderSplits", "Splits", "check", "fetch", "load"]


def load(dataset: DictConfig, validation_split: float) -> Splits:
    """The splits of ``dataset``, once per process; later calls with the same settings reuse
    them (and, for image folders, what ``dataset.cache`` keeps)."""
    return _load_cached(OmegaConf.to_yaml(dataset), validation_split)


@functools.lru_cache(maxsize=4)
def _load_cached(dataset_yaml: str, validation_split: float) -> Splits:
    d = OmegaConf.create(dataset_yaml)
    if d.name == "directory":
        return folders.load(d, validation_split)
    (x_trainval, y_trainval), (x_test, y_test), names, scale = arrays.load(d)
    if d.limit is not None and len(x_trainval) > d.limit:
        x_trainval, _, y_trainval, _ = split(x_trainval, y_trainval,
                                             1 - d.limit / len(x_trainval), d.split_seed)
    x_train, x_val, y_train, y_val = split(x_trainval, y_trainval, validation_split, d.split_seed)
    return ArraySplits(x_train, y_train, x_val, y_val, x_test, y_test, names, scale)


def fetch(datasets: Iterable[Any]) -> None:
    """Download what the datasets need into their Keras cache, each file once, before any trial
    runs; one :class:`~sweeper.errors.DownloadError` line when a file cannot be had."""
    by_cache: dict[Path, dict[Download, str]] = {}
    for d in datasets:
        for download in arrays.downloads(d):
            by_cache.setdefault(arrays.cache_dir(d), {})[download] = f"dataset={d.name}"
    for cache, needed in by_cache.items():
        ensure(list(needed), cache, needed)


def check(d: Any, train: Any) -> None:
    """Fail before any work on data a trial could not use: cache files missing, corrupt images
    (unless ``dataset.skip_corrupt``), a batch larger than the training split."""
    if d.name == "directory":
        folders.survey(d)
        total = folders.train_total(d)
    else:
        total = arrays.train_total(d)
    if d.limit is not None:
        total = min(total, d.limit)
    examples = total - math.ceil(train.validation_split * total)
    if train.batch_size > examples:
        raise DatasetError(f"train.batch_size={train.batch_size}: larger than the {examples} "
                           f"training examples of dataset={d.name}")
