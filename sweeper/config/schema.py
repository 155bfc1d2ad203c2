"""Typed schema of the configuration.

The dataclasses are stored in Hydra's ConfigStore as ``base_config``; ``conf/config.yaml`` lists it
first in its defaults, so OmegaConf rejects unknown keys and wrong types while composing. The
range and cross-field checks that types cannot express live in :mod:`sweeper.config.checks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

# conf/ ships inside the package as sweeper.conf (a source checkout maps it from the top level).
CONFIG_MODULE = "sweeper.conf"
CONFIG_PATH = f"pkg://{CONFIG_MODULE}"
CONFIG_NAME = "config"

# The names the code has a loader, a rule or a layer for. The options of model, optimizer and
# schedule are `_target_` configs (sweeper.config.targets): conf/ alone lists those.
DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "directory")
PRUNERS = ("none", "median", "asha")
COLOR_MODES = ("grayscale", "rgb")
RESIZES = ("stretch", "crop", "pad")  # how an image folder's pictures fit dataset.image_size
CACHES = ("none", "memory", "disk")  # where decoded images of an image folder are kept
AUGMENTS = ("none", "basic", "xray", "randaugment")
FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")
MODES = ("max", "min")
TIE_BREAKS = ("none", "params", "duration")  # sweep.tie_break
# Metrics a trial produces per epoch (Keras history keys) that can serve as the objective.
EPOCH_METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")
# train.metrics: validation metrics a trial can add (sweeper.trial.metrics), each val_<name> too
TRAIN_METRICS = ("auc", "precision", "recall", "f1_macro", "top_k_accuracy")
CLASS_WEIGHTS = ("none", "balanced")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass
class DownloadFile:
    # keras.utils.get_file's arguments for one file, as keras.datasets passes them
    # URL of the file at its source (dataset.origin, when set, serves the same file name)
    origin: str = MISSING
    # name in the Keras cache; with extract, the folder the archive is extracted into
    fname: str = MISSING
    # sha256 (or md5) of the file; a file that does not match is deleted and fetched again
    file_hash: str | None = None
    # folder under the Keras cache folder
    cache_subdir: str = "datasets"
    # the file is an archive Keras extracts
    extract: bool = False


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
    # a mirror of the files below: a base URL or a folder holding them; null: their origin
    origin: str | None = None
    # the files Keras downloads for this dataset, with their hashes (none for digits, folders)
    files: list[DownloadFile] = field(default_factory=list)
    # how images take dataset.image_size: stretch, crop or pad (to the aspect ratio, as Keras)
    resize: str = "stretch"
    # keep decoded images: none (stream every epoch), memory, or disk (a temporary folder)
    cache: str = "none"
    # 16-bit images holding raw values of this many bits (12: 0..4095 is black..white);
    # null: the PNG standard's full 16-bit range
    bits_stored: int | None = None


@dataclass
class AugmentConfig:
    # preset: one of AUGMENTS; the strengths below are what it sets, each sweepable
    name: str = MISSING
    # random flips: none, horizontal, vertical, horizontal_and_vertical
    flip: str = "none"
    # random rotation up to this fraction of a full turn either way, in [0, 1]
    rotation: float = 0.0
    # random zoom in or out up to this fraction, in [0, 1)
    zoom: float = 0.0
    # random horizontal shear up to this fraction of the width either way, in [0, 1]
    shear: float = 0.0
    # RandAugment's strength in [0, 1]; 0: no RandAugment
    magnitude: float = 0.0
    # RandAugment's operations per image, >= 1
    num_ops: int = 2


@dataclass
class TrainConfig:
    # passes over the training data, >= 1
    epochs: int = 20
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
    # train in mixed_float16 (float16 compute, float32 weights; the output layer stays float32)
    mixed_precision: bool = False
    # compile the train step with XLA: true, false, or null for Keras's choice ("auto")
    jit_compile: bool | None = None
    # how often an interrupted trial's backup and best checkpoint are written: 0 after every
    # epoch, a number of seconds at most that often, null when writing costs <= 5% of training
    backup_every_s: float | None = None
    # validation metrics besides accuracy, logged every epoch as val_<name> (TRAIN_METRICS); any
    # of them can be sweep.metric
    metrics: list[str] = field(default_factory=list)
    # weights of the classes in the loss: none, or balanced (n / (classes x count) in the
    # training split, as scikit-learn's compute_class_weight) for imbalanced data
    class_weight: str = "none"


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
    # a sweep with failed trials exits 0 (true) instead of 1 with "N trials failed" (false)
    allow_failures: bool = False
    # trainings of each configuration, with seeds train.seed + k (k = 0..repeats-1): the
    # leaderboard then ranks configurations by their mean, with an interval and ties
    repeats: int = 1
    # which of them this trial is (set by the sweeper for each repeat; not a hyperparameter)
    repeat: int = 0
    # among the configurations tied with #1, promote: none (#1 itself), params (the smallest
    # model) or duration (the fastest to train)
    tie_break: str = "none"
    # costs measured beyond parameters, FLOPs, size, throughput and memory: [tflite] adds the
    # TensorFlow Lite sizes and latency (measured anyway when a constraint or objective needs them)
    measure: list[str] = field(default_factory=list)
    # limits on costs or validation metrics, e.g. ['params<=200000','latency_ms<=5']
    constraints: list[str] = field(default_factory=list)
    # two or more objectives traded off on a Pareto front, e.g. [val_accuracy:max,latency_ms:min];
    # the first is sweep.metric/sweep.mode
    objectives: list[str] = field(default_factory=list)
    # which member of the front is promoted: first (best on the first objective) or knee
    promote: str = "first"


@dataclass
class PrunerConfig:
    # the rule that stops unpromising trials early: one of PRUNERS (none: every trial trains all
    # its epochs); each option's own settings are in its subclass below
    name: str = MISSING


@dataclass
class MedianPrunerConfig(PrunerConfig):
    # epochs every trial trains before the rule may stop it, >= 1
    min_epochs: int = 2
    # other trials that must have reached an epoch before a trial is judged there, >= 1
    min_trials: int = 3


@dataclass
class AshaPrunerConfig(PrunerConfig):
    # epochs of the first rung, >= 1
    grace_period: int = 1
    # rungs at grace_period * reduction_factor^k epochs; 1/reduction_factor of the trials at a
    # rung go on, >= 2
    reduction_factor: int = 4


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
    # `_target_` configs: their keys are the arguments of the builder or class they name, so
    # they are checked against its signature (sweeper.config.targets), not typed here
    model: Any = MISSING
    optimizer: Any = MISSING
    schedule: Any = field(default_factory=dict)
    dataset: DatasetConfig = MISSING
    augment: AugmentConfig = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    tuner: TunerConfig = field(default_factory=TunerConfig)
    pruner: PrunerConfig = MISSING


def register() -> None:
    """Make the schema (``base_config``) and the ``trial_id`` resolver known (idempotent)."""
    from sweeper.config.identity import resolve_trial_id

    store = ConfigStore.instance()
    store.store(name="base_config", node=Config)
    # Each pruner option's typed settings, which its conf/pruner/<name>.yaml extends (stored
    # outside the group, so they are not options of their own).
    for name, node in (("none", PrunerConfig), ("median", MedianPrunerConfig),
                       ("asha", AshaPrunerConfig)):
        store.store(name=f"pruner_{name}_schema", node=node)
    if not OmegaConf.has_resolver("trial_id"):
        OmegaConf.register_new_resolver("trial_id", resolve_trial_id)
