"""The search behind ``hydra/sweeper=tuner``: keras-tuner's oracles over Hydra's sweep syntax.

Hydra's sweep syntax (the syntax the Optuna sweeper reads) becomes keras-tuner HyperParameters:

==========================================  ===========================================
``adam,sgd`` or ``choice(adam,sgd)``        ``Choice``
``range(16,129,16)``                        ``Int`` (or ``Float``) with that step
``interval(0.0,0.5)``                       ``Float`` (``Int`` when both ends are integers)
``tag(log, interval(1e-4,1e-1))``           ``Float`` sampled on a log scale
a plain value                               ``Fixed``
==========================================  ===========================================

An oracle (random, Bayesian, Hyperband, grid) is driven from outside a Tuner: ask it for as many
trials as the launcher has slots, launch them as one batch through the launcher, tell it each
trial's objective, repeat. The oracle keeps its state in ``<sweep>/tuner/``, so re-running the
command continues the search. This module imports keras-tuner (and with it TensorFlow) only when a
search starts; the sweep process runs no TensorFlow op.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
)
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf

from sweeper import hparams
from sweeper.devices import RAY_LAUNCHERS, plan_slots, ray_room
from sweeper.overrides import sweep_arguments
from sweeper.record import RECORD, read_record, write_atomic

log = logging.getLogger(__name__)

ALGORITHMS = ("random", "bayesian", "hyperband", "grid")
STATE_DIR = "tuner"  # keras-tuner's project folder inside the sweep folder
SPEC = "search.json"  # what the search was started with; a re-run must match it
IDS = "trials.json"  # keras-tuner trial id -> the Hydra trial folder that ran it
JOBS = "jobs.json"  # keras-tuner trial id -> its overrides (a retried trial reuses them)
DEFAULT_MAX_TRIALS = 10  # random and Bayesian search without hydra.sweeper.max_trials
# Keys Hyperband sets on each of its trials.
HYPERBAND_KEYS = ("train.epochs", "train.initial_epoch", "train.warm_start")
STOPPED_BY_FAILURES = False  # set when a search in this process gave up (the exit status says so)


class SearchError(ValueError):
    """A search space or setting the tuner sweeper cannot use; the message is one line."""


@dataclass(frozen=True)
class Param:
    """One dimension of the search space, as written on the command line."""

    name: str  # the config key or group (``model.units``, ``optimizer``)
    key: str  # the override's key as written (``+model.extra``)
    kind: str  # choice, int, float or fixed
    values: tuple[Any, ...] = ()  # choice and fixed
    low: float | None = None  # int and float
    high: float | None = None
    step: float | None = None
    sampling: str = "linear"

    def register(self, hp: Any) -> None:
        """Declare this dimension in keras-tuner's ``HyperParameters`` ``hp``."""
        if self.kind == "choice":
            hp.Choice(self.name, list(self.values), ordered=None)
        elif self.kind == "fixed":
            hp.Fixed(self.name, self.values[0])
        elif self.kind == "int":
            assert self.low is not None and self.high is not None
            hp.Int(self.name, int(self.low), int(self.high),
                   step=None if self.step is None else int(self.step), sampling=self.sampling)
        else:
            assert self.low is not None and self.high is not None
            hp.Float(self.name, float(self.low), float(self.high), step=self.step,
                     sampling=self.sampling)

    def domain(self) -> hparams.Domain:
        """The HParams dashboard's domain: the values, or an interval."""
        if self.kind in ("choice", "fixed"):
            return list(self.values)
        assert self.low is not None and self.high is not None
        if self.step is not None and self.sampling == "linear":
            count = int(round((self.high - self.low) / self.step)) + 1
            if count <= 100:
                return [_tidy(self.low + i * self.step, self.kind) for i in range(count)]
        return hparams.Interval(float(self.low), float(self.high))

    def corners(self) -> list[Any]:
        """Values that bound this dimension: every choice, or both ends of a range."""
        if self.kind in ("choice", "fixed"):
            return list(self.values)
        return [_tidy(self.low, self.kind), _tidy(self.high, self.kind)]


