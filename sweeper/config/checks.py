"""The checks every trial's configuration must pass that types cannot express: ranges, options,
folders. Each failure is one line naming the key and what is allowed (:class:`ConfigError`)."""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeper.config.objectives import goals
from sweeper.config.schema import (
    AUGMENTS,
    CACHES,
    CLASS_WEIGHTS,
    COLOR_MODES,
    DATASETS,
    EPOCH_METRICS,
    FLIPS,
    IMAGE_SUFFIXES,
    MODES,
    PRUNERS,
    RESIZES,
    TIE_BREAKS,
    TRAIN_METRICS,
)
from sweeper.config.targets import check as check_targets
from sweeper.errors import ConfigError

_SWEEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=,@-]*$")


def metric_names(train: Any) -> tuple[str, ...]:
    """What a trial reports each epoch: Keras's accuracy and loss, and ``train.metrics``."""
    return (*EPOCH_METRICS, *(f"val_{m}" for m in train.metrics))


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` on the first value no trial could run with."""
    d, t, s = cfg.dataset, cfg.train, cfg.sweep
    _one_of("dataset", d.name, DATASETS)
    _check_ranges(cfg)
    check_targets(cfg)
    _check(t.epochs >= 1, "train.epochs", t.epochs, "an integer >= 1")
    _check(t.batch_size >= 1, "train.batch_size", t.batch_size, "an integer >= 1")
    _check(0 < t.validation_split < 1, "train.validation_split", t.validation_split,
           "a number in (0, 1)")
    _check(t.backup_every_s is None or (math.isfinite(t.backup_every_s) and
                                        t.backup_every_s >= 0), "train.backup_every_s",
           t.backup_every_s, "null or a number of seconds >= 0")
    _check(t.early_stopping_patience is None or t.early_stopping_patience >= 1,
           "train.early_stopping_patience", t.early_stopping_patience, "null or an integer >= 1")
    _check(t.warm_start is None or bool(_SWEEP_NAME.match(str(t.warm_start))), "train.warm_start",
           t.warm_start, "null or the id of a trial of this sweep (a folder name under trials/)")
    _check(0 < d.test_split < 1, "dataset.test_split", d.test_split, "a number in (0, 1)")
    _check(d.limit is None or d.limit >= 10, "dataset.limit", d.limit, "null or an integer >= 10")
    cross_checks(cfg)  # once each key is valid alone
    _one_of("sweep.mode", s.mode, MODES)
    _check(s.repeats >= 1, "sweep.repeats", s.repeats, "an integer >= 1")
    _check(s.repeat >= 0, "sweep.repeat", s.repeat, "an integer >= 0")
    _one_of("sweep.tie_break", s.tie_break, TIE_BREAKS)
    for name in t.metrics:
        _one_of("train.metrics", name, TRAIN_METRICS)
    _one_of("train.class_weight", t.class_weight, CLASS_WEIGHTS)
    if str(s.metric).startswith("test_"):
        raise ConfigError(f"sweep.metric={s.metric}: a test-split score cannot be the objective "
                          "(choosing on the test split leaks it into the choice); use its "
                          "validation twin, val_" + str(s.metric).removeprefix("test_"))
    _one_of("sweep.metric", s.metric, metric_names(t))
    goals(s, metric_names(t))
    _check_pruner(cfg.pruner)
    name = str(s.name)
    _check(bool(_SWEEP_NAME.match(name)) and ".." not in name, "sweep.name", name,
           "a folder name: letters, digits and . _ - + = , @ (no path separators or '..')")
    _check_dataset(d)
    if d.name == "directory":
        _check_directory(d)
    _check_augment(cfg.augment)
    # The roots, and the sweep's own folders where they exist already (a re-run): a trial
    # that trains for an hour must not find at the end that its results cannot be written.
    experiments, logs = Path(cfg.paths.experiments), Path(cfg.paths.logs)
    for key, root, path in (("paths.experiments", experiments, experiments / name / "trials"),
                            ("paths.logs", logs, logs / name)):
        _check_writable(key, root, path)


# Ranges of the keys that mean the same in every option that has them (a builder's own keys are
# checked against its signature by sweeper.config.targets).
_RANGES: dict[str, tuple[Any, str]] = {
    "model.units": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "model.dropout": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "model.width": (lambda v: _number(v) and v > 0, "a number > 0"),
    "model.bn_momentum": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "model.input_size": (lambda v: _integer(v) and v >= 8, "null or an integer >= 8"),
    "model.fine_tune_at": (lambda v: _integer(v) and v >= 0, "null or an integer >= 0"),
    "model.freeze_base": (lambda v: isinstance(v, bool), "true or false"),
    "optimizer.learning_rate": (lambda v: _number(v) and math.isfinite(v) and v > 0,
                                "a finite number > 0"),
    "optimizer.momentum": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "optimizer.weight_decay": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "schedule.alpha": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "schedule.decay_rate": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "schedule.warmup_epochs": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
}
# Keys that may be null where an option has them.
_NULLABLE = ("model.units", "model.input_size", "model.fine_tune_at")


def _check_ranges(cfg: DictConfig) -> None:
    for key, (ok, allowed) in _RANGES.items():
        group, _, name = key.partition(".")
        node = cfg[group]
        if name not in node or OmegaConf.is_missing(node, name):
            continue
        value = node[name]
        if value is None and key in _NULLABLE:
            continue
        _check(value is not None and ok(value), key, "null" if value is None else value, allowed)


#: The keys each rule of :func:`cross_checks` reads together: a grid checks every combination of
#: their swept values, not each value alone.
CROSS_KEYS: tuple[tuple[str, ...], ...] = (
    ("model.fine_tune_at", "model.freeze_base"),
    ("train.initial_epoch", "train.epochs", "train.warm_start"),
)


def cross_checks(cfg: DictConfig) -> None:
    """The rules that read several keys together (:data:`CROSS_KEYS`); a trial checks them
    again on its own configuration before it trains."""
    t, m = cfg.train, cfg.model
    _check(0 <= t.initial_epoch < t.epochs, "train.initial_epoch", t.initial_epoch,
           f"an integer in [0, train.epochs={t.epochs})")
    _check(t.initial_epoch == 0 or t.warm_start is not None, "train.initial_epoch",
           t.initial_epoch, "0 without train.warm_start (nothing to continue from)")
    if m.get("fine_tune_at") is not None and not m.get("freeze_base", False):
        raise ConfigError(f"model.fine_tune_at={m.fine_tune_at}: needs model.freeze_base=true "
                          "(the second phase unfreezes a base that the first phase froze)")


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_pruner(p: Any) -> None:
    _one_of("pruner", p.name, PRUNERS)
    if p.name == "median":
        _check(p.min_epochs >= 1, "pruner.min_epochs", p.min_epochs, "an integer >= 1")
        _check(p.min_trials >= 1, "pruner.min_trials", p.min_trials, "an integer >= 1")
    elif p.name == "asha":
        _check(p.grace_period >= 1, "pruner.grace_period", p.grace_period, "an integer >= 1")
        _check(p.reduction_factor >= 2, "pruner.reduction_factor", p.reduction_factor,
               "an integer >= 2")


def _check_writable(key: str, value: Path, path: Path) -> None:
    """``path`` (or, where it does not exist yet, the folder that would hold it) takes files."""
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:  # a real attempt: permission bits do not bind root, read-only mounts do
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ConfigError(f"{key}={value}: not writable ({existing}: {e.strerror})") from e


def _check_dataset(d: Any) -> None:
    _one_of("dataset.resize", d.resize, RESIZES)
    _one_of("dataset.cache", d.cache, CACHES)
    _check(d.bits_stored is None or 1 <= d.bits_stored <= 16, "dataset.bits_stored",
           d.bits_stored, "null or an integer in [1, 16]")
    origin = d.origin
    if origin and "://" not in origin and not Path(origin).expanduser().is_dir():
        raise ConfigError(f"dataset.origin={origin}: no such folder; give a base URL "
                          "(https://host/path/) or a folder holding the dataset's files")


def _check_augment(a: Any) -> None:
    _one_of("augment", a.name, AUGMENTS)
    _one_of("augment.flip", a.flip, FLIPS)
    _check(0 <= a.rotation <= 1, "augment.rotation", a.rotation,
           "a fraction of a full turn in [0, 1]")
    _check(0 <= a.zoom < 1, "augment.zoom", a.zoom, "a number in [0, 1)")
    _check(0 <= a.shear <= 1, "augment.shear", a.shear, "a fraction of the width in [0, 1]")
    _check(0 <= a.magnitude <= 1, "augment.magnitude", a.magnitude, "a number in [0, 1]")
    _check(a.num_ops >= 1, "augment.num_ops", a.num_ops, "an integer >= 1")


def _check_directory(d: Any) -> None:
    if d.path is None:
        raise ConfigError("dataset.path: required with dataset=directory; give a folder with one "
                          "sub-folder of images per class, e.g. dataset.path=data/chest_xray")
    root = Path(d.path).expanduser()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"dataset.path={d.path}: a file, not a folder; give the folder that "
                          "holds one sub-folder of images per class")
    if not root.is_dir():
        raise ConfigError(f"dataset.path={d.path}: no such folder; expected a folder with one "
                          "sub-folder of images per class")
    _check(len(d.image_size) == 2 and min(d.image_size) >= 8, "dataset.image_size",
           list(d.image_size), "[height, width], each >= 8")
    _one_of("dataset.color_mode", d.color_mode, COLOR_MODES)
    splits = [root / s for s in ("train", "val", "test") if (root / s).is_dir()]
    for split_root in splits or [root]:
        classes = [p for p in split_root.iterdir() if p.is_dir() and _has_images(p)]
        if len(classes) < 2:
            raise ConfigError(f"dataset.path={split_root}: {len(classes)} class folder(s) with "
                              "images; at least 2 are needed")


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def _check(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value}: must be {allowed}")


def _one_of(key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value}: must be one of {', '.join(allowed)}")
