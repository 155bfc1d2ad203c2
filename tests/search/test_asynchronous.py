"""Asynchronous ask/tell on the pool, Optuna's samplers, resume and warm starts, on trials that
train nothing (their objective a known function of their values, their length a sleep) and, for
the Pareto front, on real ones."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli
from helpers.paths import CONF
from helpers.records import trial_record, write_trial
from hydra.test_utils.test_utils import TSweepRunner
from omegaconf import DictConfig

from sweeper.config.schema import CONFIG_NAME, CONFIG_PATH
from sweeper.errors import SearchError
from sweeper.results import leaderboard
from sweeper.search.settings import Settings

optuna = pytest.importorskip("optuna", reason="Optuna is not installed (the optuna extra)")


def timed(cfg: DictConfig) -> float:
    """A trial that lasts 0.2 s per epoch and says when it ran (into the file $SPANS)."""
    start = time.time()
    time.sleep(0.2 * int(cfg.train.epochs))
    with open(os.environ["SPANS"], "a") as f:
        f.write(json.dumps({"start": start, "end": time.time(), "epochs": cfg.train.epochs}) + "\n")
    return float(cfg.model.units) / 100


def _sweep(runner: TSweepRunner, tmp_path: Path, *overrides: str) -> list:
    os.environ.setdefault("SPANS", os.devnull)
    """A sweep in ``tmp_path/s`` through Hydra's test runner, kept after it (the runner's own
    exit would delete it: a re-run continues it)."""
    sweep = runner(calling_file=None, calling_module="sweeper.app", task_function=timed,
                   config_path=CONFIG_PATH, config_name=CONFIG_NAME,
                   temp_dir=str(tmp_path / "s"),
                   overrides=["hydra/sweeper=tuner", "hydra.launcher.workers=2",
                              "hydra.launcher.live=false", f"paths.experiments={tmp_path}/exp",
                              f"paths.logs={tmp_path}/logs", "sweep.name=s", *overrides])
    sweep.__enter__()
    assert sweep.returns is not None
    return [r for batch in sweep.returns for r in batch]


def test_a_freed_slot_gets_the_next_trial_at_once(hydra_sweep_runner: TSweepRunner,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANS", str(tmp_path / "spans.jsonl"))
    # Trials of 1 and 15 epochs (0.2 s and 3 s): in batches a short trial's slot would wait
    # for the long one; asynchronously it takes the next trial as soon as it is free.
    rets = _sweep(hydra_sweep_runner, tmp_path, "hydra.sweeper.max_trials=8",
                  "model.units=range(8,257)", "train.epochs=choice(1,15)")
    assert len(rets) == 8
    spans = sorted((json.loads(line) for line in (tmp_path / "spans.jsonl").open()),
                   key=lambda s: s["start"])
    ends = sorted(s["end"] for s in spans)
    for span in spans[2:]:  # every later trial starts right after some trial ended
        assert min(span["start"] - e for e in ends if e <= span["start"] + 0.05) < 1.5
    running = max(sum(s["start"] <= t < s["end"] for s in spans) for t in
                  (s["start"] + 0.01 for s in spans))
    assert running <= 2  # never more than the slots


def test_an_interrupted_tpe_search_resumes_where_it_stopped(hydra_sweep_runner: TSweepRunner,
                                                            tmp_path: Path) -> None:
    first = _sweep(hydra_sweep_runner, tmp_path, "hydra.sweeper.algorithm=tpe",
                   "hydra.sweeper.max_trials=3", "model.units=range(8,257)", "train.epochs=1")
    journal = tmp_path / "s" / "optuna.log"
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="sweeper", storage=storage)
    # What an interrupted run leaves: a trial asked and never told.
    cut_short = study.ask({"model.units": optuna.distributions.IntDistribution(8, 256)})
    again = _sweep(hydra_sweep_runner, tmp_path, "hydra.sweeper.algorithm=tpe",
                   "hydra.sweeper.max_trials=5", "model.units=range(8,257)", "train.epochs=1")
    assert len(first) == 3 and len(again) == 2  # the 3 told trials are not run again
    assert again[0].cfg.model.units == cut_short.params["model.units"]  # the cut one, first
    study = optuna.load_study(study_name="sweeper", storage=storage)
    trials = [t for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
              if "duplicate_of" not in t.user_attrs]  # a value asked again is told, not run
    assert len(trials) == 5  # Optuna's own API reads every finished trial, with its value
    assert {t.params["model.units"]: t.value for t in trials} == {
        r.cfg.model.units: r.return_value for r in [*first, *again]}


def _earlier(tmp_path: Path) -> Path:
    sweep = tmp_path / "early"
    for units, value in ((16, 0.70), (32, 0.80), (64, 0.90)):
        record = trial_record(f"u{units}", value=value, **{"model.units": units,
                                                            "train.epochs": 1})
        write_trial(sweep, record)
    return sweep


@pytest.mark.parametrize("algorithm", ["tpe", "random"])
def test_a_warm_started_search_asks_nothing_the_earlier_sweep_answered(
        hydra_sweep_runner: TSweepRunner, tmp_path: Path, algorithm: str) -> None:
    earlier = _earlier(tmp_path)
    rets = _sweep(hydra_sweep_runner, tmp_path, f"hydra.sweeper.algorithm={algorithm}",
                  "hydra.sweeper.max_trials=1", "model.units=choice(16,32,64,128)",
                  "train.epochs=1", f"hydra.sweeper.warm_start={earlier}")
    assert [r.cfg.model.units for r in rets] == [128]  # the one value nobody answered


def test_without_optuna_the_search_says_which_extra_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from omegaconf import OmegaConf

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "optuna" else real(name, *a))
    with pytest.raises(SearchError, match=r'not installed; pip install -e "\.\[optuna\]"'):
        Settings.of(OmegaConf.create({"algorithm": "tpe"}))


def test_nsga2_searches_a_pareto_front_of_two_objectives(tmp_path: Path) -> None:
    done = run_cli("-m", f"--config-dir={CONF}", "hydra/sweeper=tuner",
                   "hydra.sweeper.algorithm=nsga2", "hydra.sweeper.max_trials=4",
                   "model.units=range(4,257)", "train.epochs=2", "sweep.name=n",
                   "sweep.objectives=[val_accuracy:max,params:min]",
                   "hydra.launcher.live=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(tmp_path / "experiments" / "n" / leaderboard.LEADERBOARD_CSV)
    assert len(table) == 4 and table["front"].any() and table["objective"].max() > 0.5
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(tmp_path / "experiments" / "n" / "optuna.log")))
    study = optuna.load_study(study_name="sweeper", storage=storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    front = {t.number for t in study.best_trials}  # Optuna's own front agrees with ours
    ours = table[table["front"]]["trial_id"].str.split("_").str[0].astype(int)
    assert set(ours) == front
