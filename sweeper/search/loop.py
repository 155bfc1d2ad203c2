"""The search behind ``hydra/sweeper=tuner``: the ask -> launch -> tell loop over an oracle.

Asynchronous (the pool and Ray launchers): ask the oracle for a trial per slot, and as each
trial ends tell the oracle its objective and ask for the next one, which the freed slot runs at
once; the oracle asks knowing which trials are still running. Launchers that run only batches
(Hydra's basic, submitit), or ``hydra.sweeper.asynchronous=false``: ask for a batch, launch it,
wait for all of it, tell, repeat. The oracle keeps its state in ``<sweep>/tuner/``, so
re-running the command continues the search. keras-tuner (and with it TensorFlow) is imported
only when a search starts; the sweep process runs no TensorFlow op.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from omegaconf import DictConfig

from sweeper.atomic import write_atomic
from sweeper.config.checks import metric_names
from sweeper.config.objectives import goals
from sweeper.launch import kinds
from sweeper.launch.jobs import outcome, trial_folder
from sweeper.record import TrialRecord
from sweeper.results.planned import write_plan
from sweeper.search import oracle as oracles
from sweeper.search.plan import SPEC, STATE_DIR, check_earlier, space_of, spec, warm_trials
from sweeper.search.settings import DEFAULT_MAX_TRIALS, Settings
from sweeper.search.space import format_value

log = logging.getLogger(__name__)

IDS = "trials.json"  # keras-tuner trial id -> the Hydra trial folder that ran it
JOBS = "jobs.json"  # keras-tuner trial id -> its overrides (a retried trial reuses them)
OUTCOME = "outcome.json"  # how the last run of the search ended
# Configurations asked beyond the slots when streaming: one waits, so a slot freed by a trial
# that ended starts the next at once instead of after the tell and the ask.
LOOKAHEAD = 1


class Search:
    """The ask → launch → tell loop of one sweep over a keras-tuner oracle."""

    def __init__(self, config: DictConfig, arguments: Sequence[str], groups: Sequence[str],
                 launcher: Any, validate: Callable[[list[list[str]]], None] | None = None) -> None:
        self.config = config
        self.validate = validate
        self.settings = Settings.of(config.hydra.sweeper)
        self.space = space_of(config, arguments, groups)
        self.launcher = launcher
        self.slots = self.settings.batch_size or kinds.capacity(config.hydra.launcher)
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.state_dir = self.sweep_dir / STATE_DIR
        self.metric, self.mode = str(config.sweep.metric), str(config.sweep.mode)
        # sweep.objectives: Optuna's multi-objective samplers search them all
        self.objectives = list(goals(config.sweep, metric_names(config.train)).objectives) or \
            [(self.metric, self.mode)]
        # sweep.repeats: each asked configuration runs once per seed; the oracle is told the mean
        self.repeats = int(config.sweep.repeats)
        self.slots = max(1, -(-self.slots // self.repeats))  # configurations per batch
        self.ids: dict[str, str] = {}  # keras-tuner trial id -> Hydra trial folder name
        self.jobs: dict[str, list[str]] = {}  # keras-tuner trial id -> its overrides
        self.failures = 0

    def check_resume(self) -> bool:
        return check_earlier(self.config, self.settings, self.space)

    def oracle(self, resume: bool) -> Any:
        oracle = oracles.make(self.settings, self.space, self.objectives, self.sweep_dir)
        if resume:
            oracles.reload(oracle, self.state_dir)
            for name, attribute in ((IDS, "ids"), (JOBS, "jobs")):
                path = self.state_dir / name
                setattr(self, attribute, json.loads(path.read_text()) if path.is_file() else {})
            self.failures = sum(t.status == "FAILED" for t in oracle.trials.values())
        if self.settings.warm_start:
            told = warm_trials(self.config, self.space, self.objectives)
            count = oracle.warm_start(told) if hasattr(oracle, "warm_start") else \
                oracles.warm_start(oracle, told, self.metric)
            log.info("tuner: %d trials of %s fit this search; the search knows them before it "
                     "asks", count, self.settings.warm_start)
        write_atomic(self.state_dir / SPEC,
                     json.dumps(spec(self.config, self.settings, self.space), indent=1) + "\n")
        return oracle

    def overrides(self, oracle: Any, trial: Any) -> list[str]:
        """The Hydra overrides of a keras-tuner trial."""
        values = trial.hyperparameters.values
        lines = list(self.space.fixed)
        lines += [f"{p.key}={format_value(values[p.name])}" for p in self.space.swept()]
        lines.append(f"tuner.trial='{trial.trial_id}'")  # quoted: 0003 is an id, not a number
        if self.settings.algorithm == "hyperband":
            lines += [f"train.epochs={values['tuner/epochs']}",
                      f"tuner.bracket={oracles.bracket_of(oracle, trial)}",
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

    def repeat(self, trial: Any, k: int) -> list[str]:
        """The overrides of repeat ``k`` of an asked trial: its configuration with the repeat's
        seed, continuing (Hyperband) the same repeat of the trial it continues."""
        lines = list(self.jobs[trial.trial_id])
        if self.repeats == 1:
            return lines
        parent = trial.hyperparameters.values.get("tuner/trial_id")
        if k and parent is not None:
            lines = [f"train.warm_start='{self.ids[f'{parent}/{k}']}'"
                     if line.startswith("train.warm_start=") else line for line in lines]
        return [*lines, f"sweep.repeat={k}"]

    def tell(self, oracle: Any, trial: Any, rets: Sequence[JobReturn]) -> None:
        """Report one finished trial's objective to the oracle (a failure when it has none): with
        repeats, the mean over those that have one. A pruned trial reports its best before it
        was stopped: a real measurement of its configuration, which Bayesian search learns from
        like any other."""
        folders = [trial_folder(ret) for ret in rets]
        name = folders[0].name if folders[0] is not None else "?"
        for k, folder in enumerate(folders):
            if folder is not None:
                self.ids[trial.trial_id if k == 0 else f"{trial.trial_id}/{k}"] = folder.name
        results = [outcome(ret) for ret in rets]
        values = [r.value for r in results if r.value is not None]
        others = {name: mean for name, _ in self.objectives[1:]
                  if (mean := _mean_of(folders, name)) is not None}
        result = next((r for r in results if r.value is None), results[0])
        worst = self.worst(oracle)
        if result.status == "infeasible" and worst is not None:
            # Not trained (sweep.constraints): as bad as the worst trial so far, so the search
            # learns to stay away; not a failure.
            oracle.update_trial(trial.trial_id, {self.metric: worst})
            trial.status, trial.message = "COMPLETED", f"infeasible: {result.error}"
        elif result.status == "infeasible":  # nothing to compare with yet: no score, no failure
            trial.status, trial.message = "INVALID", f"infeasible: {result.error}"
        elif values:
            oracle.update_trial(trial.trial_id,
                                {self.metric: sum(values) / len(values), **others})
            trial.status = "COMPLETED"
            trial.message = next((r.note for r in results if r.note), None)  # why pruned
        else:
            trial.status = "FAILED"
            trial.message = result.error
            self.failures += 1
            log.warning("tuner trial %s (%s) failed: %s", trial.trial_id, name, result.error)
        oracle.end_trial(trial)

    def worst(self, oracle: Any) -> float | None:
        """The worst score of the search's completed trials (None: none yet)."""
        scores = [t.score for t in oracle.trials.values()
                  if t.status == "COMPLETED" and t.score is not None]
        if not scores:
            return None
        return min(scores) if self.mode == "max" else max(scores)

    def failing(self) -> bool:
        """Whether more trials failed than ``max_failures`` allows (said, and written, once)."""
        limit = self.settings.max_failures
        if self.failures <= limit:
            return False
        if not (self.state_dir / OUTCOME).exists():
            reason = f"{self.failures} trials failed, more than hydra.sweeper.max_failures=" \
                f"{limit} allows"
            log.error("tuner: stopped: %s", reason)
            write_atomic(self.state_dir / OUTCOME, json.dumps({"stopped": reason}) + "\n")
        return True

    def run(self) -> list[list[JobReturn]]:
        resume = self.check_resume()
        oracle = self.oracle(resume)
        s = self.settings
        streams = s.asynchronous and hasattr(self.launcher, "stream")
        log.info("tuner: %s search of %d dimensions, %s trials at a time%s%s", s.algorithm,
                 len(self.space.swept()), self.slots,
                 ", each freed slot given the next at once" if streams else " (in batches)",
                 f", resuming after {len(oracle.trials)} trials" if resume else "")
        (self.state_dir / OUTCOME).unlink(missing_ok=True)
        write_plan(self.sweep_dir, None if s.algorithm == "hyperband" else
                   (s.max_trials or DEFAULT_MAX_TRIALS) * self.repeats)
        returns = [self.stream(oracle)] if streams else self.batches(oracle)
        best = oracle.get_best_trials(1)
        if best and best[0].status == "COMPLETED":
            log.info("tuner: best trial %s (%s) %s=%.4f after %d trials",
                     best[0].trial_id, self.ids.get(best[0].trial_id, "?"), self.metric,
                     best[0].score, len(oracle.trials))
        return returns

    def stream(self, oracle: Any) -> list[JobReturn]:
        """Asynchronous: one trial per slot and one waiting, and the next one asked as each
        ends: a freed slot takes the waiting trial at once, while the oracle is told and asked
        (with every running trial known to it)."""
        ids = self.slots + LOOKAHEAD
        free = [f"slot{i}" for i in reversed(range(ids))]  # one asked trial per id
        running: dict[str, tuple[Any, str, dict[int, JobReturn]]] = {}
        stopped = False

        def ask_more() -> list[list[str]]:
            nonlocal stopped
            asked = []
            while free and not stopped and not self.failing():
                trial = oracle.create_trial(free[-1])
                if trial.status == "STOPPED":
                    stopped = True
                if trial.status != "RUNNING":  # IDLE: Hyperband waits for a round to end
                    break
                running[trial.trial_id] = (trial, free.pop(), {})
                self.jobs.setdefault(trial.trial_id, self.overrides(oracle, trial))
                asked.append(trial)
            jobs = [self.repeat(t, k) for t in asked for k in range(self.repeats)]
            if jobs:
                write_atomic(self.state_dir / JOBS, json.dumps(self.jobs, indent=1) + "\n")
                if self.validate is not None:
                    self.validate(jobs)
            return jobs

        def more(overrides: list[str], ret: JobReturn) -> list[list[str]]:
            given = dict(line.split("=", 1) for line in overrides if "=" in line)
            trial, tuner_id, rets = running[given["tuner.trial"].strip("'")]
            rets[int(given.get("sweep.repeat", 0))] = ret
            if len(rets) < self.repeats:
                return []
            del running[trial.trial_id]
            self.tell(oracle, trial, [rets[k] for k in sorted(rets)])
            write_atomic(self.state_dir / IDS, json.dumps(self.ids, indent=1) + "\n")
            free.append(tuner_id)
            return ask_more()

        first = ask_more()
        return list(self.launcher.stream(first, more, initial_job_idx=0)) if first else []

    def batches(self, oracle: Any) -> list[list[JobReturn]]:
        """Synchronous: a batch asked, launched and waited for, then told."""
        returns: list[list[JobReturn]] = []
        job_idx = 0
        done = False
        while not done and not self.failing():
            batch, done = self.ask(oracle)
            if not batch:
                break
            write_atomic(self.state_dir / JOBS, json.dumps(self.jobs, indent=1) + "\n")
            jobs = [self.repeat(t, k) for t in batch for k in range(self.repeats)]
            if self.validate is not None:
                self.validate(jobs)  # Hydra composes every job first: a bad one fails here
            rets = list(self.launcher.launch(jobs, initial_job_idx=job_idx))
            job_idx += len(jobs)
            for i, trial in enumerate(batch):
                self.tell(oracle, trial, rets[i * self.repeats:(i + 1) * self.repeats])
            write_atomic(self.state_dir / IDS, json.dumps(self.ids, indent=1) + "\n")
            returns.append(rets)
        return returns


def _mean_of(folders: Sequence[Path | None], name: str) -> float | None:
    """The mean over a configuration's repeats of a metric or cost their records hold."""
    got = []
    for folder in folders:
        record = TrialRecord.read(folder) if folder is not None else None
        value = None if record is None else record.metrics.get(name, record.cost.get(name))
        if isinstance(value, int | float):
            got.append(float(value))
    return sum(got) / len(got) if got else None


def stopped_early(sweep_dir: Path) -> str | None:
    """Why the last run of the sweep's search stopped before its end (None: it did not)."""
    try:
        return str(json.loads((sweep_dir / STATE_DIR / OUTCOME).read_text())["stopped"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
