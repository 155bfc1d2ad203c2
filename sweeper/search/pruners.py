"""Early stopping in every search: the median rule and asynchronous successive halving (ASHA).

The rules are pure functions of the trials' recorded epochs. A trial asks them after each of its
epochs (a Keras callback, :func:`sweeper.trial.callbacks.pruning`), judged against what the sweep's
other trials have written to ``trials/*/trial.json`` so far, so a decision holds under every
launcher (in-process, local workers, Ray nodes that share the sweep folder) and every sweeper, and
no trial ever waits for another. No TensorFlow here.

- ``median`` follows Optuna's MedianPruner: once a trial has trained ``min_epochs`` epochs, it stops
  when its best value so far is worse than the median of the other trials' values at the same
  epoch. As in Ray Tune's MedianStoppingRule (and unlike Optuna, which waits for completed
  trials) the others are every trial that has reached that epoch, running or finished, and at
  least ``min_trials`` of them must have.
- ``asha`` follows ASHA as Ray Tune's AsyncHyperBand and Optuna's SuccessiveHalvingPruner run it:
  rungs at ``grace_period * reduction_factor**k`` epochs (before the trial's last); a trial that
  reaches a rung goes on only if it is in the top ``max(1, n // reduction_factor)`` of the ``n``
  trials that have reached that rung so far, itself included. A trial alone at a rung goes on.
  Its value at a rung is its best so far (what its checkpoint holds, and what it would rank on).

Ties go the trial's way (only strictly better trials count against it). A value that is not a
finite number is worse than any that is: such a trial is stopped, and such a peer beats no one.
A warm-started trial (``train.warm_start``, Hyperband's survivors) carries the epochs it inherited
as its own history, but as a peer it counts only at the epochs it trained itself, so the trial it
continues is not counted twice.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sweeper.config.keys import identity, key_of
from sweeper.record import Mode, Pruned, TrialRecord


@dataclass(frozen=True)
class Curve:
    """One trial's values of the objective, epoch by epoch (epoch 1 first); ``first`` is the
    first epoch it trained itself (a warm-started trial inherits the ones before)."""

    values: tuple[float, ...]
    first: int = 1

    @classmethod
    def of(cls, record: TrialRecord, metric: str) -> Curve:
        values = tuple(_number(epoch.get(metric)) for epoch in record.history)
        inherited = int((record.warm_start or {}).get("initial_epoch", 0))
        return cls(values, inherited + 1)

    @property
    def epochs(self) -> int:
        return len(self.values)

    def trained(self, epoch: int) -> bool:
        """Whether the trial trained ``epoch`` itself."""
        return self.first <= epoch <= len(self.values)

    def at(self, epoch: int) -> float:
        return self.values[epoch - 1]

    def best(self, mode: str, epoch: int | None = None) -> float:
        """The best finite value of the first ``epoch`` epochs (all: None); NaN when none is."""
        finite = [v for v in self.values[:epoch] if math.isfinite(v)]
        return Mode(mode).best(finite) if finite else math.nan


class Rule(Protocol):
    def judge(self, mine: Curve, others: Sequence[Curve], metric: str, mode: str,
              epochs: int) -> Pruned | None:
        """Whether a trial of ``epochs`` epochs stops after its last recorded epoch (None: it
        goes on), given the curves of the sweep's other trials."""


@dataclass(frozen=True)
class Median:
    """Stop a trial whose best so far is worse than the median of the others at its epoch."""

    min_epochs: int = 2
    min_trials: int = 3

    def judge(self, mine: Curve, others: Sequence[Curve], metric: str, mode: str,
              epochs: int) -> Pruned | None:
        epoch = mine.epochs
        if epoch < self.min_epochs or epoch >= epochs:  # the last epoch: nothing left to save
            return None
        values = [c.at(epoch) for c in others if c.trained(epoch) and math.isfinite(c.at(epoch))]
        if len(values) < self.min_trials:
            return None
        median = statistics.median(values)
        best = mine.best(mode)
        if math.isfinite(best) and not Mode(mode).better(median, best):
            return None
        return Pruned("median", epoch, f"{metric} {_show(best)} {_worse_sign(mode)} median "
                                       f"{_show(median)} at epoch {epoch} of "
                                       f"{_trials(len(values))}")