@dataclass
class Space:
    """A search space: the dimensions, and the command line's other overrides, kept verbatim."""

    params: list[Param] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)

    def hyperparameters(self) -> Any:
        kt = keras_tuner()

        hp = kt.HyperParameters()
        for p in self.params:
            p.register(hp)
        return hp

    def swept(self) -> list[Param]:
        return [p for p in self.params if p.kind != "fixed"]


def _tidy(value: Any, kind: str) -> Any:
    return int(value) if kind == "int" else round(float(value), 12)


def parse_space(overrides: Sequence[Override], groups: Sequence[str] = (),
                config: DictConfig | None = None) -> Space:
    """The search space of these overrides (``hydra.sweeper.params`` first, then the command
    line; a key given twice takes its last value). ``groups`` are the config groups, which only
    take a choice of their options. An interval over a key that ``config`` holds an integer in
    (``model.units``) searches integers, as ``tag(int, interval(...))`` does."""
    last: dict[str, Override] = {}
    for o in overrides:
        if not o.is_hydra_override():  # hydra/launcher=..., hydra.sweeper.*: not the trial's
            last[o.get_key_element()] = o
    space = Space()
    for o in last.values():
        if o.is_sweep_override():
            current = OmegaConf.select(config, o.key_or_group, default=None) \
                if config is not None else None
            whole = isinstance(current, int) and not isinstance(current, bool)
            space.params.append(_param(o, groups, whole))
        else:
            space.fixed.append(str(o.input_line))
            value = o.value()
            bookkeeping = o.key_or_group.startswith(hparams.BOOKKEEPING)
            if isinstance(value, bool | int | float | str) and not bookkeeping and \
                    not o.is_delete() and o.package is None:
                space.params.append(Param(o.key_or_group, o.get_key_element(), "fixed", (value,)))
    if not space.swept():
        raise SearchError("the search space is empty: sweep at least one key, e.g. "
                          "'model.units=range(16,129,16)' or 'optimizer=choice(adam,sgd)'")
    return space


def _param(o: Override, groups: Sequence[str], whole: bool = False) -> Param:
    text = str(o.input_line)
    name, key, value = o.key_or_group, o.get_key_element(), o.value()
    if o.is_delete():
        raise SearchError(f"{text}: a deletion cannot be searched")
    if name in groups and not isinstance(value, ChoiceSweep):
        raise SearchError(f"{text}: the config group {name} takes a choice of its options, "
                          f"e.g. {name}=choice(a,b)")
    tags = set(getattr(value, "tags", ()) or ())
    if tags - {"log", "int"}:
        raise SearchError(f"{text}: unknown tag {sorted(tags - {'log', 'int'})[0]!r} "
                          "(the tuner knows log and int)")
    if isinstance(value, ChoiceSweep):
        values = list(value.list)
        if not values:
            raise SearchError(f"{text}: an empty choice")
        if not all(isinstance(v, bool | int | float | str) for v in values):
            raise SearchError(f"{text}: choice values must be numbers, strings or booleans")
        kinds = {bool if isinstance(v, bool) else str if isinstance(v, str) else float
                 for v in values}
        if len(kinds) > 1:
            raise SearchError(f"{text}: choice values must share one type")
        if kinds == {float} and not all(isinstance(v, int) for v in values):
            values = [float(v) for v in values if isinstance(v, int | float)]
        if len(set(values)) < len(values):
            raise SearchError(f"{text}: a value is repeated")
        return Param(name, key, "choice", tuple(values))
    if isinstance(value, RangeSweep):
        if "log" in tags:
            raise SearchError(f"{text}: log sampling needs tag(log, interval(low, high))")
        numbers: list[float] = [v for v in o.sweep_iterator() if isinstance(v, int | float)]
        if not numbers:
            raise SearchError(f"{text}: an empty range")
        kind = "int" if all(isinstance(v, int) for v in numbers) else "float"
        low, high = min(numbers), max(numbers)
        step = abs(float(value.step)) if value.step is not None else 1.0
        return Param(name, key, kind, low=low, high=high, step=step if low != high else None)
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None
        start, end = value.start, value.end
        if not start < end:
            raise SearchError(f"{text}: an interval needs low < high")
        as_int = "int" in tags or whole
        sampling = "log" if "log" in tags else "linear"
        if sampling == "log" and start <= 0:
            raise SearchError(f"{text}: log sampling needs a low end above 0")
        if as_int:
            if not (float(start).is_integer() and float(end).is_integer()):
                raise SearchError(f"{text}: an int interval needs whole-number ends")
            return Param(name, key, "int", low=int(start), high=int(end), sampling=sampling)
        return Param(name, key, "float", low=float(start), high=float(end), sampling=sampling)
    raise SearchError(f"{text}: the tuner cannot search this; use choice(...), range(...), "
                      "interval(...) or tag(log, interval(...))")


