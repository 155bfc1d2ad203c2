"""hydra/sweeper=tuner: Hydra's sweep syntax as keras-tuner HyperParameters, and real searches."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import records, run_cli, sigint_default
from helpers.board import STATUSES, post, tensorboard

from sweeper.config.overrides import sweep_arguments
from sweeper.errors import SearchError
from sweeper.search import oracle
from sweeper.search.space import parse_space

GROUPS = ("model", "optimizer", "dataset", "train", "search")
TINY = ("dataset.limit=200", "train.epochs=1")


def hyperparameter(line: str) -> Any:
    """The keras-tuner HyperParameter one override becomes."""
    space = parse_space(sweep_arguments(None, ["model.units=8,16", line]), GROUPS)
    hp = oracle.hyperparameters(space)
    return hp._hps[line.split("=", 1)[0]][0]


@pytest.mark.parametrize(("line", "kind", "expected"), [
    ("optimizer=choice(adam,sgd)", "Choice", {"values": ["adam", "sgd"]}),
    ("optimizer=adam,sgd", "Choice", {"values": ["adam", "sgd"]}),
    ("model.units=choice(16,32,64)", "Choice", {"values": [16, 32, 64]}),
    ("train.batch_size=choice(32,64.0)", "Choice", {"values": [32.0, 64.0]}),
    ("model.units=range(16,129,16)", "Int",
     {"min_value": 16, "max_value": 128, "step": 16, "sampling": "linear"}),
    ("model.units=tag(int, interval(16,256))", "Int",
     {"min_value": 16, "max_value": 256, "step": 1, "sampling": "linear"}),
    ("model.dropout=interval(0.0,0.5)", "Float",
     {"min_value": 0.0, "max_value": 0.5, "step": None, "sampling": "linear"}),
    ("optimizer.learning_rate=tag(log, interval(1e-4,1e-1))", "Float",
     {"min_value": 1e-4, "max_value": 0.1, "sampling": "log"}),
    ("model.dropout=range(0.1,0.4,0.1)", "Float", {"min_value": 0.1, "step": 0.1}),
    ("train.batch_size=64", "Fixed", {"value": 64}),
    ("optimizer.name=sgd", "Fixed", {"value": "sgd"}),
])
def test_each_syntax_form_maps_to_its_hyperparameter(line: str, kind: str,
                                                     expected: dict[str, Any]) -> None:
    hp = hyperparameter(line)
    assert type(hp).__name__ == kind
    for attribute, value in expected.items():
        got = getattr(hp, attribute)
        if isinstance(value, float):
            assert got == pytest.approx(value)
        else:
            assert got == value, attribute


@pytest.mark.parametrize(("line", "message"), [
    ("model.units=glob(*)", "the tuner cannot search this"),
    ("optimizer=interval(0,1)", "the config group optimizer takes a choice"),
    ("optimizer.learning_rate=tag(log, interval(0,0.1))", "log sampling needs a low end above 0"),
    ("model.units=tag(log, range(8,64,8))", "log sampling needs tag(log, interval"),
    ("model.units=choice(8,abc)", "choice values must share one type"),
    ("model.dropout=interval(0.5,0.1)", "an interval needs low < high"),
    ("model.units=range(8,8)", "an empty range"),
    ("model.units=choice(8,8)", "a value is repeated"),
    ("model.units=tag(cubic, interval(8,64))", "unknown tag 'cubic'"),
])
def test_what_cannot_be_mapped_is_named(line: str, message: str) -> None:
    with pytest.raises(SearchError, match=message.replace("(", r"\(")):
        parse_space(sweep_arguments(None, [line]), GROUPS)


def test_an_empty_space_is_refused() -> None:
    with pytest.raises(SearchError, match="the search space is empty"):
        parse_space(sweep_arguments(None, ["train.epochs=2"]), GROUPS)


def test_an_interval_over_an_integer_key_searches_integers(compose_config: Any) -> None:
    cfg = compose_config()
    space = parse_space(sweep_arguments(None, [
        "model.units=interval(16,256)", "model.dropout=interval(0,0.5)"]), GROUPS, cfg)
    units, dropout = space.swept()
    assert (units.kind, units.low, units.high) == ("int", 16, 256)
    assert (dropout.kind, dropout.low, dropout.high) == ("float", 0.0, 0.5)


def test_the_command_line_overrides_a_preset_and_bookkeeping_is_not_searched() -> None:
    space = parse_space(sweep_arguments(None, [
        "model.units=8,16", "model.units=range(8,33,8)", "sweep.name=x", "paths.logs=l"]), GROUPS)
    (units,) = space.swept()
    assert (units.kind, units.low, units.high, units.step) == ("int", 8, 32, 8.0)
    assert [p.name for p in space.params] == ["model.units"]
    assert space.fixed == ["sweep.name=x", "paths.logs=l"]


# --- real searches on digits ----------------------------------------------------------------

SPACE = ("model.units=range(8,33,8)", "model.dropout=interval(0.0,0.5)",
         "optimizer=choice(adam,sgd)")
ALGORITHMS = {
    "random": ("hydra.sweeper.max_trials=3", *SPACE, *TINY),
    "bayesian": ("hydra.sweeper.max_trials=3", "hydra.sweeper.bayesian.num_initial_points=2",
                 *SPACE, *TINY),
    # a 4-point grid, cut to 3 by max_trials
    "grid": ("hydra.sweeper.max_trials=3", "model.units=8,16", "optimizer=adam,sgd", *TINY),
    # max_epochs 3, factor 3: brackets of 3 one-epoch trials (best goes on to 3 epochs) and of
    # 2 three-epoch trials: 6 trials in all
    "hyperband": ("hydra.sweeper.hyperband.max_epochs=3", *SPACE, "dataset.limit=200"),
}
EXPECTED_TRIALS = {"random": 3, "bayesian": 3, "grid": 3, "hyperband": 6}


@pytest.fixture(scope="module")
def searches(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Sweep folders of the searches run so far, by (algorithm, launcher)."""
    return {}


