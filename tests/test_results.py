"""Results: the leaderboard, promotion to best/, report, export, and figures that agree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import records, run_cli

from sweeper import results


def test_sweep_ends_with_leaderboard_plots_and_promoted_model(grid_sweep: Path) -> None:
    sweep = grid_sweep / "experiments" / "grid"
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert len(board) == 4 and board["rank"].tolist() == [1, 2, 3, 4]
    assert board["objective"].is_monotonic_decreasing
    assert {"hp.optimizer", "hp.model.units", "test_accuracy", "test_f1_macro"} <= set(board)
    assert "| rank |" in (sweep / "leaderboard.md").read_text().replace("|   rank |", "| rank |")
    for plot in ("objective_by_trial.png", "parallel_coordinates.png"):
        assert (sweep / plot).read_bytes()[:4] == b"\x89PNG"
    best = json.loads((sweep / "best" / "best.json").read_text())
    assert best["trial_id"] == board["trial_id"][0] and best["version"] == 1
    assert (sweep / "best" / "saved_model" / "1" / "saved_model.pb").is_file()
    from sweeper.promote import sha256

    checkpoint = sweep / "trials" / best["trial_id"] / "checkpoints" / "best.keras"
    assert best["checkpoint_sha256"] == sha256(checkpoint) == sha256(sweep / "best" / "model.keras")
    assert best["serving"]["shape"] == [None, 8, 8, 1]


def _tensorboard_scalar(run: Path, tag: str) -> float:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    for path in run.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == tag:
                    return float(tensor_util.make_ndarray(value.tensor))
    raise AssertionError(f"{tag} not in {run}")


def test_figures_agree_leaderboard_tensorboard_and_the_promoted_model(grid_sweep: Path) -> None:
    import keras
    from omegaconf import OmegaConf

    from sweeper import data, evaluate

    sweep = grid_sweep / "experiments" / "grid"
    board = pd.read_csv(sweep / "leaderboard.csv")
    best_id = board["trial_id"][0]
    on_board = float(board["test_accuracy"][0])
    record = json.loads((sweep / "trials" / best_id / "trial.json").read_text())
    on_tensorboard = _tensorboard_scalar(grid_sweep / record["tensorboard_run"], "test_accuracy")
    cfg = OmegaConf.load(sweep / "trials" / best_id / "config.yaml")
    splits = data.load(cfg.dataset, cfg.train.validation_split)
    model = keras.models.load_model(sweep / "best" / "model.keras")
    scores, _ = evaluate.scores(model, splits)
    _, keras_accuracy = model.evaluate(splits.x_test, splits.y_test, verbose=0)
    assert on_board == on_tensorboard == scores["test_accuracy"] == record["metrics"][
        "test_accuracy"]
    assert keras_accuracy == pytest.approx(on_board, abs=1e-6)


def _record(trial_id: str, status: str, value: float | None, val_loss: float = 0.5,
            duration: float = 10.0) -> dict:
    return {"schema": 1, "sweep": "s", "trial_id": trial_id, "status": status,
            "hparams": {"model.units": 16, "optimizer": "adam"},
            "objective": {"name": "val_accuracy", "mode": "max", "value": value},
            "metrics": {"val_accuracy": value, "val_loss": val_loss} if value else {},
            "best_epoch": 1, "epochs_completed": 1, "duration_s": duration, "device": "CPU",
            "error": "nan loss at epoch 1" if status == "failed" else None}


def _write(sweep: Path, record: dict | str, name: str | None = None) -> None:
    folder = sweep / "trials" / (name or record["trial_id"])  # type: ignore[index]
    folder.mkdir(parents=True)
    text = record if isinstance(record, str) else json.dumps(record)
    (folder / "trial.json").write_text(text)


def test_ranking_ties_failures_and_unreadable_records(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    _write(sweep, _record("a", "completed", 0.9, val_loss=0.4, duration=30))
    _write(sweep, _record("b", "completed", 0.9, val_loss=0.3, duration=50))  # lower loss wins
    _write(sweep, _record("c", "completed", 0.9, val_loss=0.3, duration=20))  # then quicker
    _write(sweep, _record("d", "completed", 0.95))
    _write(sweep, _record("e", "failed", None))
    _write(sweep, _record("f", "running", None))
    _write(sweep, '{"schema": 1, "trial_id": "g", "sta', name="g")  # half-written
    _write(sweep, "[]", name="h")
    ranked, problems = results.leaderboard(sweep)
    assert ranked["trial_id"].tolist() == ["d", "c", "b", "a", "e", "f"]
    assert ranked["rank"].tolist()[:4] == [1, 2, 3, 4] and ranked["rank"][4:].isna().all()
    assert len(problems) == 2 and "trials/g/trial.json: skipped" in problems[0]
    assert "**failed**" in (sweep / "leaderboard.md").read_text()
    assert ranked["hp.model.units"].dtype == "Int64"


def test_promotion_replaces_best_only_for_a_better_trial(grid_sweep: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "grid"
    shutil.copytree(grid_sweep / "experiments" / "grid", sweep)
    before = (sweep / "best" / "best.json").read_text()
    kept = run_cli(str(sweep), cwd=tmp_path, module="sweeper.promote")
    assert kept.returncode == 0 and "kept trial" in kept.stdout
    assert (sweep / "best" / "best.json").read_text() == before
    # Another trial turns out better (say, its record was re-scored): it replaces best/.
    board = pd.read_csv(sweep / "leaderboard.csv")
    runner_up = sweep / "trials" / board["trial_id"][1] / "trial.json"
    record = json.loads(runner_up.read_text())
    record["objective"]["value"] = 1.0
    runner_up.write_text(json.dumps(record))
    promoted = run_cli(str(sweep), cwd=tmp_path, module="sweeper.promote")
    assert promoted.returncode == 0, promoted.stderr
    best = json.loads((sweep / "best" / "best.json").read_text())
    assert best["trial_id"] == board["trial_id"][1] and best["version"] == 2
    assert sorted(p.name for p in (sweep / "best" / "saved_model").iterdir()) == ["2"]
    assert not list(sweep.glob(".best*"))


@pytest.mark.parametrize("module", ["sweeper.promote", "sweeper.report", "sweeper.export"])
def test_bad_sweep_folders_are_one_line_and_leave_best_alone(tmp_path: Path, module: str) -> None:
    extra = ["--out", str(tmp_path / "out")] if module == "sweeper.export" else []
    missing = run_cli(str(tmp_path / "nope"), *extra, cwd=tmp_path, module=module)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "no such sweep folder" in missing.stderr
    empty = tmp_path / "empty"
    (empty / "trials").mkdir(parents=True)
    (empty / "best").mkdir()
    (empty / "best" / "best.json").write_text('{"kept": true}')
    done = run_cli(str(empty), *extra, cwd=tmp_path, module=module)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    failed = tmp_path / "failed"
    _write(failed, _record("x", "failed", None))
    done = run_cli(str(failed), *extra, cwd=tmp_path, module=module)
    if module == "sweeper.promote":
        assert done.returncode == 2 and "no completed trial to promote" in done.stderr
    assert (empty / "best" / "best.json").read_text() == '{"kept": true}'
    assert not (tmp_path / "out").exists()


def test_report_formats_and_compare(grid_sweep: Path) -> None:
    sweep = grid_sweep / "experiments" / "grid"
    table = run_cli(str(sweep), "--top", "2", cwd=grid_sweep, module="sweeper.report")
    assert table.returncode == 0 and "sweep grid" in table.stdout
    csv = run_cli(str(sweep), "--format", "csv", cwd=grid_sweep, module="sweeper.report")
    assert csv.stdout.splitlines()[0].startswith("rank,trial_id,status,objective")
    data = json.loads(run_cli(str(sweep), "--format", "json", "--metric", "test_accuracy",
                              cwd=grid_sweep, module="sweeper.report").stdout)
    accuracies = [row["test_accuracy"] for row in data]
    assert accuracies == sorted(accuracies, reverse=True)
    both = run_cli(str(sweep), "--compare", str(sweep), "--format", "csv", cwd=grid_sweep,
                   module="sweeper.report")
    assert both.returncode == 0 and len(both.stdout.strip().splitlines()) == 3


def test_export_saved_model_serves_the_same_predictions(grid_sweep: Path, tmp_path: Path) -> None:
    import keras

    sweep = grid_sweep / "experiments" / "grid"
    out = tmp_path / "models" / "digits"
    done = run_cli(str(sweep), "--format", "saved_model", "--out", str(out), cwd=tmp_path,
                   module="sweeper.export")
    assert done.returncode == 0, done.stderr
    cli = str(Path(sys.executable).with_name("saved_model_cli"))
    show = subprocess.run([cli, "show", "--all", "--dir", str(out / "1")], capture_output=True,
                          text=True, timeout=120)
    assert show.returncode == 0 and "signature_def['serving_default']" in show.stdout
    assert "shape: (-1, 8, 8, 1)" in show.stdout
    pixels = np.random.default_rng(0).integers(0, 17, (5, 8, 8, 1)).astype("float32")
    np.save(tmp_path / "pixels.npy", pixels)
    run = subprocess.run([cli, "run", "--dir", str(out / "1"), "--tag_set", "serve",
                          "--signature_def", "serving_default", "--inputs",
                          f"pixels={tmp_path / 'pixels.npy'}", "--outdir", str(tmp_path / "pred")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    (served,) = [np.load(p) for p in (tmp_path / "pred").glob("*.npy")]
    expected = keras.models.load_model(sweep / "best" / "model.keras").predict(pixels, verbose=0)
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)
    assert "0..16" in (out / "README.md").read_text()

    refused = run_cli(str(sweep), "--out", str(out), cwd=tmp_path, module="sweeper.export")
    assert refused.returncode == 2 and "not empty; pass --force" in refused.stderr
    lite = run_cli(str(sweep), "--format", "tflite", "--out", str(tmp_path / "lite"),
                   cwd=tmp_path, module="sweeper.export")
    assert lite.returncode == 0 and (tmp_path / "lite" / "model.tflite").stat().st_size > 0
    assert records(sweep)  # the sweep itself is untouched by exports
