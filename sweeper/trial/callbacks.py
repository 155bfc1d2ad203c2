"""The Keras callbacks of a trial: its record after every epoch, an atomic best checkpoint, and
the sweep's pruner asked after every epoch whether to go on.

TensorFlow and Keras are imported when a callback is made, inside a worker.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from sweeper.record import Mode, TrialRecord
from sweeper.search import pruners
from sweeper.trial import tripwire

log = logging.getLogger(__name__)


def progress(record: TrialRecord, trial_dir: Path, epochs: int,
             chance: float | None = None) -> Any:
    """A Keras callback that keeps trial.json current after every epoch, notes a NaN loss and,
    given the validation split's ``chance`` accuracy, sets the tripwire
    (:mod:`sweeper.trial.tripwire`) in the record and says so once in the trial's log."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.nan_epoch: int | None = None
            self.causes: list[str] = []

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.causes = tripwire.likely_causes(set(_layer_kinds(self.model)))

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if self.nan_epoch is None and logs and not math.isfinite(float(logs.get("loss", 0))):
                self.nan_epoch = self.epoch

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            values = {k: float(v) for k, v in (logs or {}).items()}
            record.epoch_done(values)
            self.trip()
            record.write(trial_dir)
            metric = record.objective.name
            log.info("trial %s: epoch %d/%d %s=%.4f", record.trial_id, epoch + 1, epochs,
                     metric, values.get(metric, math.nan))

        def trip(self) -> None:
            if chance is None:
                return
            found = tripwire.check(record.history, chance, self.causes)
            if found is None:  # a mismatch that ended stays in the record: it happened
                return
            if record.mismatch is None or record.mismatch.last_epoch < found.first_epoch:
                log.warning("trial %s: %s", record.trial_id, found.message)
            record.mismatch = found

    return Progress()


def _layer_kinds(layer: Any) -> list[str]:
    """The class names of ``layer`` and every layer inside it (nested models too)."""
    kinds = [type(layer).__name__]
    for inner in getattr(layer, "layers", []):
        kinds.extend(_layer_kinds(inner))
    return kinds


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


def durable(backup: Path, checkpoint: Path, metric: str, mode: str, best: float | None,
            every_s: float | None) -> Any:
    """What survives an interruption: the best checkpoint (best only) and Keras's
    BackupAndRestore (weights, optimizer state and epoch), written together, on a time budget.

    ``every_s`` is the budget: 0 writes after every epoch; a number, at most that often; None
    (the default), when the time since the last write is :data:`BUDGET_RATIO` times what the last
    write took, so writing costs at most a twentieth of training. The last epoch is always
    written. The checkpoint is written beside its name and renamed into place, so a kill
    mid-write never leaves a truncated one. The best epoch's weights stay in memory too: the
    trial is scored from them, not from the file. ``best`` carries a resumed trial's best.
    """
    import keras

    partial = checkpoint.with_name(".partial.keras")

    class Durable(keras.callbacks.BackupAndRestore):
        def __init__(self) -> None:
            super().__init__(str(backup), double_checkpoint=True, delete_checkpoint=False)
            self.best = best  # the best value so far, on disk or about to be
            self.best_weights: list[Any] | None = None  # this attempt's best epoch's weights
            self.pending = False  # a better epoch than the checkpoint's
            self.last: tuple[int, dict[str, Any] | None] | None = None  # the epoch not written
            self.written_at = time.monotonic()
            self.cost = 0.0

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            value = float((logs or {}).get(metric, math.nan))
            if math.isfinite(value) and (self.best is None or Mode(mode).better(value, self.best)):
                self.best, self.best_weights, self.pending = value, self.model.get_weights(), True
            self.last = (epoch, logs)
            if self.due(epoch):
                self.write()

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            if self.last is not None:  # stopped early (early stopping, a pruner) or budgeted
                self.write()

        def due(self, epoch: int) -> bool:
            if every_s == 0 or epoch + 1 >= int(self.params.get("epochs") or 0):
                return True
            wait = every_s if every_s is not None else BUDGET_RATIO * self.cost
            return time.monotonic() - self.written_at >= wait

        def write(self) -> None:
            assert self.last is not None
            tic = time.monotonic()
            if self.pending and self.best_weights is not None:
                now = self.model.get_weights()
                self.model.set_weights(self.best_weights)
                self.model.save(partial, overwrite=True)
                self.model.set_weights(now)
                os.replace(partial, checkpoint)
                self.pending = False
            super().on_epoch_end(*self.last)  # Keras's backup of the latest epoch
            self.last = None
            self.written_at = time.monotonic()
            self.cost = self.written_at - tic

    return Durable()


BUDGET_RATIO = 19.0  # write again once 19x the last write's time has passed: <= 5% of training


def best_of(history: list[dict[str, float]], metric: str, mode: str) -> float | None:
    """The best finite value of ``metric`` over the epochs so far (None: none yet)."""
    values = [h[metric] for h in history if math.isfinite(h.get(metric, math.nan))]
    return Mode(mode).best(values) if values else None


def backup_epoch(backup: Path) -> int:
    """Epochs completed according to a BackupAndRestore backup (0: none, or unreadable)."""
    # Keras 3's own layout of the backup folder, which it offers no reader for (keras<4)
    for name in ("training_metadata.json", "training_metadata.json.bkp"):
        try:
            return int(json.loads((backup / name).read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return 0


def best_model(model: Any, kept: Any, checkpoint: Path, best: float) -> Any:
    """The best epoch's model: from the weights kept in memory when the last phase of this
    attempt trained it (the checkpoint holds the same weights), else from the checkpoint."""
    import keras

    if kept is not None and kept.best_weights is not None and kept.best == best:
        model.set_weights(kept.best_weights)
        return model
    return keras.models.load_model(checkpoint)
