"""One trial: seed, load, build, fit, evaluate, checkpoint, log to TensorBoard, record.

Everything that makes a trial a trial lives here, so it holds under every Hydra launcher.
TensorFlow is imported only when a trial actually trains.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sweeper import hparams
from sweeper.atomic import write_atomic
from sweeper.config import checks
from sweeper.config.identity import config_difference, config_yaml
from sweeper.config.objectives import BUILD, TFLITE, TRAINED, goals
from sweeper.errors import ConfigError, TrialFailed, TrialInfeasible
from sweeper.record import (
    CHECKPOINT,
    RECORD,
    UNREADABLE,
    Objective,
    RecordError,
    Status,
    TrialRecord,
    now_iso,
)
from sweeper.trial import cost, data, evaluate, gpu, host, metrics, models, training, tripwire
from sweeper.trial.callbacks import best_model, best_of, progress, pruning

log = logging.getLogger(__name__)

BACKUP = "checkpoints/backup"
CONFUSION = "confusion_matrix.csv"


def run(cfg: DictConfig) -> float:
    """Run the trial of the current Hydra job; return its objective (NaN when it failed)."""
    hc = HydraConfig.get()
    return Trial(cfg, Path(hc.runtime.output_dir), list(hc.overrides.task),
                 dict(hc.runtime.choices)).run()


class Trial:
    """A trial of ``cfg`` whose folder is ``trial_dir``."""

    def __init__(self, cfg: DictConfig, trial_dir: Path, overrides: list[str],
                 choices: dict[str, Any]) -> None:
        self.cfg = cfg
        self.dir = trial_dir
        self.id = trial_dir.name
        self.overrides = overrides
        self.tb_run = Path(cfg.paths.logs) / cfg.sweep.name / self.id
        self.hparams = hparams.trial_hparams(cfg, overrides, choices)
        tuner_trial = cfg.tuner.trial
        self.group = hparams.group_name(self.id, self.hparams, trial_dir.parent.parent,
                                        None if tuner_trial is None else str(tuner_trial))
        self.backup = trial_dir / BACKUP

    def run(self) -> float:
        earlier = self._earlier()
        if earlier is not None and (reason := self._skip(earlier)):
            log.info("trial %s: %s", self.id, reason)
            value = earlier.objective.value
            return float(value) if value is not None else math.nan
        started = self._started = time.time()
        record = self._new_record(earlier)
        write_atomic(self.dir / "config.yaml", config_yaml(self.cfg))
        record.write(self.dir)
        try:
            self._train(record)
        except TrialInfeasible as e:
            log.info("trial %s: infeasible, not trained: %s", self.id, e)
            record.rule_out(str(e))
            self._end_session(Status.INFEASIBLE)
        except TrialFailed as e:
            log.error("trial %s failed: %s", self.id, e)
            self._fail(record, str(e))
        except Exception as e:  # a failing trial never takes the sweep down
            log.exception("trial %s failed", self.id)
            self._fail(record, gpu.failure(e, on_gpu=record.device != "CPU"))
        record.close(started)
        try:
            record.write(self.dir)
        except OSError as e:  # a full disk: the last record written stays valid
            log.error("trial %s: could not write its record: %s", self.id, e)
            return math.nan
        # Finished either way: a retry of a failed trial starts afresh, not from its last state.
        shutil.rmtree(self.backup, ignore_errors=True)
        value = record.objective.value
        return float(value) if value is not None else math.nan

    def _earlier(self) -> TrialRecord | None:
        """The record an earlier run of this trial left (None: none). One that cannot be read
        (damaged, or from a newer sweeper) is never overwritten: the folder is copied aside to
        ``<sweep>/unreadable/`` and the trial runs again from the start."""
        try:
            return TrialRecord.load(self.dir)
        except FileNotFoundError:
            return None
        except (OSError, RecordError) as e:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            aside = self.dir.parent.parent / UNREADABLE / f"{self.id}-{stamp}"
            shutil.copytree(self.dir, aside)
            for name in (RECORD, "config.yaml", CONFUSION):
                (self.dir / name).unlink(missing_ok=True)
            shutil.rmtree(self.dir / "checkpoints", ignore_errors=True)
            log.error("trial %s: its record cannot be read (%s); the folder is kept as %s and "
                      "the trial runs again", self.id, e, aside)
            return None

    def _skip(self, earlier: TrialRecord) -> str | None:
        """Why this trial need not run again (None: run it, resuming where it stopped)."""
        path = self.dir / "config.yaml"
        change = config_difference(path.read_text(), config_yaml(self.cfg)) if path.exists() \
            else None
        if change:
            return f"ran earlier with a different configuration ({change}); not overwritten"
        return earlier.settled(bool(self.cfg.sweep.retry_failed))

    def _new_record(self, earlier: TrialRecord | None) -> TrialRecord:
        s = self.cfg.sweep
        resumed = training.resumed_epoch(self.backup)
        history = earlier.history[:resumed] if earlier is not None and resumed else []
        if len(history) < resumed:  # a backup the record cannot account for: start afresh
            history = []
        record = TrialRecord(
            sweep=str(s.name), trial_id=self.id, overrides=list(self.overrides),
            hparams=self.hparams, objective=Objective(str(s.metric), str(s.mode)),
            metrics=dict(history[-1]) if history else {}, epochs_completed=len(history),
            tensorboard_run=str(self.tb_run), device=host.device(), gpus=gpu.describe(),
            started_at=now_iso(), history=history, resumed_from_epoch=len(history) or None,
            attempts=(earlier.attempts if earlier else 0) + 1,
            epochs_trained=earlier.epochs_trained if earlier else 0,
            versions=host.versions(), repeat=int(s.repeat),
            seed=int(self.cfg.train.seed) + int(s.repeat), **host.where())
        if self.cfg.tuner.trial is not None:
            record.tuner = {k: self.cfg.tuner[k] for k in ("trial", "bracket", "round")}
        if self.cfg.train.warm_start is not None:
            record.warm_start = {"trial": str(self.cfg.train.warm_start),
                                 "initial_epoch": int(self.cfg.train.initial_epoch)}
        return record

    def _fail(self, record: TrialRecord, error: str) -> None:
        record.fail(error)
        self._end_session(Status.FAILED)

    def _train(self, record: TrialRecord) -> None:
        try:  # whatever launched it: the rules that read several keys hold for this trial too
            checks.cross_checks(self.cfg)
        except ConfigError as e:
            raise TrialFailed(str(e)) from e
        tf = gpu.start_tensorflow()
        import keras

        cfg, t = self.cfg, self.cfg.train
        metric, mode = record.objective.name, record.objective.mode
        # A warm worker's earlier trials leave Keras state behind; Python's GC frees the rest
        # (a forced collection costs a quarter second per trial).
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(seed := int(t.seed) + int(cfg.sweep.repeat))
        gpus = len(tf.config.list_physical_devices("GPU"))
        record.device = host.device(gpus)
        record.gpus = record.gpus if gpus else []  # a CPU build of TensorFlow uses none
        # A trial given several GPUs trains on all of them, as in the MirroredStrategy tutorial.
        strategy = tf.distribute.MirroredStrategy() if gpus > 1 else tf.distribute.get_strategy()
        history = record.history
        fresh = record.resumed_from_epoch is None
        if fresh:  # an earlier, unfinished attempt's events and backup would mislead
            shutil.rmtree(self.tb_run, ignore_errors=True)
            shutil.rmtree(self.backup, ignore_errors=True)
        else:
            log.info("trial %s: resuming after epoch %d", self.id, len(history))
        self._writer = tf.summary.create_file_writer(str(self.tb_run))
        self._write_pb(hparams.session_start_summary(self.hparams, self.group))

        tic = time.time()
        splits = data.load(cfg.dataset, t.validation_split)
        record.timings["load_s"] = round(time.time() - tic, 3)
        training.set_precision(bool(t.mixed_precision), gpus)
        record.mixed_precision = bool(t.mixed_precision)
        with strategy.scope():
            model = models.build(cfg.model, splits.input_shape, splits.num_classes, splits.scale,
                                 cfg.augment)
        tic = time.time()
        if gpus:  # the trial's own peak, not an earlier trial's in this worker
            tf.config.experimental.reset_memory_stats("GPU:0")
        record.cost.update(cost.built(model))
        aims = goals(cfg.sweep, checks.metric_names(t))
        record.timings["cost_s"] = round(time.time() - tic, 3)
        if why := aims.broken(record.cost, [BUILD]):
            raise TrialInfeasible(why)
        checkpoint = self.dir / CHECKPOINT
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if fresh and t.warm_start is not None:
            training.warm_start(model, record, self.dir, t, str(cfg.sweep.name))
        watch = progress(record, self.dir, int(t.epochs),
                         tripwire.chance(splits.val_labels, splits.num_classes))
        steps = training.steps_per_epoch(splits.train_size, int(t.batch_size))
        phases = training.phases(cfg, self.backup)
        if training.resumed_epoch(phases[-1].backup) and len(phases) > 1:
            phases = phases[1:]  # resumed inside the second phase: its backup holds everything
        pruner = pruning(cfg.pruner, record, self.dir.parent, int(t.epochs))  # None: pruner=none
        # A resumed trial is judged first where it stopped: an interruption may have cut its
        # pruning short there, and Keras would train a batch of the next epoch before stopping.
        if pruner is not None and record.resumed_from_epoch and pruner.judge():
            phases = []
        tic, trained_before = time.time(), record.epochs_trained
        record.timings["setup_s"] = round(tic - self._started, 3)  # to the first step
        callbacks: list[Any] = []
        for phase in phases:
            training.set_trainable(model, cfg.model, phase)
            with strategy.scope():
                model.compile(optimizer=training.optimizer(cfg, steps, phase),
                              loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                              jit_compile=training.jit_compile(t.jit_compile))
            record.jit_compile = bool(model.jit_compile)
            # The epoch BackupAndRestore restored stays in Trainer._initial_epoch after fit and
            # beats a later phase's fit(initial_epoch=); nothing public clears it (keras<4).
            model._initial_epoch = None
            start = t.initial_epoch if phase.number == 1 else len(history)
            callbacks = [*metrics.validation(t.metrics, splits),  # first: the others log them
                         *training.callbacks(cfg, phase, watch, checkpoint, history, self.tb_run)]
            if pruner is not None:  # after watch: the other trials see this epoch first
                callbacks.append(pruner)
            # A resumed trial's initial epoch comes from its backup (BackupAndRestore sets it).
            model.fit(**splits.fit_data(t.batch_size, seed, str(t.class_weight)), epochs=phase.end,
                      initial_epoch=start, callbacks=callbacks, verbose=0)
            if watch.nan_epoch is not None:
                raise TrialFailed(f"nan loss at epoch {watch.nan_epoch}")
            if record.pruned is not None:  # stopped: no later phase
                break
        record.timings["fit_s"], best = round(time.time() - tic, 3), best_of(history, metric, mode)
        if best is None or not checkpoint.exists():
            raise TrialFailed(f"no checkpoint: {metric} was never finite")

        tic = time.time()
        kept = next((c for c in callbacks if hasattr(c, "best_weights")), None)  # last phase's
        scores, matrix = evaluate.scores(best_model(model, kept, checkpoint, best), splits)
        record.complete(1 + [h.get(metric) for h in history].index(best), scores)
        record.timings["evaluate_s"] = round(time.time() - tic, 3)
        tic = time.time()
        epochs = max(1, record.epochs_trained - trained_before)
        record.cost.update(cost.trained(model, checkpoint, next(splits.test_batches(
            int(t.batch_size)))[0], record.timings["fit_s"] / epochs, gpus))
        if aims.tflite:
            record.cost.update(cost.tflite(checkpoint, cost.architecture(model)))
        record.timings["cost_s"] = round(record.timings["cost_s"] + time.time() - tic, 3)
        record.infeasible = aims.broken({**record.cost, **record.metrics}, [TRAINED, TFLITE])
        self._log_scores(record, matrix, splits.class_names)
        self._end_session(record.status)
        log.info("trial %s: %s=%.4f at epoch %d, test_accuracy=%.4f", self.id, metric,
                 best, record.best_epoch, scores["test_accuracy"])

    def _log_scores(self, record: TrialRecord, matrix: np.ndarray,
                    names: tuple[str, ...]) -> None:
        """The trial's figures into its TensorBoard run as the leaderboard holds them (each once:
        the dashboard shows a metric's last value) at the best epoch's step; the confusion matrix
        and each class's precision and recall."""
        import tensorflow as tf

        write_atomic(self.dir / CONFUSION, evaluate.confusion_csv(matrix, names))
        record.per_class = metrics.per_class(matrix, names)
        assert record.best_epoch is not None
        step = record.best_epoch - 1  # Keras's TensorBoard callback counts epochs from 0
        with self._writer.as_default():
            for name, value in [*record.metrics.items(), *record.cost.items()]:
                if value is not None:
                    tf.summary.scalar(hparams.metric_tag(name), value, step=step)
            image = evaluate.confusion_image(matrix, names)
            tf.summary.image("test_confusion_matrix", tf.expand_dims(image, 0), step=step)

    def _write_pb(self, pb: Any) -> None:
        import tensorflow as tf

        with self._writer.as_default():
            tf.summary.experimental.write_raw_pb(pb.SerializeToString(), step=0)
        self._writer.flush()

    def _end_session(self, status: Status) -> None:
        writer = getattr(self, "_writer", None)
        if writer is None:  # failed before TensorFlow was up: write without it
            start = hparams.session_start_summary(self.hparams, self.group)
            hparams.write_summaries(self.tb_run, start, hparams.session_end_summary(status.value))
            return
        self._write_pb(hparams.session_end_summary(status.value))
        writer.close()
