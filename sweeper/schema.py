"""Typed schema of the configuration, and the checks every trial's config must pass.

The dataclasses are stored in Hydra's ConfigStore as ``base_config``; ``conf/config.yaml`` lists it
first in its defaults, so OmegaConf rejects unknown keys and wrong types while composing. The
range and cross-field checks that types cannot express live in :func:`validate`.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

# conf/ sits beside the package in a source checkout (the supported, editable install).
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
CONFIG_NAME = "config"

MODELS = ("mlp", "cnn", "lenet5", "alexnet", "vgg16")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "directory")
COLOR_MODES = ("grayscale", "rgb")
MODES = ("max", "min")
# Metrics a trial produces per epoch (Keras history keys) that can serve as the objective.
EPOCH_METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass
class ModelConfig:
    # architecture: one of MODELS
    name: str = MISSING
    # width of the dense hidden layer(s) before the classifier
    units: int = 128
    # dropout rate before the classifier, in [0, 1)
    dropout: float = 0.2
    # multiplier on the published filter counts (alexnet, vgg16, cnn)
    width: float = 1.0
    # side length images are resized to inside the model; null keeps the input size
    input_size: int | None = None


@dataclass
class OptimizerConfig:
    # Keras optimizer: one of OPTIMIZERS
    name: str = MISSING
    # step size, > 0
    learning_rate: float = 0.001
    # momentum (sgd, rmsprop); 0 disables it
    momentum: float = 0.0


@dataclass
class DatasetConfig:
    # source: one of DATASETS
    name: str = MISSING
    # folder with one sub-folder per class (dataset=directory only)
    path: str | None = None
    # [height, width] images are loaded at (dataset=directory only)
    image_size: list[int] = field(default_factory=lambda: [64, 64])
    # grayscale or rgb (dataset=directory only)
    color_mode: str = "grayscale"
    # fraction held out for the test split when the source has none
    test_split: float = 0.2
    # seed of the train/validation/test split; fixed so every trial sees the same split
    split_seed: int = 42
    # use at most this many training examples (null: all)
    limit: int | None = None
    # Keras cache folder holding datasets/<file>; null: $KERAS_HOME or ~/.keras
    cache_dir: str | None = None
    # leave unreadable image files out (true) or refuse to start, naming the file (false)
    skip_corrupt: bool = False


@dataclass
class TrainConfig:
    # passes over the training data, >= 1
    epochs: int = 5
    # examples per gradient step, >= 1
    batch_size: int = 32
    # fraction of the training data held out for validation, in (0, 1)
    validation_split: float = 0.2
    # seed of Python, NumPy and TensorFlow for this trial
    seed: int = 0
    # stop after this many epochs without improvement of sweep.metric; null: off
    early_stopping_patience: int | None = None
    # a trial of this sweep whose best checkpoint (weights) and first epochs this trial continues
    # from (Hyperband's survivors); null: train from scratch
    warm_start: str | None = None
    # epochs train.warm_start's trial already trained: training runs from here to train.epochs
    initial_epoch: int = 0


@dataclass
class SweepConfig:
    # name of the sweep: the folder under paths.experiments and paths.logs
    name: str = MISSING
    # objective: a metric the trial reports per epoch
    metric: str = "val_accuracy"
    # max or min
    mode: str = "max"
    # re-run trials that failed in an earlier run of this sweep (completed ones never re-run)
    retry_failed: bool = False


@dataclass
class TunerConfig:
    # set by hydra/sweeper=tuner for each trial it asks for; null in every other run
    # keras-tuner's id of the trial (its oracle's state lives in <sweep>/tuner/)
    trial: str | None = None
    # Hyperband's bracket and round of the trial
    bracket: int | None = None
    round: int | None = None


@dataclass
class PathsConfig:
    # root of sweep folders (trial records, checkpoints, leaderboards)
    experiments: str = "experiments"
    # root of TensorBoard runs
    logs: str = "logs"


@dataclass
class Config:
    model: ModelConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    dataset: DatasetConfig = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    tuner: TunerConfig = field(default_factory=TunerConfig)


def register() -> None:
    """Make the schema (``base_config``) and the ``trial_id`` resolver known (idempotent)."""
    from sweeper.record import trial_id

    ConfigStore.instance().store(name="base_config", node=Config)
    if not OmegaConf.has_resolver("trial_id"):
        OmegaConf.register_new_resolver("trial_id", trial_id)


class ConfigError(ValueError):
    """A configuration value is out of range; the message is one line naming the key."""


_SWEEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=,@-]*$")


def keras_cache_dir(cfg: Any) -> Path:
    """Folder Keras caches datasets in (``$KERAS_HOME/datasets``, default ``~/.keras/datasets``)."""
    base = cfg.cache_dir or os.environ.get("KERAS_HOME") or "~/.keras"
    return Path(base).expanduser() / "datasets"


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` on the first value no trial could run with."""
    m, o, d, t, s = cfg.model, cfg.optimizer, cfg.dataset, cfg.train, cfg.sweep
    _one_of("model", m.name, MODELS)
    _one_of("optimizer", o.name, OPTIMIZERS)
    _one_of("dataset", d.name, DATASETS)
    _check(m.units >= 1, "model.units", m.units, "an integer >= 1")
    _check(0 <= m.dropout < 1, "model.dropout", m.dropout, "a number in [0, 1)")
    _check(m.width > 0, "model.width", m.width, "a number > 0")
    _check(m.input_size is None or m.input_size >= 8, "model.input_size", m.input_size,
           "null or an integer >= 8")
    _check(o.learning_rate > 0, "optimizer.learning_rate", o.learning_rate, "a number > 0")
    _check(0 <= o.momentum < 1, "optimizer.momentum", o.momentum, "a number in [0, 1)")
    _check(t.epochs >= 1, "train.epochs", t.epochs, "an integer >= 1")
    _check(t.batch_size >= 1, "train.batch_size", t.batch_size, "an integer >= 1")
    _check(0 < t.validation_split < 1, "train.validation_split", t.validation_split,
           "a number in (0, 1)")
    _check(t.early_stopping_patience is None or t.early_stopping_patience >= 1,
           "train.early_stopping_patience", t.early_stopping_patience, "null or an integer >= 1")
    _check(0 <= t.initial_epoch < t.epochs, "train.initial_epoch", t.initial_epoch,
           f"an integer in [0, train.epochs={t.epochs})")
    _check(t.initial_epoch == 0 or t.warm_start is not None, "train.initial_epoch",
           t.initial_epoch, "0 without train.warm_start (nothing to continue from)")
    _check(t.warm_start is None or bool(_SWEEP_NAME.match(str(t.warm_start))), "train.warm_start",
           t.warm_start, "null or the id of a trial of this sweep (a folder name under trials/)")
    _check(0 < d.test_split < 1, "dataset.test_split", d.test_split, "a number in (0, 1)")
    _check(d.limit is None or d.limit >= 10, "dataset.limit", d.limit, "null or an integer >= 10")
    _one_of("sweep.mode", s.mode, MODES)
    _one_of("sweep.metric", s.metric, EPOCH_METRICS)
    name = str(s.name)
    _check(bool(_SWEEP_NAME.match(name)) and ".." not in name, "sweep.name", name,
           "a folder name: letters, digits and . _ - + = , @ (no path separators or '..')")
    if d.name == "directory":
        _check_directory(d)
    for key in ("experiments", "logs"):
        _check_writable(f"paths.{key}", Path(cfg.paths[key]))


def _check_writable(key: str, path: Path) -> None:
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:  # a real attempt: permission bits do not bind root, read-only mounts do
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ConfigError(f"{key}={path}: not writable ({existing}: {e.strerror})") from e


def _check_directory(d: Any) -> None:
    if d.path is None:
        raise ConfigError("dataset.path: required with dataset=directory; give a folder with one "
                          "sub-folder of images per class, e.g. dataset.path=data/chest_xray")
    root = Path(d.path).expanduser()
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
