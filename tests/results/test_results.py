"""The aggregator: a sweep's records in one ranked DataFrame, leaderboards, figures that agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from helpers.records import trial_record, write_trial

from sweeper.errors import NoResults
from sweeper.results import leaderboard as results


def test_sweep_ends_with_leaderboard_plots_and_promoted_model(grid_sweep: Path) -> None:
    sweep = grid_sweep / "experiments" / "grid"
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert len(board) == 4 and board["rank"].tolist() == [1, 2, 3, 4]
    assert board["objective"].is_monotonic_decreasing
    assert {"hp.optimizer", "hp.model.units", "val_loss", "test_accuracy", "test_f1_macro",
            "best_epoch", "epochs", "duration_s", "device", "error"} <= set(board)
    assert sorted(board["hp.model.units"]) == [8, 8, 16, 16]
    assert (sweep / "leaderboard.md").read_text().startswith("|   rank | trial_id")
    for plot in ("objective_by_trial.png", "parallel_coordinates.png"):
        assert (sweep / plot).read_bytes()[:4] == b"\x89PNG"
    best = json.loads((sweep / "best" / "best.json").read_text())
    assert best["trial_id"] == board["trial_id"][0] and best["version"] == 1
    assert (sweep / "best" / "saved_model" / "1" / "saved_model.pb").is_file()
    from sweeper.atomic import file_digest

    checkpoint = sweep / best["checkpoint"]
    assert checkpoint == sweep / "trials" / best["trial_id"] / "checkpoints" / "best.keras"
    digest = file_digest(checkpoint)
    assert best["checkpoint_sha256"] == digest == file_digest(sweep / "best" / "model.keras")
    assert best["serving"]["shape"] == [None, 8, 8, 1] and "0..16" in best["serving"]["pixels"]
    assert best["hparams"]["model.units"] in (8, 16) and best["versions"]["tensorflow"]
    assert not list(sweep.glob(".best*"))


def _tensorboard_scalar(run: Path, tag: str) -> float:
    """A scalar as TensorBoard reads it (TF2 summaries are tensors to its event accumulator)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    accumulator = EventAccumulator(str(run), size_guidance={"tensors": 0}).Reload()
    (event,) = accumulator.Tensors(tag)
    return float(tensor_util.make_ndarray(event.tensor_proto))


def test_figures_agree_leaderboard_tensorboard_and_the_promoted_model(grid_sweep: Path) -> None:
    import keras
    from omegaconf import OmegaConf

    from sweeper.trial import data

    sweep = grid_sweep / "experiments" / "grid"
    board = pd.read_csv(sweep / "leaderboard.csv")
    best = json.loads((sweep / "best" / "best.json").read_text())
    assert best["trial_id"] == board["trial_id"][0]
    on_board = float(board["test_accuracy"][0])
    record = json.loads((sweep / "trials" / best["trial_id"] / "trial.json").read_text())
    on_tensorboard = _tensorboard_scalar(grid_sweep / record["tensorboard_run"], "test_accuracy")
    # Re-evaluate the promoted model on the test split its trial's own config.yaml names.
    cfg = OmegaConf.load(sweep / "trials" / best["trial_id"] / "config.yaml")
    splits = data.load(cfg.dataset, cfg.train.validation_split)
    model = keras.models.load_model(sweep / "best" / "model.keras")
    predicted = np.argmax(model.predict(splits.x_test, verbose=0), axis=1)
    reevaluated = float(np.float32(np.mean(predicted == splits.y_test)))  # TensorBoard's float32
    _, keras_accuracy = model.evaluate(splits.x_test, splits.y_test, verbose=0)
    assert on_board == on_tensorboard == reevaluated == best["metrics"]["test_accuracy"]
    assert keras_accuracy == pytest.approx(on_board, abs=1e-6)


