"""The Keras callbacks of a trial: its record after every epoch, an atomic best checkpoint, and
the sweep's pruner asked after every epoch whether to go on.

TensorFlow and Keras are imported when a callback is made, inside a worker.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from sweeper.record import TrialRecord
from sweeper.search import pruners

log = logging.getLogger(__name__)


def progress(record: TrialRecord, trial_dir: Path, epochs: int) -> Any:
    """A Keras callback that keeps trial.json current after every epoch and notes a NaN loss."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.nan_epoch: int | None = None

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if self.nan_epoch is None and logs and not math.isfinite(float(logs.get("loss", 0))):
                self.nan_epoch = self.epoch

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            values = {k: float(v) for k, v in (logs or {}).items()}
            record.epoch_done(values)
            record.write(trial_dir)
            metric = record.objective.name
            log.info("trial %s: epoch %d/%d %s=%.4f", record.trial_id, epoch + 1, epochs,
                     metric, values.get(metric, math.nan))

    return Progress()


def pruning(pruner: Any, record: TrialRecord, trials_dir: Path, epochs: int) -> Any:
    """A Keras callback that stops training when the sweep's pruner (the ``pruner`` config node)
    judges the trial, after an epoch, against the records of the sweep's other trials in
    ``trials_dir``; None for ``pruner=none``. It must come after :func:`progress`, so the other
    trials see this epoch before this trial looks at theirs."""
    found = pruners.rule_of(pruner)
    if found is None:
        return None
    rule: pruners.Rule = found
    import keras

    class Pruning(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if self.judge():
                self.model.stop_training = True

        def judge(self) -> bool:
            """Whether the trial stops after the epochs it has recorded (its record says why)."""
            verdict = pruners.judge(rule, record, trials_dir, epochs)
            if verdict is None:
                return False
            record.prune(verdict)
            log.info("trial %s: pruned after epoch %d: %s", record.trial_id, verdict.epoch,
                     verdict.reason)
            return True

    return Pruning()


def atomic_checkpoint(path: Path, metric: str, mode: str, best: float | None) -> Any:
    """Keras's ModelCheckpoint (best only), written beside ``path`` and renamed into place, so a
    kill mid-save never leaves a truncated checkpoint; ``best`` carries a resumed trial's best."""
    import keras

    partial = path.with_name(".partial.keras")

    class AtomicCheckpoint(keras.callbacks.ModelCheckpoint):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            super().on_epoch_end(epoch, logs)
            if partial.exists():
                os.replace(partial, path)

    return AtomicCheckpoint(str(partial), monitor=metric, mode=mode, save_best_only=True,
                            initial_value_threshold=best)


def best_of(history: list[dict[str, float]], metric: str, mode: str) -> float | None:
    """The best finite value of ``metric`` over the epochs so far (None: none yet)."""
    values = [h[metric] for h in history if math.isfinite(h.get(metric, math.nan))]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def backup_epoch(backup: Path) -> int:
    """Epochs completed according to a BackupAndRestore backup (0: none, or unreadable)."""
    for name in ("training_metadata.json", "training_metadata.json.bkp"):
        try:
            return int(json.loads((backup / name).read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return 0
