"""The tripwire on synthetic histories (no TensorFlow): training far above a validation accuracy
that sits at chance, for two epochs or more; its record, and a pruner's reason on such an epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sweeper.launch.progress import Board, Row
from sweeper.record import Objective, TrialRecord
from sweeper.search.pruners import Asha, judge
from sweeper.trial.tripwire import chance, check, likely_causes


def epochs(*pairs: tuple[float, float]) -> list[dict[str, float]]:
    return [{"accuracy": a, "val_accuracy": v, "loss": 1.0, "val_loss": 2.0} for a, v in pairs]


def test_chance_is_a_uniform_guess_or_the_majority_class_of_imbalanced_labels() -> None:
    assert chance(np.arange(100) % 10, 10) == pytest.approx(0.1)
    assert chance(np.array([0] * 75 + [1] * 25), 2) == pytest.approx(0.75)  # 3 pneumonia : 1
    assert chance(np.array([0, 1]), 4) == pytest.approx(0.5)  # classes missing from the split


def test_it_fires_after_two_mismatched_epochs_and_says_where_and_why() -> None:
    history = epochs((0.62, 0.58), (0.92, 0.10), (0.97, 0.11))  # the lagging BatchNorm of a CNN
    assert check(history[:2], 0.1) is None  # one epoch is not yet a pattern
    found = check(history, 0.1, likely_causes({"Conv2D", "BatchNormalization", "Dense"}))
    assert found is not None
    assert (found.first_epoch, found.last_epoch) == (2, 3)
    assert (found.accuracy, found.val_accuracy, found.chance) == (0.97, 0.11, 0.1)
    assert found.message.startswith("train/inference mismatch: validation accuracy 0.11 sits at "
                                     "chance (0.10) while training accuracy is 0.97 (epochs 2-3)")
    assert "BatchNorm statistics" in found.message and "model.bn_momentum" in found.message
    assert found.active(3) and not found.active(1)


@pytest.mark.parametrize("history", [
    epochs((0.95, 0.90), (0.97, 0.93)),  # learns
    epochs((0.11, 0.10), (0.12, 0.10), (0.10, 0.10)),  # learns nothing at all: no mismatch
    epochs((0.90, 0.10), (0.95, 0.60)),  # at chance once, then validation follows
    epochs((0.90, 0.10), (0.95, 0.10), (0.97, 0.80)),  # recovered: the last epoch is fine
    epochs((0.30, 0.10), (0.32, 0.10)),  # a gap too small to be the pattern
    [{"accuracy": 0.9}, {"accuracy": 0.95}],  # no validation split
])
def test_it_stays_quiet_unless_the_last_two_epochs_show_the_pattern(history: list) -> None:
    assert check(history, 0.1) is None


def test_imbalanced_chance_is_the_majority_class() -> None:
    # 3 pneumonia images for every normal one: answering "pneumonia" scores 0.75
    assert check(epochs((0.99, 0.75), (0.99, 0.76)), 0.75) is not None
    assert check(epochs((0.99, 0.90), (0.99, 0.92)), 0.75) is None


def test_causes_follow_the_layers_of_the_model() -> None:
    assert likely_causes({"Dense"}) == [
        "a layer or preprocessing that differs in inference",
        "or no signal the model can generalise (it memorises the training set)"]
    assert likely_causes({"Dropout", "Dense"})[0] == "dropout"


def test_the_record_keeps_it_and_a_pruner_on_such_an_epoch_says_so(tmp_path: Path) -> None:
    trials = tmp_path / "trials"
    for trial_id, values in (("a", [0.9, 0.95]), ("me", [0.1, 0.1])):
        record = TrialRecord(sweep="s", trial_id=trial_id,
                             objective=Objective("val_accuracy", "max"))
        for accuracy, value in zip([0.9, 0.97], values, strict=True):
            record.epoch_done({"accuracy": accuracy, "val_accuracy": value})
        record.mismatch = check(record.history, 0.1)
        (trials / trial_id).mkdir(parents=True)
        record.write(trials / trial_id)
    mine = TrialRecord.load(trials / "me")
    assert mine.mismatch is not None and mine.mismatch.last_epoch == 2
    assert "mismatch" not in TrialRecord.load(trials / "a").to_dict()
    stopped = judge(Asha(2, 2), mine, trials, 12)  # rung 1 at epoch 2: the top 1 of 2 goes on
    assert stopped is not None
    assert stopped.reason.startswith("val_accuracy 0.1 < 0.95, the top 1 of 2 trials at rung 1 "
                                     "(epoch 2); judged on an epoch of a train/inference mismatch")
    row = Row(1, "me", status="running", output_dir=str(trials / "me"))
    Board._read_record(row)
    assert row.metric == ("val_accuracy 0.1000 ! train 0.97, validation at chance: "
                          "train/inference mismatch")
