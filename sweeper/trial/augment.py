"""Data augmentation as a hyperparameter: the ``augment`` config group as Keras preprocessing
layers inside the model.

The layers sit right after rescaling, so they see pixels in [0, 1]. Keras's random layers act
only when the model trains (``training=True``); in evaluation, in ``predict`` and in every export
they pass images through unchanged, so a checkpoint still takes raw pixels and predicts the same
on every call. Each strength is a key of every ``augment`` option and can be swept
(``augment.zoom=0.1,0.2``); a strength of 0 leaves its layer out.
"""

from __future__ import annotations

from typing import Any


def augmentation(cfg: Any) -> Any:
    """The random layers of ``cfg`` (an ``augment`` config) as one Sequential layer named
    ``augment``, or None when they would do nothing."""
    if cfg is None:
        return None
    from keras import Sequential, layers

    stack = []
    if cfg.flip != "none":
        stack.append(layers.RandomFlip(cfg.flip))
    if cfg.rotation > 0:
        stack.append(layers.RandomRotation(cfg.rotation))
    if cfg.zoom > 0:
        stack.append(layers.RandomZoom(cfg.zoom))
    if cfg.shear > 0:
        # (0, shear): Keras draws the sign itself; a plain number would not reload from a
        # checkpoint (Keras saves it as [-shear, shear], which its own check then refuses).
        stack.append(layers.RandomShear(x_factor=(0.0, cfg.shear)))
    if cfg.magnitude > 0:
        stack.append(layers.RandAugment(value_range=(0.0, 1.0), num_ops=cfg.num_ops,
                                        factor=cfg.magnitude))
    return Sequential(stack, name="augment") if stack else None


def apply(cfg: Any, x: Any) -> Any:
    """``x`` through the augmentation of ``cfg`` (unchanged when there is none)."""
    layer = augmentation(cfg)
    # Keras's random layers default to training=True, and a functional model keeps that default
    # for a call that does not say (an export's traced call): off unless the model trains.
    return x if layer is None else layer(x, training=False)
