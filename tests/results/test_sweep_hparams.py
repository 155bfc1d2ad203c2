"""A grid sweep runs every combination, and TensorBoard itself lists every trial in HParams."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from conftest import records, run_cli
from helpers.board import STATUSES, post, session_ends, tensorboard

from sweeper.config.objectives import COSTS
from sweeper.hparams import metric_tag


def test_grid_multirun_yields_one_completed_trial_per_combination(grid_sweep: Path) -> None:
    found = records(grid_sweep / "experiments" / "grid")
    assert [r["status"] for r in found] == ["completed"] * 4
    combos = {(r["hparams"]["optimizer"], r["hparams"]["model.units"]) for r in found}
    assert combos == {("adam", 8), ("adam", 16), ("sgd", 8), ("sgd", 16)}
    assert len({r["trial_id"] for r in found}) == 4
    assert all(r["sweep"] == "grid" for r in found)


def test_tensorboard_hparams_dashboard_lists_every_trial(grid_sweep: Path) -> None:
    found = {r["trial_id"]: r for r in records(grid_sweep / "experiments" / "grid")}
    with tensorboard(grid_sweep / "logs" / "grid") as url:
        api = f"{url}/data/plugin/hparams"
        experiment = post(f"{api}/experiment", {"experimentName": ""})
        infos = {h["name"]: h for h in experiment["hparamInfos"]}
        assert infos["optimizer"]["domainDiscrete"] == ["adam", "sgd"]
        assert infos["model.units"]["domainDiscrete"] == [8, 16]
        assert infos["model.dropout"]["domainDiscrete"] == [0.2]
        # Each group option brings its own learning rate: both are in the domain, so
        # TensorBoard's filter hides no trial.
        assert infos["optimizer.learning_rate"]["domainDiscrete"] == [0.001, 0.01]
        # What varies is marked so, and comes first: the dashboard's default columns.
        varying = [h["name"] for h in experiment["hparamInfos"] if h.get("differs")]
        assert varying == ["model.units", "optimizer", "optimizer.learning_rate"]
        assert [h["name"] for h in experiment["hparamInfos"]][:3] == varying
        metrics = {(m["name"].get("group", ""), m["name"]["tag"])
                   for m in experiment["metricInfos"]}
        board = pd.read_csv(grid_sweep / "experiments" / "grid" / "leaderboard.csv")
        shown = {c for c in board if c.startswith(("val_", "test_")) or c in ("accuracy", "loss")
                 or c in COSTS}  # and what each model costs
        assert "flops" in shown and "latency_ms" not in shown  # TensorFlow Lite: not asked
        assert metrics == {("", metric_tag(c)) for c in shown}  # every leaderboard metric
        groups = post(f"{api}/session_groups", {
            "experimentName": "", "allowedStatuses": STATUSES, "colParams": [],
            "startIndex": 0, "sliceSize": 100})["sessionGroups"]
    by_run = {Path(g["sessions"][0]["name"]).name: g for g in groups}
    assert set(by_run) == set(found)
    for trial_id, group in by_run.items():
        record = found[trial_id]
        assert group["hparams"]["optimizer"] == record["hparams"]["optimizer"]
        assert group["hparams"]["model.units"] == record["hparams"]["model.units"]
        (session,) = group["sessions"]
        assert session["status"] == "STATUS_SUCCESS"
        values = {(m["name"].get("group", ""), m["name"]["tag"]): m["value"]
                  for m in group["metricValues"]}
        assert values[("", "test_accuracy")] == record["metrics"]["test_accuracy"]
        assert values[("", "best/val_accuracy")] == record["metrics"]["val_accuracy"]


def test_failed_trial_shows_failure_status_in_tensorboard(tmp_path: Path) -> None:
    from tensorboard.plugins.hparams import api_pb2

    done = run_cli("optimizer=sgd", "optimizer.learning_rate=1e30", "model.units=8",
                   "train.epochs=1", "sweep.name=bad", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (record,) = records(tmp_path / "experiments" / "bad")
    assert record["status"] == "failed"
    assert session_ends(tmp_path / record["tensorboard_run"]) == [api_pb2.STATUS_FAILURE]