@dataclass
class Settings:
    """``hydra.sweeper`` of ``hydra/sweeper=tuner``, checked."""

    algorithm: str = "random"
    max_trials: int | None = None
    seed: int = 0
    max_failures: int = 3
    batch_size: int | None = None
    hyperband: dict[str, Any] = field(default_factory=dict)
    bayesian: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, sweeper_cfg: DictConfig) -> Settings:
        raw: Any = OmegaConf.to_container(sweeper_cfg, resolve=True)
        s = cls(**{k: raw[k] for k in ("algorithm", "max_trials", "seed", "max_failures",
                                       "batch_size", "hyperband", "bayesian") if k in raw})
        if s.algorithm not in ALGORITHMS:
            raise SearchError(f"hydra.sweeper.algorithm={s.algorithm}: choose one of "
                              f"{', '.join(ALGORITHMS)}")
        for key, value, least in (("max_trials", s.max_trials, 1),
                                  ("max_failures", s.max_failures, 0),
                                  ("batch_size", s.batch_size, 1),
                                  ("hyperband.max_epochs", s.hyperband.get("max_epochs"), 1),
                                  ("hyperband.factor", s.hyperband.get("factor"), 2),
                                  ("hyperband.iterations", s.hyperband.get("iterations"), 1)):
            if value is not None and (not isinstance(value, int) or value < least):
                raise SearchError(f"hydra.sweeper.{key}={value}: must be an integer >= {least}")
        return s

    def hyperband_epochs(self) -> list[int]:
        """Every train.epochs a Hyperband trial can get (keras-tuner's schedule)."""
        top, factor = int(self.hyperband["max_epochs"]), int(self.hyperband["factor"])
        brackets = int(math.log(top, factor) + 1e-9) + 1
        return sorted({math.ceil(top / factor ** k) for k in range(brackets)})


def is_tuner(sweeper_cfg: DictConfig) -> bool:
    return str(sweeper_cfg.get("_target_", "")).endswith(".TunerSweeper")


def space_of(config: DictConfig, arguments: Sequence[str], groups: Sequence[str]) -> Space:
    """The search space of a sweep: ``hydra.sweeper.params`` and the command line, checked
    against the sweeper's settings."""
    settings = Settings.of(config.hydra.sweeper)
    space = parse_space(sweep_arguments(config.hydra.sweeper, list(arguments)), groups, config)
    if settings.algorithm == "hyperband":
        taken = [p.name for p in space.params if p.name in HYPERBAND_KEYS]
        if taken:
            raise SearchError(f"{taken[0]}: Hyperband sets it for each trial; set "
                              "hydra.sweeper.hyperband.max_epochs instead")
    return space


def preflight_jobs(config: DictConfig, arguments: Sequence[str],
                   groups: Sequence[str]) -> list[list[str]]:
    """Overrides of trials that span the space (every choice, both ends of every range), for the
    preflight to compose and check before anything runs."""
    settings = Settings.of(config.hydra.sweeper)
    space = space_of(config, arguments, groups)
    check_earlier(config, settings, space)
    swept = space.swept()
    first = [f"{p.key}={_format(p.corners()[0])}" for p in swept]
    extra = [f"train.epochs={max(settings.hyperband_epochs())}"] \
        if settings.algorithm == "hyperband" else []
    jobs = []
    for i, p in enumerate(swept):
        for value in p.corners():
            jobs.append(space.fixed + first[:i] + [f"{p.key}={_format(value)}"] + first[i + 1:]
                        + extra)
    return jobs