def test_ranking_ties_failures_and_unreadable_records(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    write_trial(sweep, trial_record("a", value=0.9, val_loss=0.4, duration=30))
    write_trial(sweep, trial_record("b", value=0.9, val_loss=0.3, duration=50))  # lower loss wins
    write_trial(sweep, trial_record("c", value=0.9, val_loss=0.3, duration=20))  # then quicker
    write_trial(sweep, trial_record("d", value=0.95))
    write_trial(sweep, trial_record("e", "failed", None))
    write_trial(sweep, trial_record("f", "running", None))
    write_trial(sweep, '{"schema": 1, "trial_id": "g", "sta', name="g")  # half-written
    (write_trial(sweep, "", name="h") / "trial.json").unlink()  # not started: no record yet
    ranked, problems = results.leaderboard(sweep)
    # The unreadable record keeps its row, unranked: a trial never drops off the leaderboard.
    assert ranked["trial_id"].tolist() == ["d", "c", "b", "a", "e", "f", "g"]
    assert ranked["rank"].tolist()[:4] == [1, 2, 3, 4] and ranked["rank"][4:].isna().all()
    assert ranked["status"].tolist()[4:] == ["failed", "running", "unreadable"]
    half, missing = problems
    assert half.startswith(f"{sweep}/trials/g/trial.json: unreadable record "
                           "(JSONDecodeError: Unterminated string")
    assert missing == f"{sweep}/trials/h/trial.json: skipped, no record (the trial has not started)"
    csv = pd.read_csv(sweep / "leaderboard.csv")
    assert csv["trial_id"].tolist() == ranked["trial_id"].tolist()
    assert csv["rank"].isna().tolist() == [False] * 4 + [True] * 3
    assert csv["error"][4] == "TrialFailed: nan loss at epoch 1"
    assert csv["error"][6].startswith("unreadable record (JSONDecodeError")
    md = (sweep / "leaderboard.md").read_text().splitlines()
    assert "**failed**" in md[6] and "**running**" in md[7] and "**unreadable**" in md[8]
    assert "<NA>" not in "".join(md)
    assert sorted(p.name for p in sweep.iterdir()) == ["leaderboard.csv", "leaderboard.md",
                                                        "trials"]  # no temp files left


def test_hyperparameters_keep_their_types(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    write_trial(sweep, trial_record("a", **{"model.dropout": 0.0, "train.shuffle": True}))
    write_trial(sweep, trial_record("b", **{"model.dropout": 1.0, "train.shuffle": False}))
    write_trial(sweep, trial_record("c", "failed", None, **{"model.units": 32}))
    df, problems = results.load(sweep)
    assert not problems
    dtypes = {c: str(t) for c, t in df.dtypes.items()}
    # 0.0 and 1.0 are floats, not integers; a failed trial's missing metrics do not make ints
    # into floats.
    assert dtypes["hp.model.dropout"] == "Float64" and dtypes["hp.model.units"] == "Int64"
    assert dtypes["hp.optimizer"] == "string" and dtypes["hp.train.shuffle"] == "boolean"
    assert dtypes["objective"] == dtypes["test_accuracy"] == "Float64"
    assert df["hp.model.dropout"].isna().tolist() == [False, False, True]


def test_another_metric_ranks_in_its_own_direction(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    write_trial(sweep, trial_record("a", value=0.9, val_loss=0.2))
    write_trial(sweep, trial_record("b", value=0.8, val_loss=0.1))
    df, _ = results.load(sweep)
    assert results.rank(df)["trial_id"].tolist() == ["a", "b"]
    assert results.rank(df, "val_loss")["trial_id"].tolist() == ["b", "a"]  # a loss: min
    assert results.rank(df, "val_loss", "max")["trial_id"].tolist() == ["a", "b"]
    with pytest.raises(NoResults, match="--metric bogus: not in the records"):
        results.rank(df, "bogus")


def test_records_that_disagree_on_the_objective_are_reported(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    for name in "ab":
        write_trial(sweep, trial_record(name, value=0.8 if name == "a" else 0.9))
    rerun = trial_record("c", value=0.5, val_loss=0.05)
    rerun["objective"] = {"name": "val_loss", "mode": "min", "value": 0.05}
    write_trial(sweep, rerun)
    ranked, problems = results.leaderboard(sweep)
    assert problems == [f"{sweep}: records disagree on the objective (val_accuracy max, val_loss "
                        "min); ranked by val_accuracy (max), the objective of 2 of 3"]
    assert ranked["trial_id"].tolist() == ["b", "a", "c"]  # c by its val_accuracy, like the rest


@pytest.mark.parametrize(("text", "why"), [
    ("", "JSONDecodeError"),
    ("\x00\x17garbage", "JSONDecodeError"),
    ("[1, 2]", "TypeError: a JSON list, not an object"),
    ('{"trial_id": "x"}', "KeyError: 'objective'"),
    (json.dumps({**trial_record("x"), "status": "paused"}), "'paused' is not a valid Status"),
    (json.dumps({**trial_record("x"), "trial_id": "y"}), "trial_id 'y' does not match"),
    (json.dumps({**trial_record("x"), "objective": {"name": "val_accuracy", "mode": "max",
                                                    "value": "0.9"}}),
     "'0.9' where a number belongs"),
    (json.dumps({**trial_record("x"), "objective": {"name": "m", "mode": "up", "value": 1}}),
     "objective mode 'up', not max or min"),
])
def test_a_broken_record_is_reported_and_kept_unranked(tmp_path: Path, text: str,
                                                       why: str) -> None:
    sweep = tmp_path / "s"
    write_trial(sweep, trial_record("ok"))
    write_trial(sweep, text, name="x")
    ranked, problems = results.leaderboard(sweep)
    assert ranked["trial_id"].tolist() == ["ok", "x"]
    assert ranked["rank"].tolist()[0] == 1 and ranked["status"].tolist() == ["completed",
                                                                            "unreadable"]
    (problem,) = problems
    assert problem.startswith(f"{sweep}/trials/x/trial.json: unreadable record (")
    assert why in problem and results.unreadable(problems) == problems


def test_no_records_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NoResults, match="no such sweep folder"):
        results.load(tmp_path / "nope")
    (tmp_path / "empty" / "trials").mkdir(parents=True)
    with pytest.raises(NoResults, match=r"no readable trial records under trials/$"):
        results.load(tmp_path / "empty")
    write_trial(tmp_path / "broken", "{", name="x")
    with pytest.raises(NoResults, match=r"under trials/ \(1 skipped\)"):
        results.load(tmp_path / "broken")


def test_sweep_end_without_a_completed_trial_promotes_nothing_and_imports_no_tensorflow(
        tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    write_trial(sweep, trial_record("x", "failed", None))
    write_trial(sweep, "{", name="y")
    code = ("import logging, sys; from pathlib import Path; logging.basicConfig(level='INFO');"
            "from sweeper.results.finish import finish_sweep; finish_sweep(Path(sys.argv[1]));"
            "print('imported:', sorted({'tensorflow', 'keras'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code, str(sweep)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "imported: []" in done.stdout and "│ x" in done.stdout
    assert "trials/y/trial.json: unreadable record" in done.stderr
    assert "ERROR:sweeper.results.finish:no completed trial: nothing promoted" in done.stderr
    assert pd.read_csv(sweep / "leaderboard.csv")["status"].tolist() == ["failed", "unreadable"]
    assert not (sweep / "best").exists()


def test_help_of_every_command(tmp_path: Path) -> None:
    for module in ("sweeper.report", "sweeper.promote", "sweeper.export"):
        done = run_cli("--help", cwd=tmp_path, module=module)
        assert done.returncode == 0 and f"python -m {module}" in done.stdout


def test_a_score_that_is_not_a_number_is_blank_and_explained(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    diverged = trial_record("d", value=0.5)
    diverged["metrics"]["test_loss"] = float("nan")  # outputs that overflowed in the test pass
    write_trial(sweep, diverged)
    write_trial(sweep, trial_record("f", status="failed", value=None))
    board = results.leaderboard(sweep)[0].set_index("trial_id")
    assert pd.isna(board.loc["d", "test_loss"])
    assert board.loc["d", "error"] == \
        "test_loss=nan: the model's outputs are not finite numbers (it diverged)"
    assert board.loc["f", "error"] == "TrialFailed: nan loss at epoch 1"  # its own reason stays
