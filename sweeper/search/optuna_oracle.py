"""Optuna's samplers behind the tuner sweeper: TPE, CMA-ES, Gaussian process, NSGA-II, QMC.

The search loop (:mod:`sweeper.search.loop`) drives an oracle the way keras-tuner's are driven
(``create_trial``, ``update_trial``, ``end_trial``); :class:`OptunaOracle` answers the same calls
with an Optuna study driven by ask/tell. The study lives in the sweep folder in Optuna's
multi-process-safe journal storage (``<sweep>/optuna.log``), which ``optuna-dashboard`` opens and
from which a re-run of the command continues: trials asked and never told (an interrupted run)
are handed out again first, as keras-tuner hands back its ongoing trials. TPE asks with the
running trials known (``constant_liar``). With several objectives (``sweep.objectives``) the
study has one direction per objective, and NSGA-II or TPE search their Pareto front.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.errors import SearchError
from sweeper.search.settings import DEFAULT_MAX_TRIALS, Settings
from sweeper.search.space import Space

JOURNAL = "optuna.log"  # the study, in the sweep folder
STUDY = "sweeper"
WARM = "warm_start"  # user attribute of a trial told from an earlier sweep
DUPLICATE = "duplicate_of"  # of an asked trial whose values were told before: not run
MAX_REPEATS = 100  # asks in a row that only repeat told values: the space is exhausted


def optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SearchError('hydra.sweeper.algorithm: Optuna is not installed; pip install -e '
                          '".[optuna]"') from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass
class Values:
    values: dict[str, Any]


@dataclass
class Asked:
    """An Optuna trial as the search loop sees a keras-tuner one."""

    trial_id: str
    hyperparameters: Values
    status: str = "RUNNING"
    message: str | None = None
    score: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def distributions(space: Space) -> dict[str, Any]:
    """Each swept dimension as an Optuna distribution."""
    d = optuna().distributions
    out: dict[str, Any] = {}
    for p in space.swept():
        if p.kind == "choice":
            out[p.name] = d.CategoricalDistribution(list(p.values))
        elif p.kind == "int":
            assert p.low is not None and p.high is not None
            out[p.name] = d.IntDistribution(int(p.low), int(p.high), log=p.sampling == "log",
                                            step=1 if p.sampling == "log" else int(p.step or 1))
        else:
            assert p.low is not None and p.high is not None
            out[p.name] = d.FloatDistribution(float(p.low), float(p.high),
                                              log=p.sampling == "log",
                                              step=None if p.sampling == "log" else p.step)
    return out


def sampler(settings: Settings, objectives: int) -> Any:
    """The sampler of ``settings.algorithm``, its options from ``hydra.sweeper.sampler``."""
    o = optuna()
    options = dict(settings.sampler or {})
    seed = settings.seed or None
    algorithm = settings.algorithm
    if algorithm == "tpe":
        options.setdefault("constant_liar", True)  # running trials count as asked
        return o.samplers.TPESampler(seed=seed, multivariate=True, **options)
    if algorithm == "nsga2":
        return o.samplers.NSGAIISampler(seed=seed, **options)
    if algorithm == "qmc":
        return o.samplers.QMCSampler(seed=seed, **options)
    if objectives > 1:
        raise SearchError(f"hydra.sweeper.algorithm={algorithm}: one objective only; several "
                          "(sweep.objectives) need nsga2 or tpe")
    if algorithm == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise SearchError('hydra.sweeper.algorithm=cmaes: the cmaes package is not '
                              'installed; pip install -e ".[optuna]"') from None
        return o.samplers.CmaEsSampler(seed=seed, **options)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SearchError("hydra.sweeper.algorithm=gp: Optuna's GPSampler needs PyTorch; "
                          "pip install torch") from None
    return o.samplers.GPSampler(seed=seed, **options)


class OptunaOracle:
    """An Optuna study answering the keras-tuner oracle calls the search loop makes."""

    def __init__(self, settings: Settings, space: Space, objectives: list[tuple[str, str]],
                 sweep_dir: Path) -> None:
        o = optuna()
        self.space = space
        self.distributions = distributions(space)
        self.objectives = objectives
        self.max_trials = settings.max_trials or DEFAULT_MAX_TRIALS
        storage = o.storages.JournalStorage(
            o.storages.journal.JournalFileBackend(str(sweep_dir / JOURNAL)))
        self.study = o.create_study(
            study_name=STUDY, storage=storage, sampler=sampler(settings, len(objectives)),
            directions=["maximize" if mode == "max" else "minimize" for _, mode in objectives],
            load_if_exists=True)
        self.trials: dict[str, Asked] = {}
        self.ongoing: dict[str, str] = {}  # the loop's slot id -> the trial it runs
        self.waiting: list[Any] = []  # asked by an interrupted run, never told: asked again
        self.values: dict[str, dict[str, float]] = {}
        self.asking: dict[str, Any] = {}  # Optuna's Trial of each trial asked by this run
        self.reload()

    def reload(self) -> None:
        """Read the study back: its told trials, and those an interrupted run left running."""
        state = optuna().trial.TrialState
        self.trials, self.waiting = {}, []
        for t in self.study.get_trials(deepcopy=False):
            asked = Asked(str(t.number), Values(dict(t.params)))
            if t.state == state.COMPLETE:
                asked.status, asked.score = "COMPLETED", float(t.values[0])
            elif t.state == state.RUNNING:
                self.waiting.append(t)
            else:
                asked.status = "FAILED"
            self.trials[asked.trial_id] = asked

    def asked(self) -> int:
        """Trials this search ran (not those told from an earlier sweep, nor repeats of a
        trial already told)."""
        return sum(1 for t in self.study.get_trials(deepcopy=False)
                   if not t.user_attrs.get(WARM) and not t.user_attrs.get(DUPLICATE))

    def _ask(self) -> Any | None:
        """A new trial of values not told before (an asked repeat is told the values it had
        and asked again: a sampler may propose a point twice, a trial never runs twice); None
        when the space has nothing new left."""
        state = optuna().trial.TrialState
        for _ in range(MAX_REPEATS):
            frozen = self.study.ask(self.distributions)
            told = next((t for t in self.study.get_trials(deepcopy=False, states=(
                state.COMPLETE,)) if t.params == frozen.params), None)
            if told is None:
                return frozen
            frozen.set_user_attr(DUPLICATE, told.number)
            self.study.tell(frozen, told.values)
        return None

    def create_trial(self, tuner_id: str) -> Asked:
        if tuner_id in self.ongoing:
            return self.trials[self.ongoing[tuner_id]]
        if self.waiting:
            frozen = self.waiting.pop(0)
            trial = self.trials[str(frozen.number)]
        elif self.asked() >= self.max_trials or (frozen := self._ask()) is None:
            return Asked("", Values({}), status="STOPPED")
        else:
            trial = self.trials[str(frozen.number)] = Asked(str(frozen.number),
                                                            Values(dict(frozen.params)))
            self.asking[trial.trial_id] = frozen
        self.ongoing[tuner_id] = trial.trial_id
        return trial

    def update_trial(self, trial_id: str, metrics: dict[str, float]) -> None:
        self.values[trial_id] = dict(metrics)

    def end_trial(self, trial: Asked) -> None:
        state = optuna().trial.TrialState
        got = self.values.pop(trial.trial_id, {})
        values = [got.get(name) for name, _ in self.objectives]
        number = int(trial.trial_id)
        asked = self.asking.pop(trial.trial_id, None)
        if trial.message and asked is not None:  # why it failed, or was not trained
            asked.set_user_attr("message", trial.message)
        if trial.status == "COMPLETED" and all(v is not None for v in values):
            self.study.tell(number, [float(v) for v in values if v is not None])
            trial.score = float(values[0])  # type: ignore[arg-type]
        else:  # failed, infeasible, or an objective it did not measure
            self.study.tell(number, state=state.FAIL)
            trial.status = "FAILED" if trial.status != "INVALID" else trial.status
        self.ongoing = {k: v for k, v in self.ongoing.items() if v != trial.trial_id}

    def get_best_trials(self, count: int = 1) -> list[Asked]:
        done = [t for t in self.trials.values() if t.status == "COMPLETED"]
        maximize = self.objectives[0][1] == "max"
        return sorted(done, key=lambda t: t.score or 0.0, reverse=maximize)[:count]

    def warm_start(self, told: list[tuple[dict[str, Any], list[float]]]) -> int:
        """Tell the study trials of an earlier sweep (their values within this space, their
        objectives); returns how many it knows. Told once: a re-run adds none again."""
        o = optuna()
        known = sum(1 for t in self.study.get_trials(deepcopy=False) if t.user_attrs.get(WARM))
        if known:
            return known
        for params, values in told:
            self.study.add_trial(o.trial.create_trial(
                params=params, distributions=self.distributions, values=values,
                user_attrs={WARM: True}))
        self.reload()
        return len(told)
