"""One trial: seed, load, build, fit, evaluate, checkpoint, log to TensorBoard, record.

Everything that makes a trial a trial lives here, so it holds under every Hydra launcher.
TensorFlow is imported only when a trial actually trains.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from sweeper import data, hparams, models
from sweeper.record import RECORD, Status, now_iso, read_record, write_atomic, write_json

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoints/best.keras"
CONFUSION = "confusion_matrix.csv"
EVAL_BATCH = 1024


class TrialFailed(RuntimeError):
    """This trial cannot finish (NaN loss, no checkpoint); the sweep goes on."""


def run(cfg: DictConfig) -> float:
    """Run the trial of the current Hydra job; return its objective (NaN when it failed)."""
    hc = HydraConfig.get()
    return Trial(cfg, Path(hc.runtime.output_dir), list(hc.overrides.task)).run()


def config_yaml(cfg: DictConfig) -> str:
    """The resolved configuration a trial runs with (what ``config.yaml`` holds)."""
    return OmegaConf.to_yaml(cfg, resolve=True)


class Trial:
    """A trial of ``cfg`` whose folder is ``trial_dir``."""

    def __init__(self, cfg: DictConfig, trial_dir: Path, overrides: list[str]) -> None:
        self.cfg = cfg
        self.dir = trial_dir
        self.id = trial_dir.name
        self.overrides = overrides
        self.tb_run = Path(cfg.paths.logs) / cfg.sweep.name / self.id
        self.hparams = hparams.trial_hparams(cfg, overrides)

    def run(self) -> float:
        done = read_record(self.dir)
        if done and done.get("status") == Status.COMPLETED and self._same_config():
            log.info("trial %s: completed earlier, skipped", self.id)
            return float(done["objective"]["value"])
        record = self._new_record()
        write_atomic(self.dir / "config.yaml", config_yaml(self.cfg))
        write_json(self.dir / RECORD, record)
        try:
            self._train(record)
        except TrialFailed as e:
            log.error("trial %s failed: %s", self.id, e)
            record.update(status=Status.FAILED.value, error=str(e))
            self._end_session(Status.FAILED)
        except Exception as e:  # a failing trial never takes the sweep down
            log.exception("trial %s failed", self.id)
            record.update(status=Status.FAILED.value, error=f"{type(e).__name__}: {e}")
            self._end_session(Status.FAILED)
        record["finished_at"] = now_iso()
        record["duration_s"] = round(time.time() - self._t0, 3)
        write_json(self.dir / RECORD, record)
        value = record["objective"]["value"]
        return float(value) if value is not None else math.nan

    def _same_config(self) -> bool:
        path = self.dir / "config.yaml"
        return path.exists() and path.read_text() == config_yaml(self.cfg)

    def _new_record(self) -> dict[str, Any]:
        self._t0 = time.time()
        s = self.cfg.sweep
        return {
            "schema": 1, "sweep": s.name, "trial_id": self.id, "status": Status.RUNNING.value,
            "overrides": self.overrides, "hparams": self.hparams,
            "objective": {"name": s.metric, "mode": s.mode, "value": None},
            "metrics": {}, "best_epoch": None, "epochs_completed": 0, "checkpoint": CHECKPOINT,
            "tensorboard_run": str(self.tb_run), "device": _device(),
            "slot": os.environ.get("SWEEPER_SLOT", "local"),
            "started_at": now_iso(), "finished_at": None, "duration_s": None, "error": None,
            "timings": {}, "pid": os.getpid(), "versions": _versions(),
        }

    def _train(self, record: dict[str, Any]) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        import tensorflow as tf

        cfg, t = self.cfg, self.cfg.train
        # A warm worker's earlier trials leave Keras state behind; Python's GC frees the rest
        # (a forced collection costs a quarter second per trial).
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(t.seed)
        gpus = len(tf.config.list_physical_devices("GPU"))
        record["device"] = _device(gpus)
        # A trial given several GPUs trains on all of them, as in the MirroredStrategy tutorial.
        strategy = tf.distribute.MirroredStrategy() if gpus > 1 else tf.distribute.get_strategy()
        shutil.rmtree(self.tb_run, ignore_errors=True)  # an earlier, unfinished attempt's events
        self._writer = tf.summary.create_file_writer(str(self.tb_run))
        self._write_pb(hparams.session_start_summary(self.hparams, self.id))

        tic = time.time()
        splits = data.load(cfg.dataset, t.validation_split)
        record["timings"]["load_s"] = round(time.time() - tic, 3)
        with strategy.scope():
            model = models.build(cfg.model, splits.input_shape, splits.num_classes, splits.scale)
            model.compile(optimizer=models.optimizer(cfg.optimizer),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])

        checkpoint = self.dir / CHECKPOINT
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        progress = _progress(self, record)
        callbacks: list[keras.callbacks.Callback] = [
            keras.callbacks.ModelCheckpoint(str(checkpoint), monitor=cfg.sweep.metric,
                                            mode=cfg.sweep.mode, save_best_only=True),
            keras.callbacks.TensorBoard(log_dir=str(self.tb_run), write_graph=False),
            keras.callbacks.TerminateOnNaN(),
            progress,
        ]
        if t.early_stopping_patience:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=cfg.sweep.metric, mode=cfg.sweep.mode,
                patience=t.early_stopping_patience))
        tic = time.time()
        history = model.fit(splits.x_train, splits.y_train, epochs=t.epochs,
                            batch_size=t.batch_size, validation_data=(splits.x_val, splits.y_val),
                            callbacks=callbacks, verbose=0).history
        record["timings"]["fit_s"] = round(time.time() - tic, 3)
        if progress.nan_epoch is not None:
            raise TrialFailed(f"nan loss at epoch {progress.nan_epoch}")
        if not checkpoint.exists():
            raise TrialFailed(f"no checkpoint: {cfg.sweep.metric} was never finite")

        tic = time.time()
        scores = self._evaluate(keras.models.load_model(checkpoint), splits)
        record["timings"]["evaluate_s"] = round(time.time() - tic, 3)
        series = history[cfg.sweep.metric]
        pick = np.nanargmax if cfg.sweep.mode == "max" else np.nanargmin
        best = int(pick(series))
        record["best_epoch"] = best + 1
        record["metrics"] = {**{k: float(v[best]) for k, v in history.items()}, **scores}
        record["objective"]["value"] = float(series[best])
        record["status"] = Status.COMPLETED.value
        self._end_session(Status.COMPLETED)
        log.info("trial %s: %s=%.4f at epoch %d, test_accuracy=%.4f", self.id, cfg.sweep.metric,
                 series[best], best + 1, scores["test_accuracy"])

    def _evaluate(self, model: Any, splits: data.Splits) -> dict[str, float]:
        """Score the best checkpoint on the test split; log the scores and a confusion matrix."""
        import keras
        import tensorflow as tf
        from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

        # One inference pass gives every score (Model.evaluate plus predict would take two,
        # each tracing a new function for this model).
        x, y = splits.x_test, splits.y_test
        probabilities = np.concatenate([np.asarray(model(x[i:i + EVAL_BATCH], training=False))
                                        for i in range(0, len(x), EVAL_BATCH)])
        loss = np.mean(keras.losses.sparse_categorical_crossentropy(y, probabilities))
        predicted = np.argmax(probabilities, axis=1)
        accuracy = np.mean(predicted == y)
        precision, recall, f1, _ = precision_recall_fscore_support(
            y, predicted, average="macro", zero_division=0)
        # float32, as TensorBoard stores scalars: the record and the dashboard show one number.
        scores = {name: float(np.float32(value)) for name, value in (
            ("test_loss", loss), ("test_accuracy", accuracy), ("test_precision_macro", precision),
            ("test_recall_macro", recall), ("test_f1_macro", f1))}
        matrix = confusion_matrix(splits.y_test, predicted, labels=range(splits.num_classes))
        header = "true\\predicted," + ",".join(splits.class_names)
        rows = [f"{name}," + ",".join(map(str, row))
                for name, row in zip(splits.class_names, matrix, strict=True)]
        write_atomic(self.dir / CONFUSION, "\n".join([header, *rows]) + "\n")
        step = int(self.cfg.train.epochs)
        with self._writer.as_default():
            for name, value in scores.items():
                tf.summary.scalar(name, value, step=step)
            tf.summary.image("test_confusion_matrix", _confusion_image(matrix, splits.class_names),
                             step=step)
        return scores

    def _write_pb(self, pb: Any) -> None:
        import tensorflow as tf

        with self._writer.as_default():
            tf.summary.experimental.write_raw_pb(pb.SerializeToString(), step=0)
        self._writer.flush()

    def _end_session(self, status: Status) -> None:
        writer = getattr(self, "_writer", None)
        if writer is None:  # failed before TensorFlow was up: write without it
            start = hparams.session_start_summary(self.hparams, self.id)
            hparams.write_summaries(self.tb_run, start, hparams.session_end_summary(status.value))
            return
        self._write_pb(hparams.session_end_summary(status.value))
        writer.close()


def _progress(trial: Trial, record: dict[str, Any]) -> Any:
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
            record["epochs_completed"] = epoch + 1
            record["metrics"] = values
            write_json(trial.dir / RECORD, record)
            metric = trial.cfg.sweep.metric
            log.info("trial %s: epoch %d/%d %s=%.4f", trial.id, epoch + 1, trial.cfg.train.epochs,
                     metric, values.get(metric, math.nan))

    return Progress()


def _confusion_image(matrix: np.ndarray, names: tuple[str, ...]) -> Any:
    """The confusion matrix as a [1, H, W, 4] uint8 image."""
    import io

    import tensorflow as tf
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    size = max(4.0, 0.4 * len(names) + 2)
    fig = Figure(figsize=(size, size))
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true")
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    if len(names) <= 20:  # counts in the cells while they stay readable
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > matrix.max() / 2 else "black")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=64, bbox_inches="tight")
    return tf.expand_dims(tf.image.decode_png(buf.getvalue(), channels=4), 0)


def _device(gpus: int | None = None) -> str:
    """Where this trial trains: ``GPU:<physical ids>`` or ``CPU``."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpus == 0 or visible in ("-1", ""):
        return "CPU"
    if visible:
        return "GPU:" + visible
    return "CPU" if gpus is None else "GPU:" + ",".join(map(str, range(gpus)))


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("tensorflow", "keras", "sweeper"):
        try:
            out[pkg] = version(pkg)
        except Exception:
            out[pkg] = "unknown"
    return out


def warm_up(cfg: DictConfig) -> None:
    """Pay a worker's start-up costs before its first trial: imports and the dataset."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: F401
    import matplotlib.figure  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import tensorflow  # noqa: F401

    try:
        data.load(cfg.dataset, cfg.train.validation_split)
    except Exception as e:  # the trial that needs the data reports it properly
        log.warning("warm-up could not load the dataset: %s", e)
