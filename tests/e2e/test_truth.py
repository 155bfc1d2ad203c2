"""One truth: the dashboard shows the leaderboard's figures, one process owns a sweep folder, a
configuration runs once, a damaged best/ is repaired, broken folders are refused up front."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import records, run_cli
from helpers.board import STATUSES, post, tensorboard

from sweeper.hparams import METRICS, metric_tag


@pytest.fixture(scope="module")
def overshoot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep whose learning rates are too large: each trial's best epoch is its first."""
    cwd = tmp_path_factory.mktemp("overshoot")
    done = run_cli("-m", "optimizer=sgd", "optimizer.momentum=0.9",
                   "optimizer.learning_rate=0.3,1.0", "model.units=16", "train.epochs=3",
                   "sweep.name=over", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd


def test_dashboard_shows_the_leaderboards_figures_not_the_last_epochs(overshoot: Path) -> None:
    sweep = overshoot / "experiments" / "over"
    board = pd.read_csv(sweep / "leaderboard.csv").set_index("trial_id")
    assert (board["best_epoch"] < board["epochs"]).any()  # the case that used to disagree
    with tensorboard(overshoot / "logs" / "over") as url:
        api = f"{url}/data/plugin/hparams"
        groups = post(f"{api}/session_groups", {
            "experimentName": "", "allowedStatuses": STATUSES, "colParams": [],
            "startIndex": 0, "sliceSize": 100})["sessionGroups"]
    assert len(groups) == len(board) == 2
    for group in groups:
        trial_id = Path(group["sessions"][0]["name"]).name
        shown = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        for column, _ in METRICS:
            assert shown[metric_tag(column)] == board.loc[trial_id, column], column
    # The table's narrow first column tells trials apart: what differs between them comes first.
    names = [g["name"] for g in groups]
    assert len({name[:12] for name in names}) == len(names), names


def test_test_scores_sit_at_the_best_epochs_step_and_the_sweep_run_is_not_empty(
        overshoot: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (record, *_) = records(overshoot / "experiments" / "over")
    run = overshoot / record["tensorboard_run"]

    def steps(folder: Path, tag: str) -> list[int]:
        accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0}).Reload()
        return [event.step for event in accumulator.Tensors(tag)]

    curve = steps(run / "validation", "epoch_accuracy")
    assert steps(run, "test_accuracy") == [record["best_epoch"] - 1]
    assert steps(run, "best/val_accuracy") == [record["best_epoch"] - 1]
    assert record["best_epoch"] - 1 in curve
    # The sweep's own run (the logdir's root, which holds the HParams experiment) has a curve:
    # the best objective after each finished trial.
    assert steps(overshoot / "logs" / "over", "sweep/best_val_accuracy") == [1, 2]
    # Run names short enough for TensorBoard's run list: keys without their group's prefix.
    assert record["trial_id"].startswith("units=16_learning_rate=")


@pytest.fixture
def first_sweep(tmp_path: Path) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-m", "sweeper", "-m", "model.units=8",
                             "train.epochs=200", "sweep.name=same", "hydra.launcher.workers=1"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_a_second_sweep_of_the_same_folder_is_refused_naming_the_first(
        tmp_path: Path, first_sweep: subprocess.Popen) -> None:
    sweep = tmp_path / "experiments" / "same"
    deadline = time.time() + 120
    while not list(sweep.glob("trials/*/trial.json")):
        assert time.time() < deadline and first_sweep.poll() is None
        time.sleep(0.2)
    second = run_cli("-m", "model.units=8", "train.epochs=200", "sweep.name=same", cwd=tmp_path)
    assert second.returncode == 2
    assert second.stderr == (f"sweeper: error: sweep same is running (pid {first_sweep.pid} on "
                             f"{socket.gethostname()}); wait for it to end, or use another "
                             "sweep.name\n")
    assert first_sweep.poll() is None  # the first goes on
    assert not (sweep / "multirun.yaml.tmp").exists()


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from sweeper import lock; "
            "held = lock.hold(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], text=True,
                              stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    probe = ("import sys; from pathlib import Path; from sweeper import lock; "
             "lock.hold(Path(sys.argv[1])); print('mine')")
    refused = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode != 0 and f"pid {holder.pid}" in refused.stderr
    holder.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel releases the lock
    holder.wait(timeout=30)
    taken = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True,
                           text=True, timeout=60)
    assert taken.returncode == 0 and taken.stdout.strip() == "mine", taken.stderr


def test_a_configuration_given_twice_trains_once(tmp_path: Path) -> None:
    done = run_cli("-m", "model.dropout=0.1,0.1", "model.units=8", "train.epochs=1",
                   "sweep.name=twice", "hydra.launcher.workers=2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = records(tmp_path / "experiments" / "twice")
    assert record["status"] == "completed" and record["attempts"] == 1
    assert len(pd.read_csv(tmp_path / "experiments" / "twice" / "leaderboard.csv")) == 1
    run = tmp_path / record["tensorboard_run"]
    assert len(list(run.glob("events.out.tfevents.*"))) == 1  # one process wrote the run


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """An existing sweep folder on a read-only mount (root ignores permission bits)."""
    folder = tmp_path / "experiments" / "ro" / "trials"
    folder.mkdir(parents=True)
    bound = subprocess.run(["mount", "--bind", str(folder.parent), str(folder.parent)],
                           capture_output=True)
    if bound.returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder.parent)], check=True,
                       capture_output=True)
        yield folder.parent
    finally:
        subprocess.run(["umount", "-l", str(folder.parent)], capture_output=True)


def test_a_sweep_folder_that_cannot_be_written_is_refused_before_any_work(
        tmp_path: Path, read_only: Path) -> None:
    done = run_cli("-m", "model.units=8,16", "train.epochs=1", "sweep.name=ro", cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("sweeper: error: paths.experiments=experiments: not writable (")
    assert str(read_only) in line
    assert not (tmp_path / "logs").exists()


@pytest.fixture
def sweep(grid_sweep: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(grid_sweep / "experiments" / "grid", tmp_path / "grid"))


def test_promote_repairs_a_damaged_best_and_passes_over_a_truncated_checkpoint(
        sweep: Path) -> None:
    first, runner_up = pd.read_csv(sweep / "leaderboard.csv")["trial_id"][:2]
    winner = sweep / "trials" / first / "checkpoints" / "best.keras"
    for damaged in (sweep / "best" / "model.keras", winner):
        damaged.write_bytes(damaged.read_bytes()[:1000])  # truncated
    done = run_cli(str(sweep), cwd=sweep, module="sweeper.promote")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"sweeper: promoted trial {runner_up} ")
    assert "best/ is damaged (model.keras does not match best.json's checkpoint_sha256)" in \
        done.stderr
    assert f"trial {first}: its checkpoint cannot be served" in done.stderr
    best = json.loads((sweep / "best" / "best.json").read_text())
    assert best["trial_id"] == runner_up and best["version"] == 2
    shutil.rmtree(sweep / "best")  # gone altogether: the same fallback, no staging folder named
    again = run_cli(str(sweep), cwd=sweep, module="sweeper.promote")
    assert again.returncode == 0 and f"promoted trial {runner_up}" in again.stdout
    assert ".best.partial" not in again.stdout + again.stderr
