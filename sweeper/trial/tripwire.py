"""The tripwire: a trial whose training accuracy is far above its validation accuracy while
validation sits at chance, epoch after epoch.

That is the signature of a model that predicts differently in inference mode (validation, test,
export) than in training mode: BatchNormalization's moving statistics lagging behind the weights
on small data, dropout or another layer that behaves differently at inference, preprocessing that
differs between the two. Every judge (the pruners, Hyperband, the leaderboard) reads the
inference-mode numbers, so the trial says so in its record, the live table and its log.

Pure functions of a trial's history; no TensorFlow here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sweeper.record import Mismatch

#: consecutive epochs the pattern must hold before the tripwire fires
EPOCHS = 2
#: validation "at chance": within this share of the distance from chance to a perfect score
AT_CHANCE = 0.1
#: training "far above": ahead of validation by at least this share of that distance
GAP = 0.3


def chance(labels: np.ndarray, num_classes: int) -> float:
    """The accuracy of a model that knows nothing: a uniform guess (1/classes) or, when the
    validation labels are imbalanced, always answering their most common class."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    majority = float(counts.max() / counts.sum()) if counts.sum() else 0.0
    return max(1.0 / max(num_classes, 1), majority)


def mismatched(accuracy: float, val_accuracy: float, chance_level: float) -> bool:
    """Whether one epoch shows the pattern."""
    if not (math.isfinite(accuracy) and math.isfinite(val_accuracy)):
        return False
    room = 1.0 - chance_level
    return val_accuracy <= chance_level + AT_CHANCE * room and \
        accuracy >= val_accuracy + GAP * room


def check(history: Sequence[dict[str, float]], chance_level: float,
          causes: Sequence[str] = ()) -> Mismatch | None:
    """The mismatch the epochs of ``history`` end in (None: the last :data:`EPOCHS` epochs are
    not all mismatched). ``causes`` are the likely ones, most likely first."""
    run = 0
    for epoch in reversed(history):
        if not mismatched(_value(epoch, "accuracy"), _value(epoch, "val_accuracy"),
                          chance_level):
            break
        run += 1
    if run < EPOCHS:
        return None
    causes = list(causes) or likely_causes(set())
    last = history[-1]
    first_epoch, last_epoch = len(history) - run + 1, len(history)
    accuracy, val_accuracy = _value(last, "accuracy"), _value(last, "val_accuracy")
    message = (f"train/inference mismatch: validation accuracy {val_accuracy:.2f} sits at chance "
               f"({chance_level:.2f}) while training accuracy is {accuracy:.2f} "
               f"(epochs {first_epoch}-{last_epoch}); likely cause"
               f"{'s' if len(causes) > 1 else ''}: {'; '.join(causes)}")
    return Mismatch(first_epoch, last_epoch, round(accuracy, 4), round(val_accuracy, 4),
                    round(chance_level, 4), message)


def likely_causes(layer_kinds: set[str]) -> list[str]:
    """The likely causes of a mismatch in a model made of layers of these class names."""
    causes = []
    if any("BatchNormalization" in kind for kind in layer_kinds):
        causes.append("BatchNorm statistics lag the weights (lower the momentum, e.g. "
                      "model.bn_momentum=0.9, or train longer)")
    if any("Dropout" in kind for kind in layer_kinds):
        causes.append("dropout")
    causes.append("a layer or preprocessing that differs in inference")
    return causes + ["or no signal the model can generalise (it memorises the training set)"]


def _value(epoch: dict[str, float], name: str) -> float:
    value = epoch.get(name)
    return float(value) if isinstance(value, int | float) else math.nan
