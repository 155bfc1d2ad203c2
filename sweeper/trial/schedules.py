"""Learning-rate schedules: Keras's own ``keras.optimizers.schedules`` objects, sized by epochs.

A schedule option names a function ``f(learning_rate, steps_per_epoch, epochs, **keys)`` that
returns a ``LearningRateSchedule``; the trial calls it with ``optimizer.learning_rate`` and its
own length. Keys are in epochs, not optimizer steps, because steps depend on the dataset's size
and ``train.batch_size``: the same option means the same schedule in every trial of a sweep.
"""

from __future__ import annotations

from typing import Any


def cosine(learning_rate: float, steps_per_epoch: int, epochs: int, *, alpha: float) -> Any:
    """Cosine decay from ``learning_rate`` to ``alpha * learning_rate`` over the trial."""
    import keras

    return keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(1, steps_per_epoch * epochs), alpha=alpha)


def exponential(learning_rate: float, steps_per_epoch: int, epochs: int, *, decay_rate: float,
                staircase: bool) -> Any:
    """The learning rate times ``decay_rate`` every epoch."""
    import keras

    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=max(1, steps_per_epoch), decay_rate=decay_rate,
        staircase=staircase)


def warmup_cosine(learning_rate: float, steps_per_epoch: int, epochs: int, *, warmup_epochs: int,
                  alpha: float) -> Any:
    """Linear warm-up from 0 to ``learning_rate`` over ``warmup_epochs`` (at most half the trial),
    then cosine decay to ``alpha * learning_rate``."""
    import keras

    total = max(1, steps_per_epoch * epochs)
    warmup = min(steps_per_epoch * warmup_epochs, total // 2)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, total - warmup), alpha=alpha, warmup_target=learning_rate,
        warmup_steps=warmup)
