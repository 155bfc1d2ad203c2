"""Promotion to best/ (atomic, only for a better trial); exports that serve what Keras predicts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from helpers.records import trial_record, write_trial

from sweeper import export, promote
from sweeper.atomic import file_digest
from sweeper.results import promotion


def _promote(sweep: Path) -> tuple[dict, bool]:
    """Promote now; best.json as it stands and whether best/ changed."""
    result = promotion.promote(sweep)
    return result.best, result.changed


@pytest.fixture
def sweep(grid_sweep: Path, tmp_path: Path) -> Path:
    """A copy of the shared 4-trial sweep (already promoted once) that a test may change."""
    return Path(shutil.copytree(grid_sweep / "experiments" / "grid", tmp_path / "grid"))


def _ranked(sweep: Path) -> list[str]:
    return pd.read_csv(sweep / "leaderboard.csv")["trial_id"].tolist()


def _rescore(sweep: Path, trial_id: str, value: float) -> None:
    """Give a trial another objective value, as if it had scored so."""
    path = sweep / "trials" / trial_id / "trial.json"
    record = json.loads(path.read_text())
    record["objective"]["value"] = record["metrics"]["val_accuracy"] = value
    path.write_text(json.dumps(record))


def test_best_is_kept_until_a_better_trial_replaces_it_with_the_next_version(sweep: Path) -> None:
    before = (sweep / "best" / "best.json").read_text()
    kept = run_cli(str(sweep), cwd=sweep, module="sweeper.promote")
    assert kept.returncode == 0 and kept.stdout.startswith("sweeper: kept (no better trial)")
    assert (sweep / "best" / "best.json").read_text() == before
    first, runner_up = _ranked(sweep)[:2]
    _rescore(sweep, runner_up, json.loads(before)["objective"]["value"])  # a tie: still kept
    assert _promote(sweep)[1] is False
    _rescore(sweep, runner_up, 1.0)
    info, changed = _promote(sweep)
    assert changed and info["trial_id"] == runner_up and info["version"] == 2
    assert json.loads((sweep / "best" / "best.json").read_text()) == info
    assert [(h["version"], h["trial_id"]) for h in info["history"]] == [(1, first)]
    assert sorted(p.name for p in (sweep / "best" / "saved_model").iterdir()) == ["2"]
    checkpoint = sweep / "trials" / runner_up / "checkpoints" / "best.keras"
    assert file_digest(sweep / "best" / "model.keras") == file_digest(checkpoint)
    assert not list(sweep.glob(".best*"))


def test_a_swap_cut_short_is_undone_and_stale_staging_removed(sweep: Path) -> None:
    before = (sweep / "best" / "best.json").read_text()
    os.replace(sweep / "best", sweep / promotion.OLD)  # killed between the two renames
    (sweep / f"{promotion.STAGING}99999").mkdir()  # a promotion killed while building
    info, changed = _promote(sweep)
    assert not changed and (sweep / "best" / "best.json").read_text() == before
    assert not list(sweep.glob(".best*"))


def test_a_failing_export_leaves_best_as_it_was(sweep: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.read_bytes() for p in (sweep / "best").rglob("*") if p.is_file()}
    runner_up = _ranked(sweep)[1]
    _rescore(sweep, runner_up, 1.0)
    (sweep / "trials" / runner_up / "checkpoints" / "best.keras").write_bytes(b"not a model")
    with pytest.raises(SystemExit) as exit:
        promote.main([str(sweep)])
    assert exit.value.code == 1
    assert capsys.readouterr().err.startswith(
        "sweeper: error: not promoted, best/ left as it was: ")
    assert {p: p.read_bytes() for p in (sweep / "best").rglob("*") if p.is_file()} == before
    assert not list(sweep.glob(".best*"))


def test_a_winner_without_its_checkpoint_is_passed_over(sweep: Path) -> None:
    shutil.rmtree(sweep / "best")
    first, runner_up = _ranked(sweep)[:2]
    (sweep / "trials" / first / "checkpoints" / "best.keras").unlink()
    result = promotion.promote(sweep)
    info, changed = result.best, result.changed
    assert changed and info["trial_id"] == runner_up and info["version"] == 1
    assert f"trial {first}: its checkpoint is missing; not promoted" in result.skipped


def test_the_promote_command_says_its_warnings_as_sweeper(sweep: Path) -> None:
    shutil.rmtree(sweep / "best")
    first = _ranked(sweep)[0]
    (sweep / "trials" / first / "checkpoints" / "best.keras").unlink()
    done = run_cli(str(sweep), cwd=sweep, module="sweeper.promote")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"sweeper: warning: trial {first}: its checkpoint is missing; not promoted" \
        in done.stderr.splitlines()


def test_saved_model_export_serves_what_keras_predicts(grid_sweep: Path, tmp_path: Path) -> None:
    import keras

    sweep = grid_sweep / "experiments" / "grid"
    out = tmp_path / "models" / "digits"
    done = run_cli(str(sweep), "--format", "saved_model", "--out", str(out), cwd=tmp_path,
                   module="sweeper.export")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"sweeper: exported {sweep}/best/model.keras as saved_model to {out}/1\n"
    assert sorted(p.name for p in out.iterdir()) == ["1", "README.md", "export.json"]
    cli = str(Path(sys.executable).with_name("saved_model_cli"))
    show = subprocess.run([cli, "show", "--all", "--dir", str(out / "1")], capture_output=True,
                          text=True, timeout=120)
    assert show.returncode == 0, show.stderr[-2000:]
    serving = show.stdout.split("signature_def['serving_default']:")[1].split("signature_def[")[0]
    assert "inputs['pixels'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 8, 8, 1)" \
        in serving and "outputs['output_0']" in serving
    pixels = np.random.default_rng(0).integers(0, 17, (5, 8, 8, 1)).astype("float32")
    np.save(tmp_path / "pixels.npy", pixels)
    run = subprocess.run([cli, "run", "--dir", str(out / "1"), "--tag_set", "serve",
                          "--signature_def", "serving_default", "--inputs",
                          f"pixels={tmp_path / 'pixels.npy'}", "--outdir", str(tmp_path / "pred")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    served = np.load(tmp_path / "pred" / "output_0.npy")
    expected = keras.models.load_model(sweep / "best" / "model.keras").predict(pixels, verbose=0)
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)
    described = json.loads((out / "export.json").read_text())
    assert described["signature"] == "serving_default" and described["input"] == "pixels"
    assert described["shape"] == [None, 8, 8, 1] and described["dtype"] == "float32"
    assert described["pixels"].startswith("raw, 0..16")
    assert described["source_sha256"] == file_digest(sweep / "best" / "model.keras")
    assert "float32, shape [None, 8, 8, 1], pixels raw, 0..16" in (out / "README.md").read_text()


def _tflite_predicts_as_keras(tflite: Path, keras_file: Path) -> None:
    """The TensorFlow Lite model gives the Keras model's probabilities on real test images."""
    import keras
    import tensorflow as tf
    from sklearn.datasets import load_digits

    images = load_digits().images[:64].astype("float32")[..., None]  # raw pixels, 0..16
    expected = keras.models.load_model(keras_file).predict(images, verbose=0)
    with warnings.catch_warnings():  # its deprecation notice (LiteRT), not this test's matter
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(tflite))
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.allocate_tensors()
    got = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        got.append(interpreter.get_tensor(out["index"])[0])
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)
    assert (np.argmax(got, axis=1) == np.argmax(expected, axis=1)).all()


