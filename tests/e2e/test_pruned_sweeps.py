"""Real sweeps with a pruner: Hydra's grid on Hydra's basic launcher, the tuner on the pool (the
Ray launcher's is in test_ray.py); the live table's account of a pruned trial."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pandas as pd
import pytest
from conftest import poll, records, run_cli, start
from helpers.board import session_ends
from tensorboard.plugins.hparams import api_pb2

from sweeper.launch.jobs import Outcome
from sweeper.launch.progress import Board
from sweeper.record import SCHEMA, Objective, Pruned, Status, TrialRecord

TINY = ("train.epochs=3", "dataset.limit=200")
FIRST_RUNG = re.compile(r"val_accuracy 0\.\d+ < 0\.\d+, the top 1 of 2 trials at rung 1 "
                        r"\(epoch 1\)")


def test_a_hopeless_trial_is_pruned_at_its_first_rung_and_a_good_one_never(tmp_path: Path) -> None:
    # Hydra's own grid sweeper and sequential launcher: the good trial runs first.
    args = ("-m", "hydra/launcher=basic", "optimizer.learning_rate=0.01,1.0", "pruner=asha",
            *TINY, "sweep.name=asha")
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "experiments" / "asha"
    trials = {r["hparams"]["optimizer.learning_rate"]: r for r in records(sweep)}
    finished = [r["finished_at"] for r in records(sweep)]
    good, hopeless = trials[0.01], trials[1.0]
    assert good["status"] == "completed" and good["epochs_completed"] == 3
    assert "pruned" not in good
    assert hopeless["status"] == "pruned" and hopeless["epochs_completed"] == 1
    assert hopeless["schema"] == SCHEMA
    why = hopeless["pruned"]
    assert (why["rule"], why["epoch"], why["rung"]) == ("asha", 1, 1)
    assert FIRST_RUNG.fullmatch(why["reason"]), why["reason"]
    # It keeps its checkpoint and is scored on the test split like a completed trial.
    assert (sweep / "trials" / hopeless["trial_id"] / hopeless["checkpoint"]).is_file()
    assert hopeless["objective"]["value"] == hopeless["history"][0]["val_accuracy"]
    assert 0 <= hopeless["metrics"]["test_accuracy"] <= 1
    # It ranks on what it reached, below the good one here, with the reason beside it.
    board = pd.read_csv(sweep / "leaderboard.csv").set_index("trial_id")
    assert board.loc[good["trial_id"], "rank"] == 1
    assert (board.loc[hopeless["trial_id"], ["rank", "status", "pruned"]].tolist()
            == [2, "pruned", why["reason"]])
    assert "| pruned " in (sweep / "leaderboard.md").read_text()  # ranked: not bold
    assert json.loads((sweep / "best" / "best.json").read_text())["trial_id"] == good["trial_id"]
    # TensorBoard has no "pruned": the session ends as a success (see README).
    assert session_ends(tmp_path / hopeless["tensorboard_run"]) == [api_pb2.STATUS_SUCCESS]

    again = run_cli(*args, cwd=tmp_path)  # a re-run keeps the pruner's decision
    assert again.returncode == 0, again.stderr[-3000:]
    # The grid sweeper does not even launch it: a pruned trial is finished for good.
    assert "grid: 2 of 2 trials finished in an earlier run" in again.stdout + again.stderr
    assert [r["finished_at"] for r in records(sweep)] == finished


def test_a_random_search_prunes_and_tells_the_oracle_what_pruned_trials_reached(
        tmp_path: Path) -> None:
    done = run_cli("-m", "hydra/sweeper=tuner", "hydra.sweeper.algorithm=random",
                   "hydra.sweeper.max_trials=6",
                   "optimizer.learning_rate=tag(log, interval(1e-4,1.0))", "pruner=asha", *TINY,
                   "sweep.name=tuned", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "experiments" / "tuned"
    trials = records(sweep)
    pruned = [t for t in trials if t["status"] == "pruned"]
    assert len(trials) == 6 and pruned
    assert {t["status"] for t in trials} == {"completed", "pruned"}
    assert all(t["pruned"]["reason"] and t["epochs_completed"] == 1 for t in pruned)
    assert (sweep / "best" / "best.json").is_file()
    log = done.stdout + done.stderr
    assert re.search(r"trial #\d pruned on CPU#\d in [\d.]+s val_accuracy [\d.]+ \(val_accuracy",
                     log), log[-3000:]
    # keras-tuner's own record of each pruned trial: completed, with the value it reached, so
    # a Bayesian search would learn from it.
    ids = json.loads((sweep / "tuner" / "trials.json").read_text())
    told = {folder: json.loads((sweep / "tuner" / f"trial_{number}" / "trial.json").read_text())
            for number, folder in ids.items()}
    for trial in pruned:
        state = told[trial["trial_id"]]
        assert state["status"] == "COMPLETED" and state["message"] == trial["pruned"]["reason"]
        assert state["score"] == trial["objective"]["value"]


def test_the_live_table_counts_pruned_trials_and_says_why(tmp_path: Path, caplog) -> None:
    record = TrialRecord(sweep="s", trial_id="t", objective=Objective("val_accuracy", "max"),
                         hparams={"train.epochs": 12})
    record.epoch_done({"val_accuracy": 0.41})
    why = Pruned("median", 1, "val_accuracy 0.41 < median 0.78 at epoch 1 of 3 trials")
    record.prune(why)
    record.complete(1, {"test_accuracy": 0.4})
    record.write(tmp_path)
    board = Board([(0, ["optimizer.learning_rate=1.0"]), (1, ["optimizer.learning_rate=0.01"])],
                  slots=2, live=False)
    board.output_dir(0, str(tmp_path))
    board.started(0, "CPU#0")
    caplog.set_level("INFO")
    board.finished(0, Outcome(Status.PRUNED.value, 0.41, note=why.reason))
    assert board.rows[0].epoch == "1/12" and board.rows[0].metric == "val_accuracy 0.4100"
    assert "1/2 done: 1 pruned, 1 pending" in board.summary()
    assert ("trial #0 pruned on CPU#0 in" in caplog.text
            and "val_accuracy 0.4100 (val_accuracy 0.41 < median 0.78" in caplog.text)


@pytest.mark.slow
def test_an_interrupted_trial_is_judged_where_it_resumes_against_what_was_recorded(
        tmp_path: Path) -> None:
    # First without a pruner: the good trial completes, the slow one is interrupted mid-way.
    # A backup after every epoch: the trial resumes from the epoch its record says it reached.
    args = ["-m", "optimizer.learning_rate=0.01,0.00001", "model.units=8", "train.epochs=30",
            "sweep.name=r", "hydra.launcher.workers=1", "hydra.launcher.live=false",
            "train.backup_every_s=0"]
    proc = start(tmp_path, *args)
    sweep = tmp_path / "experiments" / "r"
    poll(sweep, proc, lambda r: r["status"] == "completed")
    slow = poll(sweep, proc, lambda r: r["status"] == "running" and r["epochs_completed"] >= 3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    (cut,) = [r for r in records(sweep) if r["trial_id"] == slow["trial_id"]]

    # Again with a pruner: the slow trial is judged where it resumes, before it trains on.
    again = run_cli(*args, "pruner=median", "pruner.min_epochs=1", "pruner.min_trials=1",
                    cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    (resumed,) = [r for r in records(sweep) if r["trial_id"] == slow["trial_id"]]
    assert resumed["status"] == "pruned" and resumed["attempts"] == 2
    assert resumed["pruned"]["epoch"] == resumed["resumed_from_epoch"] == \
        resumed["epochs_completed"] >= 2
    assert resumed["epochs_trained"] == cut["epochs_trained"]  # not one epoch more
    assert re.fullmatch(r"val_accuracy 0\.\d+ < median 0\.\d+ at epoch \d+ of 1 trial",
                        resumed["pruned"]["reason"])
