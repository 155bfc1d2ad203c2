"""keras-tuner's oracles, driven from outside a Tuner, and the search space as their
HyperParameters.

keras-tuner has no public API for an oracle run without its Tuner, so a few of its private names
are used (the version is bounded in pyproject.toml): ``_set_project_dir`` (the oracle's state
folder inside the sweep folder), ``_get_oracle_fname``, ``_get_trial_dir`` and ``_save_trial``
(replaced to write atomically) and ``_brackets`` (Hyperband's own record of its brackets).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from sweeper.atomic import write_atomic
from sweeper.errors import SearchError
from sweeper.search.plan import STATE_DIR
from sweeper.search.settings import DEFAULT_MAX_TRIALS, OPTUNA, Settings
from sweeper.search.space import Space


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


def hyperparameters(space: Space) -> Any:
    """keras-tuner's ``HyperParameters`` of ``space``, one per dimension."""
    hp = keras_tuner().HyperParameters()
    for p in space.params:
        if p.kind == "choice":
            hp.Choice(p.name, list(p.values), ordered=None)
        elif p.kind == "fixed":
            hp.Fixed(p.name, p.values[0])
        else:
            assert p.low is not None and p.high is not None
            if p.kind == "int":
                hp.Int(p.name, int(p.low), int(p.high),
                       step=None if p.step is None else int(p.step), sampling=p.sampling)
            else:
                hp.Float(p.name, float(p.low), float(p.high), step=p.step, sampling=p.sampling)
    return hp


def bracket_of(oracle: Any, trial: Any) -> int:
    """The Hyperband bracket a trial belongs to (keras-tuner's ``tuner/bracket`` names the
    newest bracket, which is not the survivor's own when brackets overlap)."""
    for bracket in oracle._brackets:
        if any(info["id"] == trial.trial_id for rnd in bracket["rounds"] for info in rnd):
            return int(bracket["bracket_num"])
    return int(trial.hyperparameters.values["tuner/bracket"])


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


def make(settings: Settings, space: Space, objectives: list[tuple[str, str]],
         sweep_dir: Path) -> Any:
    """The oracle of ``settings.algorithm`` over ``space``, its state in ``sweep_dir/tuner/``
    (an Optuna sampler's study in ``sweep_dir/optuna.log``); ``objectives`` are the sweep's
    (name, mode), the first the one keras-tuner's oracles follow."""
    if settings.algorithm in OPTUNA:
        from sweeper.search.optuna_oracle import OptunaOracle

        return OptunaOracle(settings, space, objectives, sweep_dir)
    kt = keras_tuner()
    metric, mode = objectives[0]

    s = settings
    common: dict[str, Any] = dict(
        objective=kt.Objective(metric, direction=mode),
        hyperparameters=hyperparameters(space), seed=s.seed or None,
        allow_new_entries=False, tune_new_entries=False,
        # Failures are counted by the search, against hydra.sweeper.max_failures.
        max_consecutive_failed_trials=None)
    if s.algorithm == "hyperband":
        hb = s.hyperband
        oracle = kt.oracles.HyperbandOracle(
            max_epochs=hb.max_epochs, factor=hb.factor, hyperband_iterations=hb.iterations,
            **common)
        oracle.max_trials = s.max_trials  # None: the whole Hyperband schedule
    elif s.algorithm == "bayesian":
        by = s.bayesian
        oracle = kt.oracles.BayesianOptimizationOracle(
            max_trials=s.max_trials or DEFAULT_MAX_TRIALS,
            num_initial_points=by.num_initial_points, alpha=by.alpha, beta=by.beta, **common)
    elif s.algorithm == "grid":
        oracle = kt.oracles.GridSearchOracle(max_trials=s.max_trials, **common)
    else:
        oracle = kt.oracles.RandomSearchOracle(
            max_trials=s.max_trials or DEFAULT_MAX_TRIALS, **common)
    oracle.verbose = 0  # the launcher shows progress
    _write_atomically(oracle)
    oracle._set_project_dir(str(sweep_dir), STATE_DIR)
    return oracle


def warm_start(oracle: Any, told: list[tuple[dict[str, Any], list[float]]],
               metric: str) -> int:
    """Tell a keras-tuner oracle the trials of an earlier sweep, as completed trials of its own
    (``warm<i>``: its random search then never asks their values again, Bayesian search fits
    them); once: a re-run that reloaded them tells none again. ``max_trials`` counts new trials
    only."""
    kt = keras_tuner()
    if not any(trial_id.startswith("warm") for trial_id in oracle.trials):
        for i, (values, objectives) in enumerate(told):
            hp = oracle.hyperparameters.copy()
            hp.values.update(values)
            trial = kt.engine.trial.Trial(hyperparameters=hp, trial_id=f"warm{i}")
            oracle.trials[trial.trial_id] = trial
            oracle.update_trial(trial.trial_id, {metric: objectives[0]})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
    warm = sum(1 for trial_id in oracle.trials if trial_id.startswith("warm"))
    if oracle.max_trials:
        oracle.max_trials += warm
    return warm


def reload(oracle: Any, state_dir: Path) -> None:
    """Continue the search whose state ``state_dir`` holds."""
    try:
        oracle.reload()
    except Exception as e:
        raise SearchError(f"{state_dir}: the search's saved state is unreadable "
                          f"({type(e).__name__}: {e})") from e
