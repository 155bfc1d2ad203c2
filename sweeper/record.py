"""The trial record: ``trial.json``, owned by :class:`TrialRecord`.

Every process that writes or reads a record goes through this type: the trial as it trains, the
launcher when a worker dies, the search when it tells the oracle, the live table, the
leaderboard, promotion and export. The record's fields, its schema version, the reading of
records older versions wrote, atomic writing and the transitions of a trial (an epoch done,
stopped early by the pruner, completed, failed, its worker dead) live here and nowhere else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from sweeper.atomic import write_json

# 2: the status ``pruned`` and the ``pruned`` field (when and why the pruner stopped a trial);
# 3: the status ``infeasible`` and the ``infeasible`` field (sweep.constraints)
SCHEMA = 3
RECORD = "trial.json"
CHECKPOINT = "checkpoints/best.keras"
UNREADABLE = "unreadable"  # <sweep>/unreadable/: copies of trial folders whose record was bad


class Status(str, Enum):
    """Where a trial stands; the value is what trial.json and the leaderboard show."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    #: stopped early by the sweep's pruner, then scored on the test split like a completed trial
    PRUNED = "pruned"
    #: not trained: its model breaks a constraint known once it is built (sweep.constraints)
    INFEASIBLE = "infeasible"

    @property
    def scored(self) -> bool:
        """Trained and scored on the test split (completed, or pruned): it ranks on its best."""
        return self in (Status.COMPLETED, Status.PRUNED)


