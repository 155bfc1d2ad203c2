"""One table of key roles: the trial id, re-runs, resume and HParams all read it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import records, run_cli

from sweeper.config import keys
from sweeper.record import SCHEMA, RecordError, TrialRecord


def test_config_yaml_leaves_exactly_the_bookkeeping_keys_out_of_the_trial_id() -> None:
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="sweeper.conf", version_base="1.3"):
        cfg = compose("config", return_hydra_config=True)
    excluded = list(cfg.hydra.job.config.override_dirname.exclude_keys)
    assert sorted(excluded) == sorted(keys.excluded_from_id())


@pytest.mark.parametrize(("key", "bookkeeping", "hparam"), [
    ("sweep.name", True, False), ("sweep.retry_failed", True, False),
    ("sweep.metric", False, False), ("paths.logs", True, False), ("search", True, False),
    ("tuner.trial", False, False), ("tuner.round", True, False),
    ("hydra.launcher.workers", True, False),
    ("train.warm_start", False, False), ("model.units", False, True), ("+model.depth", False, True),
    ("dataset.origin", True, False), ("dataset.cache", True, False),
    ("dataset.cache_dir", True, False), ("dataset.files.0.file_hash", False, False),
    ("augment.zoom", False, True), ("dataset.resize", False, True),
])
def test_roles(key: str, bookkeeping: bool, hparam: bool) -> None:
    assert keys.is_bookkeeping(key) is bookkeeping
    assert keys.is_hparam(key) is hparam


def test_labels_name_what_sets_a_trial_apart() -> None:
    lines = ["model.units=16", "optimizer=adam", "sweep.name=s", "paths.logs=/x"]
    assert keys.label(lines) == "model.units=16 optimizer=adam"
    assert keys.label(lines, common={"optimizer=adam"}) == "model.units=16"
    assert keys.label(["sweep.name=s"]) == "(defaults)"


@pytest.mark.slow  # a long sweep; `pytest -m slow` runs it
def test_retry_failed_reruns_failed_trials_in_their_own_folders(tmp_path: Path) -> None:
    args = ["-m", "optimizer=sgd", "optimizer.learning_rate=0.01,1e30", "model.units=8",
            "train.epochs=1", "sweep.name=retry", "hydra.launcher.workers=1"]
    first = run_cli(*args, cwd=tmp_path)
    # A sweep with a failed trial ends with everything else, and exits 1 saying so.
    assert first.returncode == 1, first.stderr[-2000:]
    said = "1 trial failed (the leaderboard says why; sweep.allow_failures=true lets the sweep " \
           "exit 0)"
    assert first.stderr.strip().splitlines()[-1] == f"sweeper: error: {said}"
    sweep = tmp_path / "experiments" / "retry"
    assert json.loads((sweep / "sweep.json").read_text())["problems"] == [said]
    before = {r["trial_id"]: r for r in records(sweep)}
    assert sorted(r["status"] for r in before.values()) == ["completed", "failed"]
    completed = next(t for t, r in before.items() if r["status"] == "completed")
    kept = (sweep / "trials" / completed / "trial.json").read_text()

    again = run_cli(*args, "sweep.retry_failed=true", "sweep.allow_failures=true", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]  # failures allowed
    after = {r["trial_id"]: r for r in records(sweep)}
    assert set(after) == set(before)  # the same folders: retry_failed is not in the trial id
    assert (sweep / "trials" / completed / "trial.json").read_text() == kept
    failed = next(t for t in after if t != completed)
    assert after[failed]["attempts"] == 2 and after[failed]["status"] == "failed"
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert sorted(board["trial_id"]) == sorted(before)  # one row each


def test_a_record_of_today_reads_and_writes_back_the_same(grid_sweep: Path, tmp_path: Path) -> None:
    path = next((grid_sweep / "experiments" / "grid" / "trials").glob("*/trial.json"))
    data = json.loads(path.read_text())
    record = TrialRecord.from_dict(data)
    assert record.to_dict() == {**data, "schema": SCHEMA}
    record.write(tmp_path)
    assert TrialRecord.load(tmp_path) == record


def test_a_record_of_a_newer_sweeper_is_refused() -> None:
    with pytest.raises(RecordError, match="written by a newer sweeper"):
        TrialRecord.from_dict({"schema": SCHEMA + 1, "sweep": "s", "trial_id": "t",
                               "status": "running",
                               "objective": {"name": "val_accuracy", "mode": "max"}})
