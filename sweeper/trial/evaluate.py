"""Test-split scores: loss, accuracy, macro precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from sweeper.trial.splits import Splits

BATCH = 1024


def scores(model: Any, splits: Splits) -> tuple[dict[str, float], np.ndarray]:
    """Every test score from one inference pass, and the confusion matrix (rows: true class).

    Values are float32, as TensorBoard stores scalars, so the record and the dashboard agree.
    """
    import keras
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    # One pass (Model.evaluate plus predict would take two, each tracing a new function).
    labels, outputs = [], []
    for x, y in splits.test_batches(BATCH):
        outputs.append(np.asarray(model(x, training=False)))
        labels.append(np.asarray(y))
    probabilities, y = np.concatenate(outputs), np.concatenate(labels)
    loss = np.mean(keras.losses.sparse_categorical_crossentropy(y, probabilities))
    predicted = np.argmax(probabilities, axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, predicted, average="macro", zero_division=0)
    values = {"test_loss": loss, "test_accuracy": np.mean(predicted == y),
              "test_precision_macro": precision, "test_recall_macro": recall, "test_f1_macro": f1}
    matrix = confusion_matrix(y, predicted, labels=range(splits.num_classes))
    return {name: float(np.float32(v)) for name, v in values.items()}, matrix


def confusion_csv(matrix: np.ndarray, names: tuple[str, ...]) -> str:
    """The matrix as CSV with class names on both axes."""
    header = "true\\predicted," + ",".join(names)
    rows = [f"{name}," + ",".join(map(str, row)) for name, row in zip(names, matrix, strict=True)]
    return "\n".join([header, *rows]) + "\n"


def confusion_image(matrix: np.ndarray, names: tuple[str, ...]) -> Any:
    """The matrix drawn as a [H, W, 4] uint8 image tensor."""
    import tensorflow as tf
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    size = max(4.0, 0.4 * len(names) + 2)
    fig = Figure(figsize=(size, size))
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true")
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    if len(names) <= 20:  # counts in the cells while they stay readable
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > matrix.max() / 2 else "black")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=64, bbox_inches="tight")
    return tf.image.decode_png(buf.getvalue(), channels=4)
