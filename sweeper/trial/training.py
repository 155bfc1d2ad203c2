"""How a trial trains: its precision, its optimizer and learning-rate schedule, and its phases.

A model whose option sets ``freeze_base`` trains its pretrained part (the builder's layer named
``base``) frozen; with ``fine_tune_at`` too, a second phase over the last half of
``train.epochs`` also trains the base's layers from that index on, at a tenth of the learning rate,
as Keras's transfer-learning guide does. Each phase compiles the model afresh (Keras needs that
after ``trainable`` changes) and keeps its own BackupAndRestore folder, so an interrupted trial
resumes inside the phase it was in.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sweeper.config.targets import OPTIMIZER, SCHEDULE, TARGET, arguments
from sweeper.errors import TrialFailed
from sweeper.record import CHECKPOINT, Status, TrialRecord
from sweeper.trial.callbacks import backup_epoch, best_of, durable
from sweeper.trial.models import BASE, base_of

log = logging.getLogger(__name__)

FINE_TUNE_BACKUP = "fine_tune"  # the second phase's backup, inside the first one's folder
FINE_TUNE_RATE = 0.1  # the second phase's learning rate, as a fraction of the first one's


@dataclass(frozen=True)
class Phase:
    """Epochs of a trial trained with one set of trainable layers and one optimizer."""

    number: int  # 1; 2 for fine-tuning
    start: int  # the epoch it starts at when it runs through (its schedule spans start..end)
    end: int  # the epoch it trains up to (Keras's ``epochs``)
    learning_rate_scale: float
    backup: Path  # its BackupAndRestore folder


def phases(cfg: DictConfig, backup: Path) -> list[Phase]:
    """The phases of a trial of ``cfg`` whose first backup folder is ``backup``."""
    epochs, first = int(cfg.train.epochs), int(cfg.train.initial_epoch)
    second = epochs // 2 if cfg.model.get("fine_tune_at") is not None else 0
    middle = max(first, epochs - second)
    if middle >= epochs:
        return [Phase(1, first, epochs, 1.0, backup)]
    return [Phase(1, first, middle, 1.0, backup),
            Phase(2, middle, epochs, FINE_TUNE_RATE, backup / FINE_TUNE_BACKUP)]


def resumed_epoch(backup: Path) -> int:
    """Epochs completed according to the backups of either phase (0: none)."""
    return max(backup_epoch(backup), backup_epoch(backup / FINE_TUNE_BACKUP))


def set_precision(mixed: bool, gpus: int) -> None:
    """Keras's global dtype policy for the model about to be built (a warm worker's earlier
    trial may have left another one)."""
    import keras

    if mixed and not gpus:
        log.warning("train.mixed_precision on CPU: float16 is emulated there, expect it slower")
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")


def set_trainable(model: Any, model_cfg: DictConfig, phase: Phase) -> None:
    """Freeze or unfreeze the model's base for ``phase``, as ``freeze_base`` and
    ``fine_tune_at`` say."""
    if not model_cfg.get("freeze_base", False):
        return
    base = base_of(model)
    if base is None:
        raise TrialFailed(f"model.freeze_base: the model has no layer named {BASE!r} to freeze")
    if phase.number == 1:
        base.trainable = False
        return
    at = int(model_cfg.fine_tune_at)
    if at >= len(base.layers):
        raise TrialFailed(f"model.fine_tune_at={at}: the base has only {len(base.layers)} layers")
    base.trainable = True
    for layer in base.layers[:at]:
        layer.trainable = False
    log.info("fine-tuning: %d of the base's %d layers train from here on",
             len(base.layers) - at, len(base.layers))


def optimizer(cfg: DictConfig, steps_per_epoch: int, phase: Phase) -> Any:
    """The optimizer of ``phase``, with its schedule over the phase's epochs."""
    from hydra.utils import instantiate

    rate: Any = float(cfg.optimizer.learning_rate) * phase.learning_rate_scale
    if cfg.schedule.get(TARGET):
        rate = instantiate({TARGET: cfg.schedule[TARGET], **arguments(cfg.schedule, SCHEDULE)},
                           learning_rate=rate, steps_per_epoch=steps_per_epoch,
                           epochs=max(1, phase.end - phase.start), _convert_="all")
    keys = arguments(cfg.optimizer, OPTIMIZER)
    keys["learning_rate"] = rate
    return instantiate({TARGET: cfg.optimizer[TARGET], **keys}, _convert_="all")


def callbacks(cfg: DictConfig, phase: Phase, watch: Any, checkpoint: Path,
              history: list[dict[str, float]], tensorboard_run: Path) -> list[Any]:
    """The Keras callbacks of ``phase``: the best checkpoint (carrying the best so far), the
    TensorBoard run, NaN and early stopping, the record (``watch``), the phase's backup."""
    import keras

    metric, mode = str(cfg.sweep.metric), str(cfg.sweep.mode)
    every = cfg.train.get("backup_every_s")
    out = [
        keras.callbacks.TensorBoard(log_dir=str(tensorboard_run), write_graph=False),
        keras.callbacks.TerminateOnNaN(),
        watch,  # records the epoch before the backup is taken: resume trims to the backup
        # The best checkpoint, and weights, optimizer state and epoch: an interrupted trial
        # continues from its last backup, not from scratch. The backup is kept past the end of
        # fit, until the record is final: an interruption while the trial evaluates must not
        # cost it its epochs.
        durable(phase.backup, checkpoint, metric, mode, best_of(history, metric, mode),
                None if every is None else float(every)),
    ]
    patience = cfg.train.early_stopping_patience
    if patience:
        out.append(keras.callbacks.EarlyStopping(monitor=metric, mode=mode, patience=patience))
    return out


def steps_per_epoch(examples: int, batch_size: int) -> int:
    return max(1, math.ceil(examples / batch_size))


def jit_compile(setting: bool | None) -> bool | str:
    """Keras's ``jit_compile``: ``"auto"`` (its own choice) when the setting is null."""
    return "auto" if setting is None else bool(setting)


def warm_start(model: Any, record: TrialRecord, trial_dir: Path, t: DictConfig,
               sweep: str) -> None:
    """Continue from ``train.warm_start``'s trial, as Hyperband's survivors do: its best
    weights, its best checkpoint as the best so far, and its first epochs as this trial's."""
    parent = trial_dir.parent / str(t.warm_start)
    earlier = TrialRecord.read(parent)
    if earlier is None or earlier.status is not Status.COMPLETED:
        raise TrialFailed(f"train.warm_start={t.warm_start}: no completed trial of sweep "
                          f"{sweep} by that id")
    inherited = list(earlier.history)[:t.initial_epoch]
    if len(inherited) < t.initial_epoch:
        raise TrialFailed(f"train.warm_start={t.warm_start}: that trial trained "
                          f"{len(inherited)} epochs, not train.initial_epoch={t.initial_epoch}")
    model.load_weights(parent / CHECKPOINT)
    mine = trial_dir / CHECKPOINT
    partial = mine.with_name(".partial.keras")
    shutil.copyfile(parent / CHECKPOINT, partial)
    os.replace(partial, mine)
    record.history.extend(inherited)
    record.epochs_completed = len(inherited)
    record.metrics = dict(inherited[-1]) if inherited else {}
    log.info("trial %s: continues trial %s after epoch %d", trial_dir.name, t.warm_start,
             t.initial_epoch)