def test_export_refuses_a_non_empty_out_unless_forced_and_names_trials(
        grid_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = grid_sweep / "experiments" / "grid"
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit:
        export.main([str(sweep), "--format", "tflite", "--out", str(out)])
    assert exit.value.code == 2 and capsys.readouterr().err == (
        f"sweeper: error: --out {out}: not empty; pass --force to write into it\n")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]

    export.main([str(sweep), "--format", "tflite", "--out", str(out), "--force"])
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "export.json", "model.tflite",
                                                     "notes.txt"]
    assert json.loads((out / "export.json").read_text())["format"] == "tflite"
    assert not list(tmp_path.glob(".out.partial-*"))
    _tflite_predicts_as_keras(out / "model.tflite", sweep / "best" / "model.keras")

    trial = _ranked(sweep)[-1]
    export.main([str(sweep), "--format", "keras", "--out", str(tmp_path / "k"), "--trial", trial])
    checkpoint = sweep / "trials" / trial / "checkpoints" / "best.keras"
    assert file_digest(tmp_path / "k" / "model.keras") == file_digest(checkpoint)
    with pytest.raises(SystemExit):
        export.main([str(sweep), "--out", str(tmp_path / "x"), "--trial", "nope"])
    assert capsys.readouterr().err.startswith("sweeper: error: --trial nope: no readable ")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("module", ["sweeper.promote", "sweeper.export"])
