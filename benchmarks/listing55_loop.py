"""The HParams tutorial's Listing 5-5 loop on digits: the baseline sweeper is measured against.

    python benchmarks/listing55_loop.py LOGDIR [--as-written] [--epochs 5] [--trial I]

Eight models (units 16, 32 x dropout 0.1, 0.2 x optimizer adam, sgd), 5 epochs, batch 32, Keras's
"adam" and "sgd", in one process, each run logged to TensorBoard's HParams plugin as the
tutorial does (``hp.hparams_config`` once, ``hp.hparams`` and the accuracy scalar per run).

- By default it does the work a sweep of ``+search=seed`` does: it trains on the sweep's own
  training split (digits, the test fifth held out with seed 42, then a fifth of the rest for
  validation, with the same seed: 1,149 images) and validates on the 288 validation images after
  every epoch, as the sweep's trials do; it scores the test split.
- ``--as-written``: the tutorial's loop as printed: it trains on the 1,437 images of the
  train/test split, without validation, and scores the test split.

Pixels are scaled as the sweep's models do (raw 0..16 divided by 16). It prints the best run and
the wall time; ``benchmarks/overhead_benchmark.py`` times it against the sweep.
"""

from __future__ import annotations

import argparse
import os
import time

T0 = time.time()  # the loop's wall time includes its imports, as a sweep's includes its own

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from tensorboard.plugins.hparams import api as hp  # noqa: E402

from sweeper.trial.splits import split  # noqa: E402  (the sweep's own split: the same images)

SPLIT_SEED, TEST_SPLIT, VALIDATION_SPLIT = 42, 0.2, 0.2  # conf/dataset/digits.yaml, train/default

HP_NUM_UNITS = hp.HParam("num_units", hp.Discrete([16, 32]))
HP_DROPOUT = hp.HParam("dropout", hp.RealInterval(0.1, 0.2))
HP_OPTIMIZER = hp.HParam("optimizer", hp.Discrete(["adam", "sgd"]))
METRIC_ACCURACY = "accuracy"


def data(as_written: bool) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, np.ndarray] | None]:
    """(x_train, y_train, x_test, y_test) and the validation data (None: as written)."""
    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[..., None]
    y = bunch.target.astype(np.int64)
    x_trainval, x_test, y_trainval, y_test = split(x, y, TEST_SPLIT, SPLIT_SEED)
    if as_written:
        return (x_trainval / 16.0, y_trainval, x_test / 16.0, y_test), None
    x_train, x_val, y_train, y_val = split(x_trainval, y_trainval, VALIDATION_SPLIT, SPLIT_SEED)
    return (x_train / 16.0, y_train, x_test / 16.0, y_test), (x_val / 16.0, y_val)


def train_test_model(hparams: dict, arrays: tuple[np.ndarray, ...],
                     validation: tuple[np.ndarray, np.ndarray] | None, epochs: int) -> float:
    x_train, y_train, x_test, y_test = arrays
    model = tf.keras.models.Sequential([
        tf.keras.Input(x_train.shape[1:]),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(hparams[HP_NUM_UNITS], activation=tf.nn.relu),
        tf.keras.layers.Dropout(hparams[HP_DROPOUT]),
        tf.keras.layers.Dense(10, activation=tf.nn.softmax),
    ])
    model.compile(optimizer=hparams[HP_OPTIMIZER], loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, validation_data=validation,
              verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    return float(accuracy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir")
    parser.add_argument("--as-written", action="store_true",
                        help="the tutorial's loop: 1,437 training images, no validation")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--trial", type=int, default=None, help="run only this one (0..7)")
    args = parser.parse_args()
    arrays, validation = data(args.as_written)
    with tf.summary.create_file_writer(args.logdir).as_default():
        hp.hparams_config(hparams=[HP_NUM_UNITS, HP_DROPOUT, HP_OPTIMIZER],
                          metrics=[hp.Metric(METRIC_ACCURACY, display_name="Accuracy")])
    session, best = 0, (0.0, "")
    for num_units in HP_NUM_UNITS.domain.values:
        for dropout in (HP_DROPOUT.domain.min_value, HP_DROPOUT.domain.max_value):
            for optimizer in HP_OPTIMIZER.domain.values:
                if args.trial is None or args.trial == session:
                    hparams = {HP_NUM_UNITS: num_units, HP_DROPOUT: dropout,
                               HP_OPTIMIZER: optimizer}
                    run_name = f"run-{session}"
                    with tf.summary.create_file_writer(f"{args.logdir}/{run_name}").as_default():
                        hp.hparams(hparams)
                        accuracy = train_test_model(hparams, arrays, validation, args.epochs)
                        tf.summary.scalar(METRIC_ACCURACY, accuracy, step=1)
                    best = max(best, (accuracy, f"{num_units} {dropout} {optimizer}"))
                session += 1
    print(f"best={best[1]} acc={best[0]:.4f} train={len(arrays[0])} "
          f"validation={0 if validation is None else len(validation[0])} "
          f"wall={time.time() - T0:.1f}s")


if __name__ == "__main__":
    main()
