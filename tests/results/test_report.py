"""``python -m sweeper.report``: the ranked table in every format, plots, sweeps side by side."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli
from helpers.records import trial_record, write_trial

from sweeper import report
from sweeper.results import leaderboard as results
from sweeper.results.plots import PLOTS


@pytest.fixture
def sweep(grid_sweep: Path, tmp_path: Path) -> Path:
    """A copy of the shared 4-trial sweep, without its leaderboard and plots."""
    copy = Path(shutil.copytree(grid_sweep / "experiments" / "grid", tmp_path / "grid"))
    for name in ("leaderboard.csv", "leaderboard.md", *PLOTS):
        (copy / name).unlink()
    return copy


def _report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    report.main(list(argv))
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_table_writes_leaderboard_and_plots_without_tensorflow(sweep: Path) -> None:
    code = ("import sys; from sweeper.report import main; main(sys.argv[1:]);"
            "print('imported:', sorted({'tensorflow', 'keras'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code, str(sweep), "--top", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "sweep grid: 2 of 4 trials" in done.stdout and "imported: []" in done.stdout
    board = pd.read_csv(sweep / "leaderboard.csv")
    shown = [t for t in board["label"] if t in done.stdout]
    assert shown == board["label"][:2].tolist()
    assert (sweep / "leaderboard.md").is_file()
    from matplotlib.image import imread

    for plot in PLOTS:
        height, width, _ = imread(sweep / plot).shape
        assert height > 100 and width > 100


def test_formats_and_metrics(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, err = _report(capsys, str(sweep), "--format", "csv")
    assert not err and out.splitlines()[0].startswith("rank,trial_id,label,status,objective,hp.")
    assert pd.read_csv(sweep / "leaderboard.csv").to_csv(index=False) == out
    out, _ = _report(capsys, str(sweep), "--format", "md", "--top", "3")
    assert out.startswith("|   rank | trial_id") and len(out.splitlines()) == 2 + 3
    rows = json.loads(_report(capsys, str(sweep), "--format", "json", "--metric",
                              "test_accuracy")[0])
    accuracies = [row["test_accuracy"] for row in rows]
    assert len(rows) == 4 and accuracies == sorted(accuracies, reverse=True)
    rows = json.loads(_report(capsys, str(sweep), "--format", "json", "--metric", "val_loss")[0])
    losses = [row["val_loss"] for row in rows]
    assert losses == sorted(losses)  # a loss ranks lowest first
    assert [r["rank"] for r in rows] == [1, 2, 3, 4] and isinstance(rows[0]["hp.model.units"], int)


def test_failed_running_and_broken_trials_are_marked(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    mixed = tmp_path / "mixed"
    write_trial(mixed, trial_record("ok", value=0.9))
    write_trial(mixed, trial_record("bad", "failed", None))
    write_trial(mixed, trial_record("busy", "running", None))
    write_trial(mixed, '{"trial_id": ', name="torn")
    with pytest.raises(SystemExit) as exit:  # the table lacks the torn trial's figures
        report.main([str(mixed)])
    assert exit.value.code == 1
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert err.startswith(f"sweeper: warning: {mixed}/trials/torn/trial.json: "
                          "unreadable record (JSONDecodeError")
    assert err.strip().splitlines()[-1] == ("sweeper: error: 1 of 4 trial records could not be "
                                            "read (named above): the table lacks their figures")
    assert "4 of 4 trials" in out
    assert "TrialFailed: nan loss at epoch 1" in out
    assert [line.split("│")[2].strip() for line in out.splitlines() if line.startswith("│")] == \
        ["ok", "bad", "busy", "torn"]
    with pytest.raises(SystemExit):
        report.main([str(mixed), "--format", "md"])
    out = capsys.readouterr().out
    assert "| **failed**" in out and "| **running**" in out and "| **unreadable**" in out
    # One completed trial: its objective plotted; no hyperparameter varies, so no parallel plot.
    assert (mixed / PLOTS[0]).is_file() and not (mixed / PLOTS[1]).exists()


def test_compare_puts_each_sweeps_best_side_by_side(sweep: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    write_trial(other, trial_record("b", value=0.99))
    write_trial(other, trial_record("a", "failed", None))
    out, _ = _report(capsys, str(sweep), "--compare", str(other), "--format", "csv")
    table = pd.read_csv(io.StringIO(out))
    best = results.rank(results.load(sweep)[0])["trial_id"][0]
    assert table["sweep"].tolist() == [str(sweep), str(other)]
    assert table["trial_id"].tolist() == [best, "b"]
    assert table[["trials", "completed", "failed"]].values.tolist() == [[4, 4, 0], [2, 1, 1]]
    out, _ = _report(capsys, str(sweep), "--compare", str(other))
    assert "best trial of each sweep" in out and "│ b " in out


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = run_cli(str(tmp_path / "nope"), cwd=tmp_path, module="sweeper.report")
    assert done.returncode == 2 and not done.stdout
    assert done.stderr == f"sweeper: error: {tmp_path / 'nope'}: no such sweep folder\n"
    (tmp_path / "empty" / "trials").mkdir(parents=True)
    failed = tmp_path / "failed"
    write_trial(failed, trial_record("x", "failed", None))
    cases = {
        (str(tmp_path / "empty"),): "no readable trial records under trials/",
        (str(failed),): "every trial failed (1)",
        (str(failed), "--metric", "bogus"): "--metric bogus: not in the records",
        (str(tmp_path / "empty"), "--compare", str(failed)): "no readable trial records",
    }
    for argv, why in cases.items():
        with pytest.raises(SystemExit) as exit:
            report.main(list(argv))
        err = capsys.readouterr().err
        assert exit.value.code == 2 and err.count("\n") == 1 and why in err, err
        assert err.startswith("sweeper: error: ")


def test_plots_of_thousands_of_trials_show_the_best(sweep: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    from sweeper.results import plots

    one = results.rank(results.load(sweep)[0])
    many = pd.concat([one] * 750, ignore_index=True)  # 3,000 trials
    many["trial_id"] = [f"t{i:04d}" for i in range(len(many))]
    many = results.rank(many.drop(columns="rank"))
    drawn = plots.plots(tmp_path, many)
    assert [p.name for p in drawn] == list(PLOTS[:2])  # no trial folders: no learning curves
    height, _, _ = imread(tmp_path / PLOTS[0]).shape
    assert height < 90 * (0.35 * plots.MAX_BARS + 3)  # the best 40 bars, not 3,000


def test_a_running_sweep_counts_the_trials_not_started_yet(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sweeper import lock
    from sweeper.results.planned import write_plan

    running = tmp_path / "running"
    write_trial(running, trial_record("a", value=0.9))
    write_trial(running, trial_record("b", "running", None))
    write_plan(running, 4)  # as the grid writes it when it starts: 4 trials in all
    out, _ = _report(capsys, str(running))
    assert "sweep running: 2 of 2 trials" in out  # no one runs it: what is there is all
    with lock.hold(running):  # the sweep's own process holds this while it runs
        out, _ = _report(capsys, str(running))
    said = " ".join(out.split())  # a long title wraps
    assert "(running, pid " in said and ": 2 of 4 trials, 2 not started yet" in said, out
