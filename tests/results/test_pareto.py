"""The leaderboard under constraints and several objectives, on records: feasibility, Pareto
ranks against a brute-force dominance check, the knee, pareto.png."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.records import trial_record, write_trial

from sweeper.config.objectives import goals
from sweeper.results import leaderboard, pareto

METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")


def _dominates(a: np.ndarray, b: np.ndarray, maximize: list[bool]) -> bool:
    better_or_equal = [x >= y if m else x <= y for x, y, m in zip(a, b, maximize, strict=True)]
    better = [x > y if m else x < y for x, y, m in zip(a, b, maximize, strict=True)]
    return all(better_or_equal) and any(better)


@pytest.mark.parametrize("seed", range(5))
def test_non_dominated_sorting_agrees_with_dominance_checked_pair_by_pair(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, size=(30, 3)).astype(float)  # ties on purpose
    maximize = [True, False, True]
    ranks = pareto.ranks(values, maximize)
    for i, j in itertools.permutations(range(len(values)), 2):
        if _dominates(values[j], values[i], maximize):
            assert ranks[j] < ranks[i]  # whatever dominates a trial sorts before it
    for i in range(len(values)):  # each rank's member is dominated by one of the rank above
        if ranks[i] > 1:
            assert any(_dominates(values[j], values[i], maximize)
                       for j in range(len(values)) if ranks[j] == ranks[i] - 1)


def test_the_knee_is_the_front_member_nearest_its_ideal_point() -> None:
    front = pd.DataFrame({"objective": [0.99, 0.97, 0.90], "latency_ms": [10.0, 2.0, 1.0]})
    # Scaled over the front: (0, 1), (0.22, 0.11), (1, 0): the middle one gives up least.
    assert pareto.knee_of(front, ["objective", "latency_ms"], [True, False]) == 1


def _sweep(tmp_path: Path, constraints: list[str], objectives: list[str]) -> Path:
    sweep = tmp_path / "s"
    rows = [("a", 0.95, 0.9, 50_000), ("b", 0.93, 0.3, 8_000), ("c", 0.90, 0.2, 2_000),
            ("d", 0.91, 0.8, 9_000), ("e", 0.97, 3.0, 400_000)]
    for trial_id, value, latency, params in rows:
        record = trial_record(trial_id, value=value)
        record["cost"] = {"params": params, "latency_ms": latency, "tflite_mb": params * 4e-6}
        write_trial(sweep, record)
    (sweep / "multirun.yaml").write_text(
        f"sweep:\n  metric: val_accuracy\n  mode: max\n  constraints: {constraints}\n"
        f"  objectives: {objectives}\n  promote: knee\ntrain:\n  metrics: []\n")
    return sweep


def test_the_leaderboard_ranks_feasible_trials_and_marks_the_front(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, ["params<=100000", "latency_ms<=2"],
                   ["val_accuracy:max", "latency_ms:min"])
    ranked, _ = leaderboard.leaderboard(sweep)
    table = pd.read_csv(sweep / leaderboard.LEADERBOARD_CSV).set_index("trial_id")
    # e breaks params<=100000; its value would have ranked it first.
    assert table.loc["e", "infeasible"] == "params=400,000 breaks params<=100000"
    assert pd.isna(table.loc["e", "rank"]) and pd.isna(table.loc["e", "pareto_rank"])
    assert list(ranked.loc[ranked["rank"].notna(), "trial_id"]) == ["a", "b", "d", "c"]
    # Front: b (0.93, 0.3), c (0.90, 0.2), a (0.95, 0.9); d (0.91, 0.8) is dominated by b.
    assert set(table.index[table["front"]]) == {"a", "b", "c"}
    assert table.loc["d", "pareto_rank"] == 2
    assert table["knee"].sum() == 1 and table.loc["b", "knee"]
    from sweeper.results import plots

    written = plots.plots(sweep, ranked)
    assert sweep / pareto.PARETO_PNG in written and (sweep / pareto.PARETO_PNG).stat().st_size


def test_constraints_are_those_of_the_sweeps_last_run(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, [], ["val_accuracy:max", "latency_ms:min"])
    table = leaderboard.load(sweep)[0]
    assert "infeasible" not in table  # nothing constrained: e ranks again
    assert leaderboard.rank(table).iloc[0]["trial_id"] == "e"
    g = goals({"metric": "val_accuracy", "mode": "max", "constraints": ["params<=1e4"]}, METRICS)
    assert pareto.feasibility(table, g).set_index("trial_id")["infeasible"].notna().sum() == 2