def test_bad_sweep_folders_are_one_line_and_leave_best_alone(tmp_path: Path, module: str) -> None:
    out = tmp_path / "out"
    extra = ["--out", str(out)] if module == "sweeper.export" else []
    empty = tmp_path / "empty"
    (empty / "trials").mkdir(parents=True)
    (empty / "best").mkdir()
    (empty / "best" / "best.json").write_text('{"kept": true}')
    failed = tmp_path / "failed"
    write_trial(failed, trial_record("x", "failed", None))
    shutil.copytree(empty / "best", failed / "best")
    expected = {
        tmp_path / "nope": "no such sweep folder",
        empty: "no readable trial records under trials/",
        failed: "no completed trial to promote" if module == "sweeper.promote"
        else "no promoted model (best/); no trial completed",
    }
    for folder, why in expected.items():
        done = run_cli(str(folder), *extra, cwd=tmp_path, module=module)
        assert done.returncode == 2 and done.stderr.startswith(f"sweeper: error: {folder}: {why}")
        assert done.stderr.count("\n") == 1 and not done.stdout, done.stderr
    for folder in (empty, failed):
        assert (folder / "best" / "best.json").read_text() == '{"kept": true}'
        assert sorted(p.name for p in folder.iterdir()) == ["best", "trials"]
    assert not out.exists()


@pytest.mark.slow  # a long sweep; `pytest -m slow` runs it
def test_a_best_folder_that_cannot_be_replaced_ends_the_sweep_with_one_line(
        grid_sweep: Path, tmp_path: Path) -> None:
    # best/ cannot be moved aside (as when it is immutable or on a read-only mount): here a file
    # sits where the swap puts the replaced best/, so the rename fails with an OSError.
    cwd = Path(shutil.copytree(grid_sweep, tmp_path / "copy"))
    sweep = cwd / "experiments" / "grid"
    ranked = _ranked(sweep)
    _rescore(sweep, ranked[1], 1.0)  # the runner-up now beats the promoted trial
    (sweep / promotion.OLD).write_text("in the way")
    before = {p: p.read_bytes() for p in (sweep / "best").rglob("*") if p.is_file()}
    shutil.rmtree(sweep / "trials" / ranked[-1])  # one trial to train: a warm worker
    done = run_cli("-m", "optimizer=adam,sgd", "model.units=8,16", "train.epochs=1",
                   "sweep.name=grid", cwd=cwd, timeout=180)  # it used to wait forever
    assert done.returncode == 1, done.stderr[-3000:]
    assert "pool:" in done.stdout + done.stderr  # promoted in the sweep's warm worker
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("sweeper: error: not promoted, best/ left as it was: "), last
    problems = json.loads((sweep / "sweep.json").read_text())["problems"]
    assert len(problems) == 1 and problems[0].startswith("not promoted, best/ left as it was: ")
    again = run_cli(str(sweep), cwd=cwd, module="sweeper.promote")
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.strip().splitlines()[-1].startswith(
        "sweeper: error: not promoted, best/ left as it was: [Errno 20] Not a directory: ")
    assert {p: p.read_bytes() for p in (sweep / "best").rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("name", ["vgg16", "alexnet"])
def test_a_model_that_resizes_its_input_exports_in_inference_mode(compose_config, tmp_path: Path,
                                                                  name: str) -> None:
    # VGG-16 and AlexNet enlarge digits to their input_size; the export's traced call must still
    # run batch normalisation and dropout as inference does (moving statistics, no dropout).
    from sweeper.results import formats
    from sweeper.trial import models

    cfg = compose_config(f"model={name}", "model.width=0.125", "model.units=16")
    model = models.build(cfg.model, (8, 8, 1), 10, 16.0)
    assert model.get_layer("resize") is not None
    signature = formats.saved_model(model, tmp_path / "1")  # raises if it predicts differently
    assert signature["shape"] == [None, 8, 8, 1]