@dataclass(frozen=True)
class Asha:
    """Asynchronous successive halving: at each rung, only the top 1/reduction_factor go on."""

    grace_period: int = 1
    reduction_factor: int = 4

    def rungs(self, epochs: int) -> list[int]:
        """The epochs of the rungs of a trial of ``epochs`` epochs (those before its last)."""
        rungs, rung = [], self.grace_period
        while rung < epochs:
            rungs.append(rung)
            rung *= self.reduction_factor
        return rungs

    def judge(self, mine: Curve, others: Sequence[Curve], metric: str, mode: str,
              epochs: int) -> Pruned | None:
        epoch = mine.epochs
        rungs = self.rungs(epochs)
        if epoch not in rungs:
            return None
        rung = rungs.index(epoch) + 1
        value = mine.best(mode, epoch)
        peers = [c.best(mode, epoch) for c in others if c.trained(epoch)]
        n = len(peers) + 1
        keep = max(1, n // self.reduction_factor)
        better = Mode(mode).ranked(v for v in peers if math.isfinite(v) and
                                   (not math.isfinite(value) or Mode(mode).better(v, value)))
        if math.isfinite(value) and len(better) < keep:
            return None
        where = f"the top {keep} of {_trials(n)} at rung {rung} (epoch {epoch})"
        if not math.isfinite(value) and len(better) < keep:  # alone, or among the non-finite
            return Pruned("asha", epoch, f"{metric} {_show(value)} at rung {rung} (epoch {epoch})",
                          rung)
        needed = better[keep - 1]
        return Pruned("asha", epoch, f"{metric} {_show(value)} {_worse_sign(mode)} "
                                     f"{_show(needed)}, {where}", rung)


def rule_of(pruner: Any) -> Rule | None:
    """The rule ``pruner`` (the ``pruner`` config node) names; None for ``none``."""
    name = str(pruner.name)
    if name == "median":
        return Median(int(pruner.min_epochs), int(pruner.min_trials))
    if name == "asha":
        return Asha(int(pruner.grace_period), int(pruner.reduction_factor))
    return None


def others(trials_dir: Path, trial_id: str) -> list[TrialRecord]:
    """Every other trial of the sweep whose record can be read, whatever its status: every
    epoch a trial recorded is real (a failed trial's too)."""
    records = []
    for folder in sorted(trials_dir.iterdir()):
        if folder.name == trial_id or not folder.is_dir():
            continue
        record = TrialRecord.read(folder)
        if record is not None:
            records.append(record)
    return records


def configuration(record: TrialRecord) -> tuple[str, ...]:
    """What a trial's repeats (``sweep.repeats``) share: its overrides less the repeat's."""
    return tuple(sorted(o for o in identity(record.overrides) if key_of(o) != "sweep.repeat"))


def mean(curves: Sequence[Curve], epochs: int | None = None) -> Curve:
    """The curve of a configuration: at each epoch, the mean of its repeats that reached it
    with a finite value (NaN where none did); ``epochs`` long (default: the longest)."""
    length = epochs if epochs is not None else max(c.epochs for c in curves)
    values = []
    for epoch in range(1, length + 1):
        got = [c.at(epoch) for c in curves if epoch <= c.epochs and math.isfinite(c.at(epoch))]
        values.append(statistics.fmean(got) if got else math.nan)
    return Curve(tuple(values), min(c.first for c in curves))


def judge(rule: Rule, record: TrialRecord, trials_dir: Path, epochs: int) -> Pruned | None:
    """Whether the trial of ``record`` (of ``epochs`` epochs, its folder in ``trials_dir``) stops
    after the epochs it has recorded, against the records of the sweep's other trials. A
    verdict on an epoch the tripwire marked (:attr:`TrialRecord.mismatch`) says so.

    Repeats of one configuration (``sweep.repeats``) are judged as one: on the mean of those
    that reached the epoch, against the other configurations' means; a repeat stopped stops
    the others at the same epoch, each recording the decision."""
    metric, mode = record.objective.name, record.objective.mode
    mine = configuration(record)
    groups: dict[tuple[tuple[str, ...], int], list[Curve]] = {}
    seen: dict[tuple[tuple[str, ...], int], int] = {}  # (configuration, repeat): trials so far
    siblings = []
    for other in others(trials_dir, record.trial_id):
        config = configuration(other)
        if config == mine and other.repeat != record.repeat:
            siblings.append(other)
            continue
        # Two trials with one configuration and one repeat are two trials (not repeats).
        nth = seen[config, other.repeat] = seen.get((config, other.repeat), -1) + 1
        groups.setdefault((config, nth), []).append(Curve.of(other, metric))
    curve = Curve.of(record, metric)
    for sibling in siblings:
        stopped = sibling.pruned
        if stopped is not None and curve.epochs >= stopped.epoch:
            return Pruned(stopped.rule, curve.epochs, f"{stopped.reason}; its configuration was "
                          f"stopped there (repeat {sibling.repeat})", stopped.rung)
    if siblings:
        curve = mean([curve, *(Curve.of(s, metric) for s in siblings)], curve.epochs)
    verdict = rule.judge(curve, [mean(c) for c in groups.values()], metric, mode, epochs)
    if verdict is not None and siblings:
        verdict.reason += f" (the mean of its configuration's {len(siblings) + 1} repeats)"
    mismatch = record.mismatch
    if verdict is not None and mismatch is not None and mismatch.active(verdict.epoch):
        verdict.reason += f"; judged on an epoch of a {mismatch.message}"
    return verdict


def _worse_sign(mode: str) -> str:
    return "<" if Mode(mode) is Mode.MAX else ">"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else math.nan


def _trials(n: int) -> str:
    return f"{n} trial" if n == 1 else f"{n} trials"


def _show(value: float) -> str:
    return f"{value:.4g}"
