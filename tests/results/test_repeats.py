"""Repeated configurations (``sweep.repeats``): the interval, the paired test, the leaderboard
by configuration and the promotion that follows it, on records and on a real sweep."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import records, run_cli
from helpers.board import STATUSES, post, tensorboard
from helpers.records import trial_record, write_trial
from scipy import stats

from sweeper.hparams import metric_tag
from sweeper.results import configurations, leaderboard
from sweeper.results.plots import PLOTS


def test_the_interval_is_students_t_interval_of_the_mean() -> None:
    values = [0.80, 0.84, 0.83]
    mean, std, half = configurations.interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    assert mean == pytest.approx(0.8233333) and std == pytest.approx(stats.tstd(values))
    assert (mean - half, mean + half) == pytest.approx((low, high))
    assert configurations.interval([0.9]) == (0.9, None, None)  # one repeat: no interval


def test_the_paired_test_is_wilcoxon_from_six_seeds_and_a_paired_t_below() -> None:
    a = {s: 0.80 + 0.01 * s for s in range(6)}
    b = {s: 0.78 + 0.012 * s + (0.003 if s % 2 else -0.002) for s in range(6)}
    diffs = [a[s] - b[s] for s in range(6)]
    assert configurations.paired_p(a, b) == pytest.approx(stats.wilcoxon(diffs).pvalue)
    three = {s: a[s] for s in range(3)}
    other = {s: b[s] for s in range(3)}
    assert configurations.paired_p(three, other) == pytest.approx(
        stats.ttest_rel(list(three.values()), list(other.values())).pvalue)
    assert configurations.paired_p({0: 0.8}, {0: 0.7}) is None  # one shared seed: no test
    assert configurations.paired_p({0: 0.8, 1: 0.7}, {1: 0.6, 2: 0.5}) is None
    assert configurations.paired_p(three, three) == 1.0


def _repeats(sweep: Path, config: str, values: list[float], units: int, params: int,
             duration: float = 10.0) -> None:
    for k, value in enumerate(values):
        record = trial_record(f"{config}-r{k}", value=value, duration=duration, **{
            "model.units": units})
        record.update(overrides=[f"model.units={units}", *([f"sweep.repeat={k}"] if k else [])],
                      repeat=k, seed=k, cost={"params": params})
        write_trial(sweep, record)


def test_configurations_rank_by_their_mean_with_ties_and_a_parsimonious_promotion(
        tmp_path: Path) -> None:
    # units=64 has the best mean; units=32 is within noise of it on the shared seeds; units=8
    # is clearly worse on every seed.
    _repeats(tmp_path, "a64", [0.90, 0.84, 0.88], 64, 50_000)
    _repeats(tmp_path, "b32", [0.86, 0.87, 0.85], 32, 20_000)
    _repeats(tmp_path, "c08", [0.60, 0.58, 0.61], 8, 5_000)
    ranked, _ = leaderboard.leaderboard(tmp_path)
    table = pd.read_csv(tmp_path / leaderboard.LEADERBOARD_CSV)
    assert list(table["config_id"]) == ["a64-r0", "b32-r0", "c08-r0"]
    assert list(table["n"]) == [3, 3, 3]
    assert table.loc[0, "objective"] == pytest.approx((0.90 + 0.84 + 0.88) / 3)
    assert list(table["tied"]) == [False, True, False]
    assert table.loc[1, "p_value"] > 0.05 > table.loc[2, "p_value"]
    trials = pd.read_csv(tmp_path / leaderboard.LEADERBOARD_TRIALS_CSV)
    assert len(trials) == 9 and set(trials["seed"]) == {0, 1, 2}
    configs = configurations.by_configuration(ranked, "max")
    chosen, why = configurations.tie_break(configs, "params", ranked)
    assert chosen["config_id"] == "b32-r0" and "smallest model" in why
    assert configurations.tie_break(configs, "none", ranked)[0]["config_id"] == "a64-r0"
    assert configurations.shown(configs.iloc[0]).endswith("(n=3)")


def test_compare_tests_each_sweeps_best_configuration_against_the_best_sweeps(
        tmp_path: Path) -> None:
    sweeps = {"wide": [0.90, 0.84, 0.88], "narrow": [0.60, 0.58, 0.61], "mid": [0.86, 0.87, 0.85]}
    for name, values in sweeps.items():
        _repeats(tmp_path / name, f"{name}-c", values, 64, 50_000)
    rows = leaderboard.compare([tmp_path / n for n in sweeps], None, None).set_index("sweep")
    rows.index = [Path(s).name for s in rows.index]
    assert rows["best_sweep"].tolist() == [True, False, False]
    assert rows.loc["wide", "shown"] == configurations.shown({"objective": 0.8733333, "n": 3,
                                                             "objective_ci": configurations
                                                             .interval(sweeps["wide"])[2]})
    assert rows.loc["mid", "tied"] and not rows.loc["narrow", "tied"]
    assert rows.loc["narrow", "p_value"] < 0.05 <= rows.loc["mid", "p_value"]
    assert rows.loc["mid", "p_value"] == pytest.approx(
        configurations.paired_p(dict(enumerate(sweeps["wide"])), dict(enumerate(sweeps["mid"]))))


@pytest.fixture(scope="module")
def repeated_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real sweep: 2 configurations x 2 seeds, then extended to 3 seeds."""
    cwd = tmp_path_factory.mktemp("repeats")
    args = ("-m", "model=mlp", "model.units=8,32", "train.epochs=3", "sweep.name=rep",
            "hydra.launcher.live=false")
    done = run_cli(*args, "sweep.repeats=2", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    first = {r["trial_id"]: r["finished_at"] for r in records(cwd / "experiments" / "rep")}
    assert len(first) == 4
    (cwd / "first.json").write_text(json.dumps(first))
    done = run_cli(*args, "sweep.repeats=3", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    (cwd / "stdout.txt").write_text(done.stdout + done.stderr)
    return cwd


def test_a_repeated_sweep_trains_each_configuration_once_per_seed(repeated_sweep: Path) -> None:
    sweep = repeated_sweep / "experiments" / "rep"
    trials = records(sweep)
    assert len(trials) == 6
    assert sorted((r["hparams"]["model.units"], r["seed"]) for r in trials) == \
        [(8, 0), (8, 1), (8, 2), (32, 0), (32, 1), (32, 2)]
    assert all("sweep.repeat" not in r["hparams"] for r in trials)  # not a hyperparameter
    # Going from 2 seeds to 3 trains only the third: the first 4 were not run again.
    first = json.loads((repeated_sweep / "first.json").read_text())
    again = {r["trial_id"]: r["finished_at"] for r in trials if r["trial_id"] in first}
    assert again == first
    # The seeds differ in what they learn (else the repeats would measure nothing).
    by_units = {u: [r["metrics"]["val_accuracy"] for r in trials if r["hparams"]["model.units"]
                    == u] for u in (8, 32)}
    assert len(set(by_units[32])) > 1


def test_the_leaderboard_and_promotion_speak_of_configurations(repeated_sweep: Path) -> None:
    sweep = repeated_sweep / "experiments" / "rep"
    table = pd.read_csv(sweep / leaderboard.LEADERBOARD_CSV)
    assert list(table["n"]) == [3, 3] and table["objective_ci"].notna().all()
    top = table.iloc[0]
    # It learned: the best configuration's mean is far above chance (0.1 on ten digits).
    assert top["objective"] > 0.4
    best = json.loads((sweep / "best" / "best.json").read_text())
    chosen = best["configuration"]
    assert chosen["n"] == 3 and len(chosen["repeats"]) == 3
    row = table[table["config_id"] == chosen["config_id"]].iloc[0]
    assert chosen["mean"] == pytest.approx(row["objective"])
    assert chosen["config_id"] == top["config_id"] or bool(row["tied"])  # #1, or tied with it
    # The promoted checkpoint is the configuration's best repeat; the number to quote its mean.
    assert best["trial_id"] == max(chosen["repeats"], key=chosen["repeats"].get)
    assert math.isclose(sum(chosen["repeats"].values()) / 3, chosen["mean"])
    assert all((sweep / plot).stat().st_size > 0 for plot in PLOTS)  # by configuration
    out = (repeated_sweep / "stdout.txt").read_text()
    assert "2 configurations x 3 seeds" in out and "(n=3)" in out
    assert f"configuration {chosen['config_id']} (" in out and chosen["why"] in out


def test_a_kept_checkpoint_has_its_configuration_restated_from_every_repeat(
        repeated_sweep: Path) -> None:
    """A third seed that does not beat the promoted repeat keeps its checkpoint; best.json
    then speaks of the configuration's three repeats, not of the two it was promoted on."""
    sweep = repeated_sweep / "experiments" / "rep"
    best_json = sweep / "best" / "best.json"
    best = json.loads(best_json.read_text())
    stale = {**best["configuration"], "n": 2, "repeats": dict(
        list(best["configuration"]["repeats"].items())[:2])}
    best_json.write_text(json.dumps({**best, "configuration": stale}))
    kept = run_cli(str(sweep), cwd=sweep, module="sweeper.promote")
    assert kept.returncode == 0, kept.stderr[-2000:]
    assert "kept" in kept.stdout and "(n=3)" in kept.stdout
    again = json.loads(best_json.read_text())
    assert again["version"] == best["version"]  # not re-exported
    assert again["configuration"] == best["configuration"]


def test_the_dashboard_groups_the_repeats_and_its_average_is_the_leaderboards_mean(
        repeated_sweep: Path) -> None:
    """TensorBoard groups sessions with equal hyperparameters: each configuration is one group,
    its AVG the leaderboard's mean, its MIN and MAX the repeats' range, value by value."""
    sweep = repeated_sweep / "experiments" / "rep"
    table = pd.read_csv(sweep / leaderboard.LEADERBOARD_CSV).set_index("label")
    trials = pd.read_csv(sweep / leaderboard.LEADERBOARD_TRIALS_CSV)
    tag = metric_tag("val_accuracy")
    seen: dict[str, dict[str, float]] = {}
    with tensorboard(repeated_sweep / "logs" / "rep") as url:
        for aggregation in ("AGGREGATION_AVG", "AGGREGATION_MIN", "AGGREGATION_MAX"):
            groups = post(f"{url}/data/plugin/hparams/session_groups", {
                "experimentName": "", "allowedStatuses": STATUSES, "colParams": [],
                "aggregationType": aggregation, "aggregationMetric": {"tag": tag},
                "startIndex": 0, "sliceSize": 100})["sessionGroups"]
            assert len(groups) == len(table) == 2
            for group in groups:
                assert len(group["sessions"]) == 3  # the three seeds of one configuration
                ids = {Path(s["name"]).name for s in group["sessions"]}
                (config,) = set(trials.loc[trials["trial_id"].isin(ids), "config_label"])
                value = next(m["value"] for m in group["metricValues"] if m["name"]["tag"] == tag)
                seen.setdefault(config, {})[aggregation] = value
    for config, shown in seen.items():
        repeats = trials.loc[trials["config_label"] == config, "val_accuracy"]
        assert shown["AGGREGATION_AVG"] == pytest.approx(table.loc[config, "val_accuracy"])
        assert shown["AGGREGATION_MIN"] == pytest.approx(repeats.min())
        assert shown["AGGREGATION_MAX"] == pytest.approx(repeats.max())


def test_a_tuner_search_with_repeats_tells_the_oracle_each_configurations_mean(
        tmp_path: Path) -> None:
    done = run_cli("-m", "hydra/sweeper=tuner", "hydra.sweeper.algorithm=bayesian",
                   "hydra.sweeper.max_trials=2", "model.units=choice(8,32)",
                   "model.dropout=interval(0.0,0.3)", "sweep.repeats=2", "train.epochs=2",
                   "sweep.name=t", "hydra.launcher.live=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "experiments" / "t"
    trials = records(sweep)
    assert len(trials) == 4 and sorted(r["seed"] for r in trials) == [0, 0, 1, 1]
    for number in ("0", "1"):
        repeats = [r["metrics"]["val_accuracy"] for r in trials
                   if r["tuner"]["trial"] == number]
        told = json.loads((sweep / "tuner" / f"trial_{number}" / "trial.json").read_text())
        assert len(repeats) == 2 and told["score"] == pytest.approx(sum(repeats) / 2)
    assert "2 configurations x 2 seeds" in done.stdout


def test_the_report_shows_configurations_and_each_class_of_the_best(
        repeated_sweep: Path) -> None:
    sweep = repeated_sweep / "experiments" / "rep"
    done = run_cli(str(sweep), module="sweeper.report", cwd=repeated_sweep)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 of 2 configurations, 6 trials" in done.stdout and done.stdout.count("(n=3)") == 2
    assert "┃ class ┃ precision ┃ recall ┃" in done.stdout  # the best trial, class by class
    compared = run_cli(str(sweep), "--compare", str(sweep), "--format", "csv",
                       module="sweeper.report", cwd=repeated_sweep)
    assert compared.returncode == 0, compared.stderr[-2000:]
    rows = pd.read_csv(io.StringIO(compared.stdout))
    table = pd.read_csv(sweep / leaderboard.LEADERBOARD_CSV)
    assert list(rows["n"]) == [3, 3]
    assert rows["objective"].tolist() == pytest.approx([table.loc[0, "objective"]] * 2)
    assert rows["tied"].tolist() == [False, True] and rows["p_value"].iloc[1] == 1.0


def test_the_live_table_names_each_seed_and_counts_configurations_whose_seeds_are_in() -> None:
    from sweeper.launch.jobs import Outcome
    from sweeper.launch.progress import Board

    jobs = [(i, [f"model.units={u}", f"sweep.repeat={k}", "sweep.repeats=3"])
            for i, (k, u) in enumerate((k, u) for k in range(3) for u in (8, 32))]
    board = Board(jobs, slots=2, live=False)
    assert [r.label for r in board.rows.values()][:3] == [
        "model.units=8 · seed 1/3", "model.units=32 · seed 1/3", "model.units=8 · seed 2/3"]
    assert "0/2 configurations with 3/3 seeds" in board.summary()
    for idx in (0, 2, 4, 1):  # every seed of units=8, one of units=32
        board.started(idx, "cpu:0")
        board.finished(idx, Outcome("completed", 0.9))
    assert "1/2 configurations with 3/3 seeds" in board.summary()
    # Without repeats, no such count.
    assert "seeds" not in Board([(0, ["model.units=8"])], slots=1, live=False).summary()
