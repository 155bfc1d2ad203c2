"""A user's own model builders, outside the sweeper package (tests put this folder on the path).

It imports Keras at the top, as a user's module would: sweeper reads the builders' signatures
without running it.
"""

import functools

import keras


def build(input_shape, num_classes, *, depth: int, units: int = 16):
    """``depth`` Dense(units) layers over the flattened image, then the logits."""
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    for i in range(depth):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name="nets")


def with_base(input_shape, num_classes, *, units: int):
    """A model whose pretrained part (here two Dense layers) is the layer named ``base``."""
    base_in = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(base_in)
    x = keras.layers.Dense(units, activation="relu", name="early")(x)
    x = keras.layers.Dense(units, activation="relu", name="late")(x)
    base = keras.Model(base_in, x, name="base")
    inputs = keras.Input(shape=input_shape)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(base(inputs))
    return keras.Model(inputs, outputs, name="with_base")


# Made when the module runs: only importing it tells what it takes.
deep = functools.partial(build, depth=3)


@keras.saving.register_keras_serializable(package="nets")
class TrainingOnly(keras.layers.Layer):
    """Passes its input on in training and zeros in inference: a deliberate train/inference
    mismatch (as a preprocessing step applied only while training would be)."""

    def call(self, x, training=None):
        return x if training else keras.ops.zeros_like(x)


def mismatched(input_shape, num_classes, *, units: int = 32):
    """An MLP that learns in training mode and answers one class in inference mode."""
    inputs = keras.Input(shape=input_shape)
    x = TrainingOnly()(keras.layers.Flatten()(inputs))
    x = keras.layers.Dense(units, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name="mismatched")