def domains(config: DictConfig) -> dict[str, hparams.Domain]:
    """The HParams dashboard's domain of every hyperparameter a trial of this search records."""
    settings = Settings.of(config.hydra.sweeper)
    arguments = list(config.hydra.overrides.task)
    space = space_of(config, arguments, ())
    out: dict[str, hparams.Domain] = {
        k: [v] for k, v in hparams.trial_hparams(config, space.fixed).items()}
    for p in space.swept():
        out[p.name] = p.domain()
    if settings.algorithm == "hyperband":
        out["train.epochs"] = list(settings.hyperband_epochs())
    return out


def _format(value: Any) -> str:
    """A value as a Hydra override writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):  # 6 significant digits: 0.113353, not 0.11335292969113
        return repr(float(f"{value:.6g}"))
    return str(value)


def spec(config: DictConfig, settings: Settings, space: Space) -> dict[str, Any]:
    """What makes two runs the same search (checked when a sweep is re-run)."""
    s = settings
    # max_trials is left out: raising it continues a finished search
    return {"algorithm": s.algorithm, "seed": s.seed,
            "hyperband": s.hyperband if s.algorithm == "hyperband" else None,
            "objective": [str(config.sweep.metric), str(config.sweep.mode)],
            "space": [asdict(p) for p in space.params],
            # where outputs go and how the sweep is named do not change what a trial computes
            "fixed": sorted(line for line in space.fixed
                            if not line.lstrip("+~").startswith(("sweep.", "paths.")))}


def check_earlier(config: DictConfig, settings: Settings, space: Space) -> bool:
    """True when an earlier run of this search left its state; refuses a different search."""
    state_dir = Path(str(config.hydra.sweep.dir)) / STATE_DIR
    path = state_dir / SPEC
    if not path.is_file():
        return False
    saved = json.loads(path.read_text())
    mine = json.loads(json.dumps(spec(config, settings, space)))
    for key, value in mine.items():
        if saved.get(key) != value:
            raise SearchError(f"sweep {config.sweep.name} was searched with another {key} "
                              f"({_short(saved.get(key))} -> {_short(value)}); use another "
                              f"sweep.name, or delete {state_dir}")
    return True


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


class Search:
    """The ask → launch → tell loop of one sweep over a keras-tuner oracle."""

    def __init__(self, config: DictConfig, arguments: Sequence[str], groups: Sequence[str],
                 launcher: Any, validate: Callable[[list[list[str]]], None] | None = None) -> None:
        self.config = config
        self.validate = validate
        self.settings = Settings.of(config.hydra.sweeper)
        self.space = space_of(config, arguments, groups)
        self.launcher = launcher
        self.slots = self.settings.batch_size or slots_of(config.hydra.launcher)
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.state_dir = self.sweep_dir / STATE_DIR
        self.metric, self.mode = str(config.sweep.metric), str(config.sweep.mode)
        self.ids: dict[str, str] = {}  # keras-tuner trial id -> Hydra trial folder name
        self.jobs: dict[str, list[str]] = {}  # keras-tuner trial id -> its overrides
        self.failures = 0
        self.stopped_by_failures = False

    def check_resume(self) -> bool:
        return check_earlier(self.config, self.settings, self.space)

    def oracle(self, resume: bool) -> Any:
        kt = keras_tuner()

        s = self.settings
        common: dict[str, Any] = dict(
            objective=kt.Objective(self.metric, direction=self.mode),
            hyperparameters=self.space.hyperparameters(), seed=s.seed or None,
            allow_new_entries=False, tune_new_entries=False,
            # Failures are counted here, against hydra.sweeper.max_failures.
            max_consecutive_failed_trials=None)
        if s.algorithm == "hyperband":
            hb = s.hyperband
            oracle = kt.oracles.HyperbandOracle(
                max_epochs=hb["max_epochs"], factor=hb["factor"],
                hyperband_iterations=hb["iterations"], **common)
            oracle.max_trials = s.max_trials  # None: the whole Hyperband schedule
        elif s.algorithm == "bayesian":
            by = s.bayesian
            oracle = kt.oracles.BayesianOptimizationOracle(
                max_trials=s.max_trials or DEFAULT_MAX_TRIALS,
                num_initial_points=by.get("num_initial_points"), alpha=by.get("alpha", 1e-4),
                beta=by.get("beta", 2.6), **common)
        elif s.algorithm == "grid":
            oracle = kt.oracles.GridSearchOracle(max_trials=s.max_trials, **common)
        else:
            oracle = kt.oracles.RandomSearchOracle(
                max_trials=s.max_trials or DEFAULT_MAX_TRIALS, **common)
        oracle.verbose = 0  # the launcher shows progress
        _write_atomically(oracle)
        oracle._set_project_dir(str(self.sweep_dir), STATE_DIR)
        if resume:
            try:
                oracle.reload()
            except Exception as e:
                raise SearchError(f"{self.state_dir}: the search's saved state is unreadable "
                                  f"({type(e).__name__}: {e})") from e
            for name, attribute in ((IDS, "ids"), (JOBS, "jobs")):
                path = self.state_dir / name
                setattr(self, attribute, json.loads(path.read_text()) if path.is_file() else {})
            self.failures = sum(t.status == "FAILED" for t in oracle.trials.values())
        write_atomic(self.state_dir / SPEC,
                     json.dumps(spec(self.config, s, self.space), indent=1) + "\n")
        return oracle

    def overrides(self, oracle: Any, trial: Any) -> list[str]:
        """The Hydra overrides of a keras-tuner trial."""
        values = trial.hyperparameters.values
        lines = list(self.space.fixed)
        lines += [f"{p.key}={_format(values[p.name])}" for p in self.space.swept()]
        lines.append(f"tuner.trial='{trial.trial_id}'")  # quoted: 0003 is an id, not a number
        if self.settings.algorithm == "hyperband":
            lines += [f"train.epochs={values['tuner/epochs']}",
                      f"tuner.bracket={_bracket(oracle, trial)}",
                      f"tuner.round={values['tuner/round']}"]
            parent = values.get("tuner/trial_id")
            if parent is not None:
                lines += [f"train.warm_start='{self.ids[parent]}'",
                          f"train.initial_epoch={values['tuner/initial_epoch']}"]
        return lines

    def ask(self, oracle: Any) -> tuple[list[Any], bool]:
        """Up to one trial per slot, and whether the oracle has nothing more to give."""
        batch: list[Any] = []
        for slot in range(self.slots):
            trial = oracle.create_trial(f"slot{slot}")
            if trial.status == "RUNNING":
                batch.append(trial)
                # Now, while Hyperband's bracket is still open; a retry reuses them unchanged.
                self.jobs.setdefault(trial.trial_id, self.overrides(oracle, trial))
            elif trial.status == "STOPPED":
                return batch, True
            else:  # IDLE: the oracle waits for running trials (Hyperband's next round)
                break
        return batch, not batch

    def tell(self, oracle: Any, trial: Any, ret: JobReturn) -> None:
        """Report one finished trial's objective to the oracle (a failure when it has none)."""
        folder = _trial_folder(ret)
        if folder.name:
            self.ids[trial.trial_id] = folder.name
        value, error = _outcome(ret, folder)
        if value is not None:
            oracle.update_trial(trial.trial_id, {self.metric: value})
            trial.status = "COMPLETED"
        else:
            trial.status = "FAILED"
            trial.message = error
            self.failures += 1
            log.warning("tuner trial %s (%s) failed: %s", trial.trial_id, folder.name, error)
        oracle.end_trial(trial)

    def run(self) -> list[list[JobReturn]]:
        resume = self.check_resume()
        oracle = self.oracle(resume)
        s = self.settings
        log.info("tuner: %s search of %d dimensions, %s trials at a time%s", s.algorithm,
                 len(self.space.swept()), self.slots,
                 f", resuming after {len(oracle.trials)} trials" if resume else "")
        returns: list[list[JobReturn]] = []
        job_idx = 0
        done = False
        while not done:
            if self.failures > s.max_failures:
                global STOPPED_BY_FAILURES
                STOPPED_BY_FAILURES = self.stopped_by_failures = True
                log.error("tuner: stopped after %d failed trials (hydra.sweeper.max_failures=%d)",
                          self.failures, s.max_failures)
                break
            batch, done = self.ask(oracle)
            if not batch:
                break
            write_atomic(self.state_dir / JOBS, json.dumps(self.jobs, indent=1) + "\n")
            jobs = [self.jobs[t.trial_id] for t in batch]
            if self.validate is not None:
                self.validate(jobs)  # Hydra composes every job first: a bad one fails here
            rets = list(self.launcher.launch(jobs, initial_job_idx=job_idx))
            job_idx += len(jobs)
            for trial, ret in zip(batch, rets, strict=True):
                self.tell(oracle, trial, ret)
            write_atomic(self.state_dir / IDS, json.dumps(self.ids, indent=1) + "\n")
            returns.append(rets)
        best = oracle.get_best_trials(1)
        if best and best[0].status == "COMPLETED":
            log.info("tuner: best trial %s (%s) %s=%.4f after %d trials",
                     best[0].trial_id, self.ids.get(best[0].trial_id, "?"), self.metric,
                     best[0].score, len(oracle.trials))
        return returns


