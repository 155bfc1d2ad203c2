"""One real trial end to end, a failing trial inside a sweep, and the model builders."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import records, run_cli

from sweeper.record import SCHEMA


def test_one_epoch_trial_writes_record_checkpoint_and_tensorboard_run(tmp_path: Path) -> None:
    done = run_cli("train.epochs=1", "sweep.name=one", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (record,) = records(tmp_path / "experiments" / "one")
    trial_dir = tmp_path / "experiments" / "one" / "trials" / record["trial_id"]
    assert record["schema"] == SCHEMA and record["status"] == "completed"
    assert record["error"] is None
    assert record["trial_id"].startswith("epochs=1-")
    assert record["hparams"]["model"] == "mlp" and record["hparams"]["train.epochs"] == 1
    assert record["objective"] == {"name": "val_accuracy", "mode": "max",
                                   "value": record["metrics"]["val_accuracy"]}
    for key in ("val_loss", "test_accuracy", "test_loss", "test_precision_macro",
                "test_recall_macro", "test_f1_macro"):
        assert 0 <= record["metrics"][key] < 10, key
    assert record["best_epoch"] == 1 and record["epochs_completed"] == 1
    assert record["device"] == "CPU" and record["versions"]["tensorflow"]
    # Keras's own choices on CPU: float32, no XLA
    assert record["mixed_precision"] is False and record["jit_compile"] is False
    assert (trial_dir / "checkpoints" / "best.keras").stat().st_size > 0
    assert "_target_: sweeper.trial.models.mlp" in (trial_dir / "config.yaml").read_text()
    matrix = np.loadtxt(trial_dir / "confusion_matrix.csv", delimiter=",", skiprows=1,
                        usecols=range(1, 11))
    assert matrix.shape == (10, 10) and matrix.sum() == 360
    assert np.trace(matrix) / matrix.sum() == pytest.approx(record["metrics"]["test_accuracy"])
    run = tmp_path / record["tensorboard_run"]
    assert run == tmp_path / "logs" / "one" / record["trial_id"]
    for sub in (run, run / "train", run / "validation"):
        assert list(sub.glob("events.out.tfevents.*")), sub
    assert {"test_accuracy", "test_confusion_matrix"} <= _tags(run)

    # The same command again finds the completed trial and leaves its record alone.
    before = (trial_dir / "trial.json").read_text()
    again = run_cli("train.epochs=1", "sweep.name=one", cwd=tmp_path)
    assert again.returncode == 0 and "completed earlier, skipped" in again.stderr + again.stdout
    assert (trial_dir / "trial.json").read_text() == before


def _tags(run: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return {value.tag for path in run.glob("events.out.tfevents.*")
            for event in EventFileLoader(str(path)).Load() for value in event.summary.value}


def test_nan_loss_fails_the_trial_not_the_sweep(tmp_path: Path) -> None:
    done = run_cli("-m", "optimizer.learning_rate=0.01,1e30", "optimizer=sgd", "model.units=8",
                   "train.epochs=2", "sweep.name=nan", cwd=tmp_path)
    # The sweep runs to its end and says, as its exit status, that a trial failed.
    assert done.returncode == 1, done.stderr[-2000:]
    assert "1 trial failed (the leaderboard says why" in done.stderr
    found = records(tmp_path / "experiments" / "nan")
    by_lr = {r["hparams"]["optimizer.learning_rate"]: r for r in found}
    assert by_lr[0.01]["status"] == "completed"
    failed = by_lr[1e30]
    assert failed["status"] == "failed" and failed["error"] == "nan loss at epoch 1"
    assert failed["objective"]["value"] is None and failed["finished_at"]


@pytest.mark.parametrize("name", ["mlp", "cnn", "lenet5", "alexnet", "vgg16"])
def test_every_model_classifies_raw_digits(compose_config, name: str) -> None:
    from sweeper.trial import models

    cfg = compose_config(f"model={name}")
    model = models.build(cfg.model, (8, 8, 1), 10, 16.0)
    pixels = np.random.default_rng(0).integers(0, 17, (3, 8, 8, 1)).astype("float32")
    probabilities = model.predict(pixels, verbose=0)
    assert probabilities.shape == (3, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert model.layers[1].name == "rescale"


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def test_vgg16_is_the_published_stack_at_full_width(compose_config) -> None:
    from sweeper.trial import models

    cfg = compose_config("model=vgg16", "model.width=1.0", "model.units=4096")
    model = models.build(cfg.model, (32, 32, 3), 1000, 255.0)
    convs = [layer for layer in _all_layers(model) if layer.__class__.__name__ == "Conv2D"]
    dense = [layer for layer in _all_layers(model) if layer.__class__.__name__ == "Dense"]
    assert len(convs) == 13 and len(dense) == 3
    assert [c.filters for c in convs] == [64, 64, 128, 128, 256, 256, 256] + [512] * 6
    assert json.dumps([d.units for d in dense]) == "[4096, 4096, 1000]"


def test_a_trial_checks_its_own_combination_whatever_launched_it(compose_config,
                                                                  tmp_path: Path) -> None:
    # Launched without the command's checks (another sweeper, a hand-made job), a trial still
    # refuses a combination no trial can run, before it trains.
    from sweeper.trial.run import Trial

    cfg = compose_config("model=mobilenet_v2", "model.weights=null", "model.freeze_base=false",
                         "model.fine_tune_at=1", f"paths.experiments={tmp_path}",
                         f"paths.logs={tmp_path / 'logs'}", "sweep.name=s")
    trial_dir = tmp_path / "s" / "trials" / "t"
    trial_dir.mkdir(parents=True)
    value = Trial(cfg, trial_dir, ["model.fine_tune_at=1"], {"model": "mobilenet_v2"}).run()
    assert math.isnan(value)
    record = json.loads((trial_dir / "trial.json").read_text())
    assert record["status"] == "failed" and record["epochs_completed"] == 0
    assert record["error"].startswith("model.fine_tune_at=1: needs model.freeze_base=true")