class Mode(str, Enum):
    """Which way the objective improves (keras-tuner's ``Objective.direction``)."""

    MAX = "max"
    MIN = "min"

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` (keras-tuner's ``better_than``)."""
        return a > b if self is Mode.MAX else a < b

    def ranked(self, values: Iterable[float]) -> list[float]:
        """``values`` best first (finite numbers: NaN has no place in the order)."""
        return sorted(values, reverse=self is Mode.MAX)

    def best(self, values: Iterable[float]) -> float:
        """The best of ``values`` (not empty)."""
        return self.ranked(values)[0]


class RecordError(ValueError):
    """A trial.json that no sweeper wrote, or that a newer sweeper wrote."""


@dataclass
class Objective:
    """The metric trials are ranked by, its direction, and this trial's best value of it."""

    name: str
    mode: str
    value: float | None = None


@dataclass
class Pruned:
    """Why the sweep's pruner stopped a trial: its rule, the epoch (and ASHA's rung, counted from
    1) it stopped after, and the reason in words."""

    rule: str
    epoch: int
    reason: str
    rung: int | None = None


@dataclass
class Mismatch:
    """The tripwire (:mod:`sweeper.trial.tripwire`): from ``first_epoch`` to ``last_epoch``
    training accuracy was far above validation accuracy and validation sat at ``chance``, so
    the model in inference mode (what validation, test, export and every judge read) is not the
    model that trains. The figures are those of ``last_epoch``; ``message`` says it in one line
    with the likely causes."""

    first_epoch: int
    last_epoch: int
    accuracy: float
    val_accuracy: float
    chance: float
    message: str

    def active(self, epoch: int) -> bool:
        """Whether ``epoch`` is one of the mismatched epochs."""
        return self.first_epoch <= epoch <= self.last_epoch


@dataclass
class TrialRecord:
    """What ``trial.json`` holds. Fields after ``versions`` are optional in the file."""

    sweep: str
    trial_id: str
    objective: Objective
    status: Status = Status.RUNNING
    overrides: list[str] = field(default_factory=list)
    hparams: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    best_epoch: int | None = None
    epochs_completed: int = 0
    checkpoint: str = CHECKPOINT
    tensorboard_run: str = ""
    device: str = "CPU"
    gpus: list[dict[str, Any]] = field(default_factory=list)  # index, name, uuid, memory limit
    slot: str = "local"
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    error: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_epoch: int | None = None
    attempts: int = 1
    epochs_trained: int = 0
    retry_pending: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    pid: int | None = None
    host: str | None = None
    node: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    mixed_precision: bool = False  # trained under Keras's mixed_float16 policy
    jit_compile: bool | None = None  # the train step compiled with XLA (as Keras resolved it)
    tuner: dict[str, Any] | None = None  # keras-tuner's trial, bracket and round
    warm_start: dict[str, Any] | None = None  # the trial this one continues, and from when
    # GPU utilisation and peak memory while it ran, sampled by the sweep process (pool launcher)
    gpu_usage: dict[str, Any] | None = None
    pruned: Pruned | None = None  # the pruner stopped it early: when and why
    mismatch: Mismatch | None = None  # the tripwire fired: training far above a chance validation
    repeat: int = 0  # which training of its configuration (sweep.repeats) this trial is
    seed: int | None = None  # the seed it trained with: train.seed + repeat
    cost: dict[str, Any] = field(default_factory=dict)  # params: the model's parameter count
    per_class: dict[str, Any] = field(default_factory=dict)  # test precision, recall by class
    infeasible: str | None = None  # the constraint (sweep.constraints) it breaks, and its value
    schema: int = SCHEMA

    # -- reading and writing ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any) -> TrialRecord:
        """A record from parsed JSON; raises :class:`RecordError` on anything a trial would not
        have written. Records of earlier schema versions are read as this version: each lacks
        only what later ones added (statuses and their optional fields), so its records
        read as they are."""
        try:
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            schema = data.get("schema", 1)
            if not isinstance(schema, int) or schema > SCHEMA:
                raise ValueError(f"schema {schema!r}: written by a newer sweeper (this one "
                                 f"reads up to {SCHEMA})")
            objective = Objective(**data["objective"])
            if objective.mode not in (Mode.MAX, Mode.MIN):
                raise ValueError(f"objective mode {objective.mode!r}, not max or min")
            known = {f.name for f in fields(cls)}
            values = {k: v for k, v in data.items() if k in known}
            values.update(objective=objective, status=Status(data["status"]), schema=SCHEMA)
            if data.get("pruned") is not None:
                values["pruned"] = Pruned(**data["pruned"])
            if data.get("mismatch") is not None:
                values["mismatch"] = Mismatch(**data["mismatch"])
            record = cls(**values)
            for name in ("overrides", "history", "gpus"):
                if not isinstance(getattr(record, name), list):
                    raise TypeError(f"{name}: not a list")
            for name in ("hparams", "metrics", "timings", "versions"):
                if not isinstance(getattr(record, name), dict):
                    raise TypeError(f"{name}: not an object")
        except (KeyError, TypeError, ValueError) as e:
            raise RecordError(f"{type(e).__name__}: {e}") from e
        return record

    @classmethod
    def load(cls, trial_dir: Path) -> TrialRecord:
        """The record of ``trial_dir``; raises OSError when there is none, :class:`RecordError`
        when it cannot be read."""
        text = (trial_dir / RECORD).read_text()
        try:
            data = json.loads(text)
        except ValueError as e:
            raise RecordError(f"{type(e).__name__}: {e}") from e
        return cls.from_dict(data)

    @classmethod
    def read(cls, trial_dir: Path) -> TrialRecord | None:
        """The record of ``trial_dir``, or None when there is none or it cannot be read."""
        try:
            return cls.load(trial_dir)
        except (OSError, RecordError):
            return None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["schema"] = SCHEMA
        for optional in ("tuner", "warm_start", "gpu_usage", "pruned", "mismatch", "infeasible"):
            if data[optional] is None:
                del data[optional]
        return data

    def write(self, trial_dir: Path) -> None:
        """Write the record atomically (NaN and infinities become null)."""
        write_json(trial_dir / RECORD, self.to_dict())

    # -- transitions --------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status is not Status.RUNNING

    def settled(self, retry_failed: bool) -> str | None:
        """Why a run of the sweep need not run this trial again (None: run it, resuming where
        it stopped). A failure the launcher recorded as its worker's death is owed a retry."""
        if self.status.scored:  # a pruned trial keeps the pruner's decision
            return f"{self.status.value} earlier, skipped"
        if self.status is Status.FAILED and not (retry_failed or self.retry_pending):
            return "failed earlier, skipped (sweep.retry_failed=true runs it again)"
        return None

    def epoch_done(self, values: dict[str, float]) -> None:
        """One more epoch trained; ``values`` are its metrics (Keras's logs)."""
        self.history.append(values)
        self.epochs_completed = len(self.history)
        self.epochs_trained += 1
        self.metrics = values

    def prune(self, why: Pruned) -> None:
        """The pruner stops the trial after its last epoch; it is then scored as usual."""
        self.pruned = why

    def complete(self, best_epoch: int, scores: dict[str, float]) -> None:
        """Trained and scored: the best epoch's metrics and the test scores are the trial's."""
        self.best_epoch = best_epoch
        self.metrics = {**self.history[best_epoch - 1], **scores}
        self.objective.value = self.history[best_epoch - 1][self.objective.name]
        self.status = Status.PRUNED if self.pruned is not None else Status.COMPLETED

    def fail(self, error: str) -> None:
        self.status, self.error = Status.FAILED, error

    def rule_out(self, why: str) -> None:
        """Not trained: it breaks a constraint known before training (a re-run checks again)."""
        self.status, self.infeasible = Status.INFEASIBLE, why

    def worker_died(self, cause: str, will_retry: bool) -> None:
        """The process running the trial died; ``retry_pending`` tells a later run of the sweep
        that a retry is still owed (the sweep may be interrupted before it happens)."""
        self.fail(cause)
        self.finished_at = now_iso()
        self.retry_pending = will_retry

    def owe_retry(self) -> None:
        """The launcher runs this failed trial again (out of memory on a shared GPU: alone);
        should the sweep stop first, its next run retries the trial too."""
        self.retry_pending = True

    def close(self, started: float) -> None:
        """The trial ended, either way, at this moment; it began at ``started`` (epoch s)."""
        self.finished_at = now_iso()
        self.duration_s = round(time.time() - started, 3)


def now_iso() -> str:
    """Current time, ISO-8601 with time zone."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds")