def _bracket(oracle: Any, trial: Any) -> int:
    """The Hyperband bracket a trial belongs to (keras-tuner's ``tuner/bracket`` names the
    newest bracket, which is not the survivor's own when brackets overlap)."""
    for bracket in oracle._brackets:
        if any(info["id"] == trial.trial_id for rnd in bracket["rounds"] for info in rnd):
            return int(bracket["bracket_num"])
    return int(trial.hyperparameters.values["tuner/bracket"])


def keras_tuner() -> Any:
    """keras-tuner, imported without TensorFlow's start-up chatter on the sweep's terminal (it
    imports TensorFlow, though the sweep process never runs an op or touches a GPU). TensorFlow's
    C++ start-up lines ignore its log level, so stderr is muted while the import runs."""
    if "keras_tuner" not in sys.modules:
        sys.stderr.flush()
        saved, muted = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(muted, 2)
        try:
            import keras_tuner  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(muted)
    return sys.modules["keras_tuner"]


def _trial_folder(ret: JobReturn) -> Path:
    """The trial folder a job ran in (its Hydra output dir; the working dir without chdir is
    the command's own)."""
    try:
        return Path(str(ret.hydra_cfg.hydra.runtime.output_dir))  # type: ignore[union-attr]
    except Exception:
        return Path(ret.working_dir or "")


