"""Test-split scores: loss, accuracy, macro precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

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


def confusion_image(matrix: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The matrix drawn as a [H, W, 3] uint8 image: cells shaded by count (white to blue),
    counts in the cells while they stay readable, class names on both axes (rows: true class,
    columns: predicted). Drawn with Pillow, in milliseconds (a plotting figure per trial costs
    a large share of a small trial)."""
    from PIL import Image, ImageDraw, ImageFont

    n = len(names)
    cell = 28 if n <= 20 else max(4, 560 // n)
    font = ImageFont.load_default()
    label = max((int(font.getlength(str(name))) for name in names), default=0) + 8
    top = label + 16  # column names above, written upwards, under a "predicted" caption
    image = Image.new("RGB", (label + n * cell + 4, top + n * cell + 4), "white")
    draw = ImageDraw.Draw(image)
    shade = matrix / max(1, int(matrix.max()))
    for (i, j), count in np.ndenumerate(matrix):
        color = tuple(int(round(a + (b - a) * float(shade[i, j])))
                      for a, b in zip(_LIGHT, _DARK, strict=True))
        x, y = label + j * cell, top + i * cell
        draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=color)
        if n <= 20:
            text = str(count)
            draw.text((x + (cell - font.getlength(text)) / 2, y + cell / 2 - 5), text,
                      fill="white" if shade[i, j] > 0.5 else "black", font=font)
    for k, name in enumerate(names):
        draw.text((2, top + k * cell + cell / 2 - 5), str(name), fill="black", font=font)
        column = Image.new("RGB", (label, 12), "white")
        ImageDraw.Draw(column).text((2, 0), str(name), fill="black", font=font)
        column = column.rotate(90, expand=True)
        image.paste(column, (label + k * cell + cell // 2 - 6, 14))
    draw.text((label, 1), "columns: predicted, rows: true", fill="black", font=font)
    return np.asarray(image, dtype=np.uint8)


_LIGHT, _DARK = (247, 251, 255), (8, 48, 107)  # matplotlib's "Blues", its two ends
