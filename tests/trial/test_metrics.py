"""Validation metrics besides accuracy (train.metrics), any of them as the objective, and class
weights for imbalanced data (train.class_weight)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import records, run_cli
from PIL import Image

from sweeper.trial import metrics


@pytest.mark.parametrize("classes", [2, 4])
def test_each_metric_is_logged_every_epoch_as_the_model_scores_the_validation_split(
        classes: int) -> None:
    import keras
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    rng = np.random.default_rng(classes)
    y = rng.integers(0, classes, 60)
    y[:classes] = np.arange(classes)  # every class present
    x = (rng.normal(size=(60, 3)) + np.eye(classes, 3)[y]).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(classes,
                                                                    activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    names = ["auc", "precision", "recall", "f1_macro", "top_k_accuracy"]
    splits = type("Splits", (), {"fit_data": lambda self, b, s: {"validation_data": (x, y)}})()
    history = model.fit(x, y, validation_data=(x, y), epochs=2, verbose=0,
                        callbacks=metrics.validation(names, splits)).history
    assert all(len(history[f"val_{n}"]) == 2 for n in names)
    got = {n: history[f"val_{n}"][-1] for n in names}
    p = model.predict(x, verbose=0).astype("float64")
    predicted = p.argmax(1)
    auc = roc_auc_score(y, p[:, 1]) if classes == 2 else roc_auc_score(y, p, multi_class="ovr")
    assert got["auc"] == pytest.approx(auc, abs=1e-6)
    assert got["recall"] == pytest.approx(balanced_accuracy_score(y, predicted), abs=1e-6)
    precision = np.mean([np.mean(y[predicted == c] == c) if (predicted == c).any() else 0.0
                         for c in range(classes) if c in predicted or c in y])
    assert got["precision"] == pytest.approx(precision, abs=1e-6)
    assert got["f1_macro"] == pytest.approx(f1_score(y, predicted, average="macro"), abs=1e-6)
    k = max(1, min(5, classes - 1))
    top = np.argsort(-p, axis=1)[:, :k]
    assert got["top_k_accuracy"] == pytest.approx(np.mean([y[i] in top[i] for i in range(60)]),
                                                  abs=1e-6)


def test_balanced_class_weights_are_scikit_learns() -> None:
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0] * 30 + [1] * 10)
    weights = metrics.class_weight("balanced", y, 2)
    assert weights == pytest.approx(dict(enumerate(compute_class_weight("balanced",
                                                                         classes=np.arange(2),
                                                                         y=y))))
    assert weights[1] == pytest.approx(2.0) and weights[0] == pytest.approx(2 / 3)
    assert metrics.class_weight("none", y, 2) is None


def _imbalanced_folder(root: Path) -> None:
    """Three PNEUMONIA images for every NORMAL one, told apart by their brightness and texture."""
    rng = np.random.default_rng(0)
    for split, normal in (("train", 24), ("test", 8)):
        for label, (name, count) in enumerate((("NORMAL", normal), ("PNEUMONIA", 3 * normal))):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.normal(90 + 70 * label, 35, (16, 16)).clip(0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")


def test_an_imbalanced_folder_ranks_by_validation_auc_with_balanced_weights(
        tmp_path: Path) -> None:
    _imbalanced_folder(tmp_path / "xrays")
    done = run_cli("-m", "dataset=directory", f"dataset.path={tmp_path / 'xrays'}",
                   "dataset.image_size=[16,16]", "model=mlp", "model.units=8,32",
                   "train.epochs=4", "train.batch_size=8", "train.metrics=[auc,recall]",
                   "sweep.metric=val_auc", "train.class_weight=balanced", "sweep.name=imb",
                   "hydra.launcher.live=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "experiments" / "imb"
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert (board["objective_name"] == "val_auc").all()
    assert list(board["objective"]) == sorted(board["objective"], reverse=True)
    assert board["objective"].tolist() == board["val_auc"].tolist()
    assert board.loc[0, "val_auc"] > 0.8  # it learned: far from 0.5
    assert "val_recall" in board
    for record in records(sweep):
        assert record["hparams"]["train.class_weight"] == "balanced"
        assert set(record["per_class"]) == {"NORMAL", "PNEUMONIA"}
        assert all(0 <= v["recall"] <= 1 for v in record["per_class"].values())
        assert len(record["history"]) == 4 and "val_auc" in record["history"][0]
    hparams = json.loads((sweep / "hparams.json").read_text())
    assert "train.class_weight" in hparams


@pytest.mark.parametrize("args, says", [
    (["sweep.metric=test_accuracy"], "sweep.metric=test_accuracy: a test-split score cannot be "
                                     "the objective (choosing on the test split leaks it into "
                                     "the choice); use its validation twin, val_accuracy"),
    (["sweep.metric=val_auc"], "sweep.metric=val_auc: must be one of"),
    (["train.metrics=[auc,kappa]"], "train.metrics=kappa: must be one of"),
    (["train.class_weight=inverse"], "train.class_weight=inverse: must be one of"),
])
def test_an_objective_on_the_test_split_or_an_unknown_metric_is_refused(
        tmp_path: Path, args: list[str], says: str) -> None:
    done = run_cli("-m", "model.units=8,16", "sweep.name=bad", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"sweeper: error: {says}"), \
        done.stderr[-500:]
    assert not (tmp_path / "experiments").exists() and not (tmp_path / "logs").exists()
