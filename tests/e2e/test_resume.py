"""Nothing lost: interrupted trials continue from their last epoch; completed ones never re-run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import poll, records, run_cli, start

from sweeper.atomic import file_digest

# A backup after every epoch: an interruption costs at most the epoch it cut short.
SWEEP = ["-m", "optimizer=sgd,adam", "model.units=8", "train.epochs=30", "sweep.name=r",
         "hydra.launcher.workers=1", "hydra.launcher.live=false", "train.backup_every_s=0"]


@pytest.mark.slow  # a long sweep; `pytest -m slow` runs it
def test_killed_worker_resumes_its_trial_from_the_last_completed_epoch(tmp_path: Path) -> None:
    proc = start(tmp_path, *SWEEP[:2], "train.epochs=30", "model.units=8", "sweep.name=k",
                 "hydra.launcher.workers=1", "hydra.launcher.live=false",
                 "train.backup_every_s=0")
    sweep = tmp_path / "experiments" / "k"
    victim = poll(sweep, proc, lambda r: r["status"] == "running" and r["epochs_completed"] >= 3)
    os.kill(victim["pid"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert "worker died: signal 9" in out
    (record,) = [r for r in records(sweep) if r["trial_id"] == victim["trial_id"]]
    assert record["status"] == "completed" and record["attempts"] == 2
    assert record["resumed_from_epoch"] >= victim["epochs_completed"] - 1
    assert record["epochs_completed"] == len(record["history"]) == 30
    assert record["epochs_trained"] - 30 <= 1  # at most the epoch the kill cut short


def test_ctrl_c_then_the_same_command_finishes_the_sweep(tmp_path: Path) -> None:
    proc = start(tmp_path, *SWEEP)
    sweep = tmp_path / "experiments" / "r"
    poll(sweep, proc, lambda r: r["status"] == "completed")
    interrupted = poll(sweep, proc,
                       lambda r: r["status"] == "running" and r["epochs_completed"] >= 3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    before = {p: p.read_text() for p in sweep.glob("trials/*/trial.json")}
    (done,) = [r for r in records(sweep) if r["status"] == "completed"]

    again = run_cli(*SWEEP, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    after = {r["trial_id"]: r for r in records(sweep)}
    assert {r["status"] for r in after.values()} == {"completed"}
    done_path = sweep / "trials" / done["trial_id"] / "trial.json"
    assert done_path.read_text() == before[done_path]  # not re-run, not rewritten
    resumed = after[interrupted["trial_id"]]
    # The record is written just before the backup: a signal between the two costs one epoch.
    assert resumed["resumed_from_epoch"] >= interrupted["epochs_completed"] - 1
    assert resumed["epochs_completed"] == len(resumed["history"]) == 30
    assert resumed["epochs_trained"] - 30 <= 1


@pytest.mark.slow  # a long sweep; `pytest -m slow` runs it
def test_backups_on_a_time_budget_cost_the_epochs_since_the_last_one(tmp_path: Path) -> None:
    # No backup before the end of training: a kill mid-training costs every epoch trained.
    proc = start(tmp_path, "-m", "optimizer=sgd", "model.units=8", "train.epochs=40",
                 "sweep.name=budget", "hydra.launcher.workers=1", "hydra.launcher.live=false",
                 "train.backup_every_s=1000")
    sweep = tmp_path / "experiments" / "budget"
    victim = poll(sweep, proc, lambda r: r["status"] == "running" and r["epochs_completed"] >= 3)
    assert not list(sweep.glob("trials/*/checkpoints/backup/*"))  # nothing written yet
    os.kill(victim["pid"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    (record,) = records(sweep)
    assert record["status"] == "completed" and record["attempts"] == 2
    assert record["resumed_from_epoch"] is None  # started afresh
    assert record["epochs_trained"] >= 40 + victim["epochs_completed"]
    assert record["epochs_completed"] == len(record["history"]) == 40


def test_resume_command_replays_the_sweep(tmp_path: Path) -> None:
    first = run_cli("-m", "optimizer=adam,sgd", "train.epochs=1", "model.units=8",
                    "sweep.name=again", "hydra.launcher.workers=1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    sweep = tmp_path / "experiments" / "again"
    kept, lost = sorted(sweep.glob("trials/*/trial.json"))
    kept_text = kept.read_text()
    lost.unlink()  # as if that trial had never run
    done = run_cli(str(sweep), cwd=tmp_path, module="sweeper.resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming with: python -m sweeper -m" in done.stdout
    assert json.loads(lost.read_text())["status"] == "completed"
    assert kept.read_text() == kept_text


def test_resume_of_a_folder_that_is_no_sweep_is_one_line(tmp_path: Path) -> None:
    done = run_cli(str(tmp_path), cwd=tmp_path, module="sweeper.resume")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"sweeper: error: {tmp_path}: not a sweep folder (no multirun.yaml)")


def test_changed_configuration_for_the_same_trial_is_refused(tmp_path: Path) -> None:
    first = run_cli("train.epochs=1", "model.units=8", "sweep.name=c", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (trial_dir,) = (tmp_path / "experiments" / "c" / "trials").iterdir()
    # As if conf/ had said units: 9 when the trial ran: the same id, another configuration.
    saved = trial_dir / "config.yaml"
    saved.write_text(saved.read_text().replace("units: 8", "units: 9"))
    files = {p: p.read_bytes() for p in trial_dir.rglob("*") if p.is_file()}
    again = run_cli("train.epochs=1", "model.units=8", "sweep.name=c", cwd=tmp_path)
    assert again.returncode == 2
    (line,) = again.stderr.strip().splitlines()
    assert "ran with a different configuration (model.units: 9 -> 8)" in line
    assert {p: p.read_bytes() for p in trial_dir.rglob("*") if p.is_file()} == files


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1.5 MB filesystem (tmpfs); skipped where mounting is not allowed."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_disk_full_fails_the_trial_cleanly_and_keeps_earlier_records(tmp_path: Path,
                                                                     small_disk: Path) -> None:
    done = run_cli("-m", "model.units=8,2048", "train.epochs=2", "sweep.name=full",
                   f"paths.experiments={small_disk}", "hydra/launcher=basic", cwd=tmp_path)
    # The trials' failures are their own; the sweep's end could not write its results: exit 1.
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1].startswith(
        "sweeper: error: the end of the sweep did not complete")
    found = {r["hparams"]["model.units"]: r for r in records(small_disk / "full")}
    assert found[8]["status"] == "completed"  # written before the disk filled, still valid
    big = found[2048]
    assert big["status"] in ("failed", "running")  # running: the disk had no room for more
    if big["status"] == "failed":
        assert "No space left on device" in big["error"]


def test_an_unreadable_record_is_kept_aside_and_its_trial_runs_again(grid_sweep: Path,
                                                                     tmp_path: Path) -> None:
    cwd = Path(shutil.copytree(grid_sweep, tmp_path / "copy"))
    sweep = cwd / "experiments" / "grid"
    promoted = json.loads((sweep / "best" / "best.json").read_text())
    victim = sweep / "trials" / promoted["trial_id"]  # the promoted trial, its record broken
    (victim / "trial.json").write_text("{")
    checkpoint = (victim / "checkpoints" / "best.keras").read_bytes()
    done = run_cli("-m", "optimizer=adam,sgd", "model.units=8,16", "train.epochs=1",
                   "sweep.name=grid", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert f"trial {victim.name}: its record cannot be read (JSONDecodeError: " in said
    assert "3 of 4 trials finished in an earlier run of the sweep; 1 to run" in said
    (aside,) = (sweep / "unreadable").iterdir()  # kept as it was, never overwritten
    assert aside.name.startswith(victim.name + "-")
    assert (aside / "trial.json").read_text() == "{"
    assert (aside / "checkpoints" / "best.keras").read_bytes() == checkpoint
    assert json.loads((victim / "trial.json").read_text())["status"] == "completed"
    best = json.loads((sweep / "best" / "best.json").read_text())  # names what it serves
    assert file_digest(sweep / best["checkpoint"]) == best["checkpoint_sha256"]
