"""Models: the classifier sweeper builds around a builder's network, and the classic builders
(the MLP and CNN tutorials, LeNet-5, AlexNet, VGG-16).

A builder is any function ``f(input_shape, num_classes, **hparams) -> keras.Model`` named by the
``_target_`` of a ``model`` option; its model maps images (pixels scaled to [0, 1], already
resized to ``model.input_size``) to ``num_classes`` logits. :func:`build` instantiates it with
Hydra and wraps it: every classifier takes RAW pixels, so its checkpoint and its exports serve the
same input the data loaders produce (results/formats.py reads the ``rescale`` and ``resize``
layers to describe it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeper.config.targets import MODEL, TARGET, arguments
from sweeper.trial import augment

if TYPE_CHECKING:
    import keras

#: the layer a builder's model names its pretrained part, for ``freeze_base``/``fine_tune_at``
BASE = "base"


def build(model_cfg: Any, input_shape: tuple[int, ...], num_classes: int,
          scale: float, augment_cfg: Any = None) -> keras.Model:
    """The classifier ``model_cfg`` describes, for raw images of ``input_shape`` whose largest
    pixel value is ``scale``, with the random layers of ``augment_cfg`` (active only in
    training)."""
    from hydra.utils import instantiate

    size = model_cfg.get("input_size")
    shape = (size, size, input_shape[-1]) if size else tuple(input_shape)
    # sweeper's own keys (input_size, freeze_base, fine_tune_at) are not the builder's
    builder = {TARGET: model_cfg[TARGET], **arguments(model_cfg, MODEL)}
    body = instantiate(builder, input_shape=shape, num_classes=num_classes, _convert_="all")
    return classifier(body, tuple(input_shape), scale, size, augment_cfg)


def classifier(body: keras.Model, input_shape: tuple[int, ...], scale: float,
               input_size: int | None, augment_cfg: Any = None) -> keras.Model:
    """``body`` between sweeper's input layers and its output: raw pixels named ``pixels``,
    ``rescale`` to [0, 1], the ``augment`` layers (training only), ``resize`` where
    ``input_size`` asks, the body, and the class probabilities in float32 (so a mixed-precision
    model's softmax stays exact)."""
    import keras

    inputs = keras.Input(shape=input_shape, name="pixels")
    x = keras.layers.Rescaling(1.0 / scale, name="rescale")(inputs)
    x = augment.apply(augment_cfg, x)
    if input_size and tuple(input_shape[:2]) != (input_size, input_size):
        # Keras's image layers default to training=True, and a call that does not say (an
        # export's traced call) hands that default on to the layers after it: say it here.
        x = keras.layers.Resizing(input_size, input_size, name="resize")(x, training=False)
    x = body(x)
    # A body that ends in a softmax already gives probabilities: only cast them.
    activation = "linear" if _ends_in_softmax(body) else "softmax"
    outputs = keras.layers.Activation(activation, dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=body.name)


def _ends_in_softmax(body: keras.Model) -> bool:
    import keras

    last = body.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    return getattr(getattr(last, "activation", None), "__name__", None) == "softmax"


def base_of(model: keras.Model) -> keras.Layer | None:
    """The layer named :data:`BASE` inside ``model`` (at any depth), or None."""
    for layer in model.layers:
        if layer.name == BASE:
            return layer
        if hasattr(layer, "layers"):
            found = base_of(layer)
            if found is not None:
                return found
    return None


# -- the classic builders ------------------------------------------------------------------------
#
# Every builder trains from scratch on small data with its defaults: He initialisation under ReLU
# (Glorot's default leaves a deep ReLU stack at chance), and batch normalisation whose moving
# statistics follow the weights closely enough to validate from the first epoch (``bn_momentum``;
# Keras's 0.99 averages over ~100 steps, more than a small dataset's epoch). AlexNet and VGG-16
# are their widely used "-BN" variants: convolution, BatchNormalization, ReLU.

RELU_INIT = "he_normal"


def _filters(n: int, width: float) -> int:
    return max(1, round(n * width))


def _model(inputs: Any, x: Any, num_classes: int, name: str) -> keras.Model:
    import keras

    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def mlp(input_shape: tuple[int, ...], num_classes: int, *, units: int,
        dropout: float) -> keras.Model:
    """Flatten, Dense(units, relu), Dropout: the classic MNIST tutorial's network."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Flatten()(inputs)
    x = layers.Dense(units, activation="relu", kernel_initializer=RELU_INIT)(x)
    x = layers.Dropout(dropout)(x)
    return _model(inputs, x, num_classes, "mlp")


def cnn(input_shape: tuple[int, ...], num_classes: int, *, units: int, dropout: float,
        width: float, bn_momentum: float) -> keras.Model:
    """Three Conv/BatchNorm/MaxPool blocks, GlobalMaxPooling2D, Dropout, Dense(units)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = inputs
    for n in (32, 64, 128):
        x = layers.Conv2D(_filters(n, width), 3, padding="same", activation="relu",
                          kernel_initializer=RELU_INIT)(x)
        x = layers.BatchNormalization(momentum=bn_momentum)(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    x = layers.GlobalMaxPooling2D()(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(units, activation="relu", kernel_initializer=RELU_INIT)(x)
    x = layers.Dropout(dropout)(x)
    return _model(inputs, x, num_classes, "cnn")


def lenet5(input_shape: tuple[int, ...], num_classes: int, *, units: int, dropout: float,
           width: float) -> keras.Model:
    """LeNet-5: C1, S2, C3, S4, C5, F6 with tanh and average pooling."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(_filters(6, width), 5, activation="tanh", name="C1")(inputs)
    x = layers.AveragePooling2D(2, name="S2")(x)
    x = layers.Conv2D(_filters(16, width), 5, activation="tanh", name="C3")(x)
    x = layers.AveragePooling2D(2, name="S4")(x)
    x = layers.Conv2D(_filters(120, width), 5, activation="tanh", padding="same", name="C5")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(units, activation="tanh", name="F6")(x)
    x = layers.Dropout(dropout)(x)
    return _model(inputs, x, num_classes, "lenet5")


def alexnet(input_shape: tuple[int, ...], num_classes: int, *, units: int, dropout: float,
            width: float, bn_momentum: float) -> keras.Model:
    """AlexNet-BN: AlexNet's five convolutions (each with batch normalisation) and three
    poolings, then two dense layers."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = inputs
    stack = ((96, 11, 4, True), (256, 5, 1, True), (384, 3, 1, False), (384, 3, 1, False),
             (256, 3, 1, True))
    for filters, kernel, stride, pool in stack:
        x = _conv_bn_relu(x, _filters(filters, width), kernel, stride, bn_momentum)
        if pool:
            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    return _model(inputs, _dense_head(x, units, dropout), num_classes, "alexnet")


def vgg16(input_shape: tuple[int, ...], num_classes: int, *, units: int, dropout: float,
          width: float, bn_momentum: float) -> keras.Model:
    """VGG-16-BN: VGG-16's 13 convolutions (each with batch normalisation) in five blocks, then
    two dense layers."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = inputs
    for filters, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convs):
            x = _conv_bn_relu(x, _filters(filters, width), 3, 1, bn_momentum)
        x = layers.MaxPooling2D(2, strides=2, padding="same")(x)
    return _model(inputs, _dense_head(x, units, dropout), num_classes, "vgg16")


def _conv_bn_relu(x: Any, filters: int, kernel: int, stride: int, bn_momentum: float) -> Any:
    """Convolution (no bias: the normalisation's offset takes its place), BatchNormalization,
    ReLU: the layer of the "-BN" variants."""
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      kernel_initializer=RELU_INIT)(x)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    return layers.Activation("relu")(x)


def _dense_head(x: Any, units: int, dropout: float) -> Any:
    """The two fully connected layers of AlexNet and VGG-16, each followed by dropout."""
    from keras import layers

    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(units, activation="relu", kernel_initializer=RELU_INIT)(x)
        x = layers.Dropout(dropout)(x)
    return x