def run_search(searches: dict[tuple[str, str], Path], tmp: pytest.TempPathFactory,
               algorithm: str, launcher: str) -> Path:
    if (algorithm, launcher) not in searches:
        cwd = tmp.mktemp(f"{algorithm}-{launcher}")
        done = run_cli("-m", "hydra/sweeper=tuner", f"hydra.sweeper.algorithm={algorithm}",
                       f"hydra/launcher={launcher}", f"sweep.name={algorithm}",
                       *ALGORITHMS[algorithm], cwd=cwd)
        assert done.returncode == 0, done.stderr[-3000:]
        searches[(algorithm, launcher)] = cwd
    return searches[(algorithm, launcher)]


# Every algorithm through the pool (random and grid with -m slow: the asynchronous tests and
# Hydra's suites run them through the pool); through Hydra's basic launcher, random in the
# default suite and the others with -m slow (the launcher does not change what is asked).
@pytest.mark.parametrize("algorithm,launcher", [
    *((a, "pool") if a in ("bayesian", "hyperband") else
      pytest.param(a, "pool", marks=pytest.mark.slow) for a in ALGORITHMS), ("random", "basic"),
    *(pytest.param(a, "basic", marks=pytest.mark.slow) for a in ALGORITHMS if a != "random")])
def test_each_algorithm_runs_to_completion(algorithm: str, launcher: str,
                                          searches: dict[tuple[str, str], Path],
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    cwd = run_search(searches, tmp_path_factory, algorithm, launcher)
    sweep = cwd / "experiments" / algorithm
    trials = records(sweep)
    assert len(trials) == EXPECTED_TRIALS[algorithm]  # max_trials honoured
    assert {t["status"] for t in trials} == {"completed"}
    assert sorted(t["tuner"]["trial"] for t in trials) == \
        sorted(json.loads((sweep / "tuner" / "trials.json").read_text()))
    oracle_trials = list((sweep / "tuner").glob("trial_*/trial.json"))
    assert len(oracle_trials) == len(trials)
    assert all(json.loads(p.read_text())["status"] == "COMPLETED" for p in oracle_trials)
    # distinct configurations, each a point of the space
    points = {tuple(sorted((k, v) for k, v in t["hparams"].items() if k != "train.epochs"))
              for t in trials if "warm_start" not in t}
    assert len(points) == len([t for t in trials if "warm_start" not in t])
    for t in trials:
        assert t["hparams"]["model.units"] in (8, 16, 24, 32)
        assert 0.0 <= t["hparams"]["model.dropout"] <= 0.5
        assert t["hparams"]["optimizer"] in ("adam", "sgd")
    # the end of the sweep is the same as under the grid: leaderboard, plots, promotion
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert len(board) == len(trials)
    best = json.loads((sweep / "best" / "best.json").read_text())
    assert best["trial_id"] == board.loc[board["rank"] == 1, "trial_id"].item()


def test_hyperband_survivors_continue_from_their_parents(
        searches: dict[tuple[str, str], Path], tmp_path_factory: pytest.TempPathFactory) -> None:
    sweep = run_search(searches, tmp_path_factory, "hyperband", "pool") / "experiments/hyperband"
    trials = {t["trial_id"]: t for t in records(sweep)}
    survivors = [t for t in trials.values() if "warm_start" in t]
    assert len(survivors) == 1
    child = survivors[0]
    parent = trials[child["warm_start"]["trial"]]
    start = child["warm_start"]["initial_epoch"]
    assert (start, child["epochs_completed"], child["epochs_trained"]) == (1, 3, 2)
    assert (child["tuner"]["bracket"], child["tuner"]["round"]) == (1, 1)
    assert (parent["tuner"]["bracket"], parent["tuner"]["round"]) == (1, 0)
    assert parent["hparams"] | {"train.epochs": 3} == child["hparams"]
    # it starts from the parent's weights: its first epoch beats a fresh model's first epoch
    # (the parent's, same hyperparameters and seed), and it carries the parent's epochs
    assert child["history"][:start] == parent["history"][:start]
    assert child["history"][start]["loss"] < parent["history"][0]["loss"]
    # the leaderboard counts the pair once: the parent is unranked, continued in the child
    board = pd.read_csv(sweep / "leaderboard.csv").set_index("trial_id")
    assert pd.isna(board.loc[parent["trial_id"], "rank"])
    assert board.loc[parent["trial_id"], "continued_in"] == child["trial_id"]
    assert board.loc[child["trial_id"], "continues"] == parent["trial_id"]
    assert board["rank"].notna().sum() == len(trials) - 1


def test_hparams_dashboard_shows_the_search_space(
        searches: dict[tuple[str, str], Path], tmp_path_factory: pytest.TempPathFactory) -> None:
    cwd = run_search(searches, tmp_path_factory, "hyperband", "pool")
    trials = records(cwd / "experiments" / "hyperband")
    with tensorboard(cwd / "logs" / "hyperband") as url:  # TensorBoard itself reads them
        api = f"{url}/data/plugin/hparams"
        infos = {h["name"]: h for h in post(f"{api}/experiment",
                                            {"experimentName": ""})["hparamInfos"]}
        groups = post(f"{api}/session_groups", {
            "experimentName": "", "allowedStatuses": STATUSES, "colParams": [],
            "startIndex": 0, "sliceSize": 100})["sessionGroups"]
    assert infos["model.dropout"]["domainInterval"] == {"minValue": 0.0, "maxValue": 0.5}
    assert infos["model.units"]["domainDiscrete"] == [8, 16, 24, 32]
    assert infos["optimizer"]["domainDiscrete"] == ["adam", "sgd"]
    assert infos["train.epochs"]["domainDiscrete"] == [1, 3]  # Hyperband's epochs
    assert {Path(g["sessions"][0]["name"]).name for g in groups} == \
        {t["trial_id"] for t in trials}
    # Each trial is named by its search number and the values that vary: distinct, and short.
    assert len({g["name"] for g in groups}) == len(trials)
    assert all(g["name"].startswith(f"#{t}") for g, t in zip(
        sorted(groups, key=lambda g: g["name"]), sorted(t["tuner"]["trial"] for t in trials),
        strict=True))
    for group in groups:
        assert 0.0 <= group["hparams"]["model.dropout"] <= 0.5
        assert group["sessions"][0]["status"] == "STATUS_SUCCESS"


@pytest.mark.slow  # a long sweep; `pytest -m slow` runs it
def test_failures_beyond_max_failures_stop_the_search(tmp_path: Path) -> None:
    done = run_cli("-m", "hydra/sweeper=tuner", "hydra/launcher=basic", "sweep.name=nan",
                   "hydra.sweeper.max_failures=1", "optimizer=sgd",
                   "optimizer.learning_rate=choice(1e12,1e13,1e14)", *TINY, cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "max_failures" in done.stderr.strip().splitlines()[-1]
    trials = records(tmp_path / "experiments" / "nan")
    assert len(trials) == 2  # the second failure exceeds 1: the third trial never starts
    assert all(t["status"] == "failed" and "nan loss" in t["error"] for t in trials)


@pytest.mark.slow  # a long sweep; `pytest -m slow` runs it
def test_an_interrupted_search_resumes_where_it_stopped(tmp_path: Path) -> None:
    args = ["-m", "hydra/sweeper=tuner", "hydra.sweeper.max_trials=4", "sweep.name=cut",
            "hydra.launcher.workers=2", *SPACE, "dataset.limit=200", "train.epochs=2"]
    sweep = tmp_path / "experiments" / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "sweeper", *args], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default)
    deadline = time.time() + 240
    told_file = sweep / "tuner" / "trials.json"
    while time.time() < deadline and proc.poll() is None:  # two trials are told
        if told_file.is_file() and len(json.loads(told_file.read_text() or "{}")) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    before = {t["trial_id"]: t for t in records(sweep) if t["status"] == "completed"}
    assert 2 <= len(before) < 4
    told = json.loads((sweep / "tuner" / "trials.json").read_text())

    done = run_cli("experiments/cut", module="sweeper.resume", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    after = {t["trial_id"]: t for t in records(sweep)}
    assert len(after) == 4 and {t["status"] for t in after.values()} == {"completed"}
    for trial_id, record in before.items():  # completed trials are not run again
        assert after[trial_id]["finished_at"] == record["finished_at"]
        assert after[trial_id]["attempts"] == 1
    # the oracle continued: the told trials kept their ids, the rest came after them
    ids = json.loads((sweep / "tuner" / "trials.json").read_text())
    assert {k: v for k, v in ids.items() if k in told} == told
    assert sorted(ids) == ["0", "1", "2", "3"]


def test_a_rerun_with_another_space_is_refused(
        searches: dict[tuple[str, str], Path], tmp_path_factory: pytest.TempPathFactory) -> None:
    cwd = run_search(searches, tmp_path_factory, "random", "basic")
    sweep = cwd / "experiments" / "random"
    before = sorted(p.name for p in (sweep / "trials").iterdir())
    args = [a.replace("interval(0.0,0.5)", "interval(0.0,0.4)") for a in ALGORITHMS["random"]]
    done = run_cli("-m", "hydra/sweeper=tuner", "hydra/launcher=basic", "sweep.name=random",
                   *args, cwd=cwd)
    assert done.returncode == 2
    assert "was searched with another space" in done.stderr
    assert sorted(p.name for p in (sweep / "trials").iterdir()) == before


def test_the_same_command_with_more_trials_continues_the_search(
        searches: dict[tuple[str, str], Path], tmp_path_factory: pytest.TempPathFactory) -> None:
    cwd = run_search(searches, tmp_path_factory, "bayesian", "basic")
    sweep = cwd / "experiments" / "bayesian"
    before = {t["trial_id"]: t for t in records(sweep)}
    args = [a.replace("max_trials=3", "max_trials=4") for a in ALGORITHMS["bayesian"]]
    done = run_cli("-m", "hydra/sweeper=tuner", "hydra.sweeper.algorithm=bayesian",
                   "hydra/launcher=basic", "sweep.name=bayesian", *args, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    after = {t["trial_id"]: t for t in records(sweep)}
    assert len(after) == 4 and set(before) < set(after)
    assert all(after[k]["finished_at"] == v["finished_at"] for k, v in before.items())
    (new,) = set(after) - set(before)
    assert after[new]["tuner"]["trial"] == "3"
