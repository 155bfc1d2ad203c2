"""Model builders: the classic MLP and CNN tutorials, LeNet-5, AlexNet and VGG-16.

Every model takes raw pixels and rescales (and, where the architecture needs it, resizes) inside
itself, so its checkpoint serves the same input the data loaders produce.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sweeper.trial import augment

if TYPE_CHECKING:
    import keras


def build(
    model_cfg: Any, input_shape: tuple[int, ...], num_classes: int, scale: float,
    augment_cfg: Any = None,
) -> keras.Model:
    """Build the classifier ``model_cfg.name`` for images of ``input_shape``, with the random
    augmentation layers of ``augment_cfg`` (active only in training) after rescaling."""
    import keras

    inputs = keras.Input(shape=input_shape, name="pixels")
    x = keras.layers.Rescaling(1.0 / scale, name="rescale")(inputs)
    x = augment.apply(augment_cfg, x)
    if model_cfg.input_size is not None and tuple(input_shape[:2]) != (model_cfg.input_size,) * 2:
        x = keras.layers.Resizing(model_cfg.input_size, model_cfg.input_size, name="resize")(x)
    x = _BUILDERS[model_cfg.name](x, model_cfg)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=model_cfg.name)


def _filters(n: int, width: float) -> int:
    return max(1, round(n * width))


def _mlp(x: Any, m: Any) -> Any:
    from keras import layers

    x = layers.Flatten()(x)
    x = layers.Dense(m.units, activation="relu")(x)
    return layers.Dropout(m.dropout)(x)


def _cnn(x: Any, m: Any) -> Any:
    from keras import layers

    for n in (32, 64, 128):
        x = layers.Conv2D(_filters(n, m.width), 3, padding="same", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.GlobalMaxPooling2D()(x)
    x = layers.Dropout(m.dropout)(x)
    x = layers.Dense(m.units, activation="relu")(x)
    return layers.Dropout(m.dropout)(x)


def _lenet5(x: Any, m: Any) -> Any:
    from keras import layers

    x = layers.Conv2D(_filters(6, m.width), 5, activation="tanh", name="C1")(x)
    x = layers.AveragePooling2D(2, name="S2")(x)
    x = layers.Conv2D(_filters(16, m.width), 5, activation="tanh", name="C3")(x)
    x = layers.AveragePooling2D(2, name="S4")(x)
    x = layers.Conv2D(_filters(120, m.width), 5, activation="tanh", padding="same", name="C5")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(m.units, activation="tanh", name="F6")(x)
    return layers.Dropout(m.dropout)(x)


def _alexnet(x: Any, m: Any) -> Any:
    from keras import layers

    stack = ((96, 11, 4, True), (256, 5, 1, True), (384, 3, 1, False), (384, 3, 1, False),
             (256, 3, 1, True))
    for filters, kernel, stride, pool in stack:
        x = layers.Conv2D(_filters(filters, m.width), kernel, strides=stride, padding="same",
                          activation="relu")(x)
        if pool:
            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    return _dense_head(x, m)


def _vgg16(x: Any, m: Any) -> Any:
    from keras import layers

    for filters, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convs):
            x = layers.Conv2D(_filters(filters, m.width), 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2, strides=2, padding="same")(x)
    return _dense_head(x, m)


def _dense_head(x: Any, m: Any) -> Any:
    """The two fully connected layers of AlexNet and VGG-16, each followed by dropout."""
    from keras import layers

    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(m.units, activation="relu")(x)
        x = layers.Dropout(m.dropout)(x)
    return x


_BUILDERS: dict[str, Callable[[Any, Any], Any]] = {
    "mlp": _mlp,
    "cnn": _cnn,
    "lenet5": _lenet5,
    "alexnet": _alexnet,
    "vgg16": _vgg16,
}


def optimizer(opt_cfg: Any) -> keras.optimizers.Optimizer:
    """The Keras optimizer ``opt_cfg.name`` with its learning rate and momentum."""
    import keras

    lr = opt_cfg.learning_rate
    if opt_cfg.name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=opt_cfg.momentum)
    if opt_cfg.name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr, momentum=opt_cfg.momentum)
    if opt_cfg.name == "adagrad":
        return keras.optimizers.Adagrad(learning_rate=lr)
    return keras.optimizers.Adam(learning_rate=lr)
