"""Validation metrics beyond accuracy (``train.metrics``), computed after each epoch on the
validation split with scikit-learn and added to Keras's logs as ``val_<name>`` (so the checkpoint,
early stopping, the pruner, TensorBoard and the record all see them), and class weights for
imbalanced data (``train.class_weight``). Nothing custom is compiled into the model, so its
checkpoint loads anywhere.

- ``auc``: ROC AUC; of the second class's probability with two classes, the mean one-vs-rest AUC
  over the classes with more (``roc_auc_score``).
- ``precision``, ``recall``: macro averages (each class's, averaged with equal weight) of the
  predicted class (the most probable); macro recall is balanced accuracy.
- ``f1_macro``: the macro F1 score of the predicted class.
- ``top_k_accuracy``: the true class among the k most probable (k = 5, or fewer than the classes).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def score(name: str, y: np.ndarray, p: np.ndarray) -> float:
    """``name`` (a ``train.metrics`` entry) of class indices ``y`` and probabilities ``p``, as
    a float32 value (what TensorBoard stores); NaN where it is undefined (one class only)."""
    from sklearn import metrics as sk

    classes = p.shape[1]
    predicted = p.argmax(axis=1)
    if name == "auc":
        if len(np.unique(y)) < 2:
            return math.nan
        value = sk.roc_auc_score(y, p[:, 1]) if classes == 2 else \
            sk.roc_auc_score(y, p / p.sum(axis=1, keepdims=True), multi_class="ovr",
                             labels=np.arange(classes))
    elif name in ("precision", "recall", "f1_macro"):
        rule = {"precision": sk.precision_score, "recall": sk.recall_score,
                "f1_macro": sk.f1_score}[name]
        value = rule(y, predicted, average="macro", zero_division=0)
    else:  # top_k_accuracy (scikit-learn's top_k_accuracy_score wants 1-d scores for 2 classes)
        top = np.argsort(-p, axis=1)[:, :max(1, min(5, classes - 1))]
        value = np.mean((top == y[:, None]).any(axis=1))
    return float(np.float32(value))


def validation(names: Any, splits: Any) -> list[Any]:
    """The Keras callback that adds ``val_<name>`` for each of ``names`` to every epoch's logs
    (none without names); it must come before the callbacks that read the logs."""
    names = [str(n) for n in names]
    if not names:
        return []
    import keras

    data = splits.fit_data(1024, 0)["validation_data"]

    class Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            y, p = _predict(self.model, data)
            for name in names:
                if logs is not None:
                    logs[f"val_{name}"] = score(name, y, p)

    return [Validation()]


def _predict(model: Any, data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Class indices and predicted probabilities of the validation data (arrays or batches)."""
    batches = [data] if isinstance(data, tuple) else data.as_numpy_iterator()
    ys, ps = [], []
    for x, y in batches:
        for i in range(0, len(x), 1024):
            ps.append(np.asarray(model(x[i:i + 1024], training=False)))
        ys.append(np.asarray(y))
    return np.concatenate(ys).reshape(-1).astype(int), np.concatenate(ps).astype("float64")


def class_weight(rule: str, labels: np.ndarray, num_classes: int) -> dict[int, float] | None:
    """``model.fit``'s class weights: None for ``none``; for ``balanced``, scikit-learn's
    ``compute_class_weight("balanced")`` of the training split (n / (classes x count)), so each
    class weighs as much in the loss as the others whatever its count."""
    if rule == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    return {int(c): float(weights[list(present).index(c)]) if c in present else 1.0
            for c in range(num_classes)}


def per_class(matrix: np.ndarray, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Each class's test precision and recall, from the test confusion matrix (rows: truth)."""
    right = np.diag(matrix).astype(float)
    predicted, truly = matrix.sum(axis=0), matrix.sum(axis=1)
    return {name: {"precision": float(right[i] / predicted[i]) if predicted[i] else 0.0,
                   "recall": float(right[i] / truly[i]) if truly[i] else 0.0}
            for i, name in enumerate(names)}