def _outcome(ret: JobReturn, folder: Path) -> tuple[float | None, str]:
    """The objective of a finished job (None when it failed), and why it failed."""
    value: Any = None
    error = ""
    if ret.status == JobStatus.COMPLETED:
        value = ret.return_value
    else:
        error = f"{type(ret._return_value).__name__}: {ret._return_value}"
    record = read_record(folder) if folder.name and (folder / RECORD).is_file() else None
    if record is not None and record.get("error"):
        error = str(record["error"])
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value), ""
    return None, error or "no objective"


def _write_atomically(oracle: Any) -> None:
    """keras-tuner writes its state files in place; a kill mid-write would leave a truncated
    oracle.json that stops the search from resuming. Write them beside and rename instead."""

    def save() -> None:
        write_atomic(Path(oracle._get_oracle_fname()), json.dumps(oracle.get_state()))

    def save_trial(trial: Any) -> None:
        path = Path(oracle._get_trial_dir(trial.trial_id)) / "trial.json"
        write_atomic(path, json.dumps(trial.get_state()))

    oracle.save = save
    oracle._save_trial = save_trial


def slots_of(launcher_cfg: DictConfig) -> int:
    """How many trials the launcher runs at once: the pool's slots, what a Ray cluster has room
    for, 1 for Hydra's basic launcher, else the launcher's own parallelism setting (n_jobs,
    array_parallelism)."""
    target = str(launcher_cfg.get("_target_", ""))
    if target.endswith(RAY_LAUNCHERS):
        return max(1, ray_room(launcher_cfg.ray)[0])
    if target.endswith(".PoolLauncher"):
        return len(plan_slots(launcher_cfg.devices, launcher_cfg.trials_per_device,
                              launcher_cfg.devices_per_trial, launcher_cfg.workers))
    for key in ("n_jobs", "array_parallelism"):
        value = launcher_cfg.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return 1
