"""Pretrained backbones from ``keras.applications`` under a new classifier head.

Each builder takes images with pixels in [0, 1] (sweeper's rescaling comes first) and puts the
backbone's own preprocessing inside the model, so a checkpoint or an export still takes raw
pixels. The backbone is the layer named ``base``: ``freeze_base`` and ``fine_tune_at`` act on it
(:mod:`sweeper.trial.training`). ImageNet weights come through Keras's own download code into
the Keras cache, once per sweep and before any trial (:func:`weights_download` tells the sweep
process which file, without importing TensorFlow).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.downloads import Download
from sweeper.errors import ConfigError
from sweeper.trial.models import BASE

if TYPE_CHECKING:
    import keras

# Where keras.applications fetches the weights of these backbones without their top (its
# BASE_WEIGHT(S)_PATH and WEIGHTS_HASHES; a test keeps them the same as the installed Keras's).
_KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/"
_MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)
_EFFICIENTNET = "https://storage.googleapis.com/keras-applications/"
_EFFICIENTNET_B0_HASH = "50bc09e76180e00e4465e1a485ddc09d"
_RESNET50_HASH = "4d473c1dd8becc155b73f8504c6f6626"
# caffe-style preprocessing of keras.applications.resnet50.preprocess_input: BGR, mean removed
_IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
MIN_SIZE = 32  # the smallest input keras.applications accepts for these backbones


def mobilenet_v2(input_shape: tuple[int, ...], num_classes: int, *, weights: str | None,
                 units: int | None, dropout: float, bn_momentum: float = 0.9) -> keras.Model:
    """MobileNetV2 (alpha 1.0) after its preprocessing (pixels to [-1, 1])."""
    import keras

    preprocess = keras.layers.Rescaling(2.0, offset=-1.0, name="preprocess")
    return _classifier("MobileNetV2", weights, preprocess, input_shape, num_classes, units,
                       dropout, bn_momentum, "mobilenet_v2")


def efficientnet_b0(input_shape: tuple[int, ...], num_classes: int, *, weights: str | None,
                    units: int | None, dropout: float, bn_momentum: float = 0.9) -> keras.Model:
    """EfficientNet-B0, whose own first layers rescale and normalise pixels in [0, 255]."""
    import keras

    preprocess = keras.layers.Rescaling(255.0, name="preprocess")
    return _classifier("EfficientNetB0", weights, preprocess, input_shape, num_classes, units,
                       dropout, bn_momentum, "efficientnet_b0")


def resnet50(input_shape: tuple[int, ...], num_classes: int, *, weights: str | None,
             units: int | None, dropout: float, bn_momentum: float = 0.9) -> keras.Model:
    """ResNet-50 after its caffe-style preprocessing (RGB to BGR, ImageNet mean removed)."""
    import keras
    import numpy as np

    # resnet50.preprocess_input as a fixed 1x1 convolution (from [0, 1] pixels): a Lambda layer
    # would make the saved model unloadable in Keras's safe mode.
    preprocess = keras.layers.Conv2D(3, 1, trainable=False, name="preprocess")
    preprocess.build((None, *input_shape[:2], 3))
    flip = np.eye(3, dtype="float32")[::-1] * 255.0
    preprocess.set_weights([flip.reshape(1, 1, 3, 3), -np.asarray(_IMAGENET_MEAN_BGR, "float32")])
    return _classifier("ResNet50", weights, preprocess, input_shape, num_classes, units,
                       dropout, bn_momentum, "resnet50")


def _classifier(application: str, weights: str | None, preprocess: Any,
                input_shape: tuple[int, ...], num_classes: int, units: int | None,
                dropout: float, bn_momentum: float, name: str) -> keras.Model:
    """Grayscale to RGB, the preprocessing, the ``keras.applications`` backbone, the new head.
    A pretrained backbone runs in inference mode, so its batch normalisation keeps the statistics
    it learned even when fine-tuned (Keras's transfer-learning guide); a fresh one learns them,
    with ``bn_momentum`` (keras.applications' own 0.99 and 0.999 lag far behind the weights on
    small data)."""
    import keras
    from keras import layers

    base = getattr(keras.applications, application)(
        include_top=False, weights=weights, pooling="avg", input_shape=(*input_shape[:2], 3))
    base.name = BASE  # its weights are loaded by now: Keras named their file after its own name
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = bn_momentum
    inputs = keras.Input(shape=input_shape)
    x = inputs
    if input_shape[-1] == 1:
        x = layers.Concatenate(name="rgb")([x, x, x])
    x = preprocess(x)
    x = base(x, training=False if weights is not None else None)
    if units:
        x = layers.Dense(units, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=name)


_BUILDERS = {f"{__name__}.{f.__name__}": f.__name__
             for f in (mobilenet_v2, efficientnet_b0, resnet50)}


def check(model_cfg: Any) -> None:
    """Refuse a backbone option no trial could build: an input under Keras's minimum, weights
    that are neither ``imagenet``, null, nor a file."""
    if str(model_cfg.get("_target_")) not in _BUILDERS:
        return
    size = model_cfg.get("input_size")
    if size is None or size < MIN_SIZE:
        raise ConfigError(f"model.input_size={size}: must be an integer >= {MIN_SIZE} "
                          "(keras.applications backbones need it)")
    weights = model_cfg.get("weights")
    if weights not in (None, "imagenet") and not Path(str(weights)).expanduser().is_file():
        raise ConfigError(f"model.weights={weights}: must be imagenet, null, or a weights file "
                          "(no such file)")


def weights_download(model_cfg: Any) -> Download | None:
    """The ImageNet weights file a backbone option loads, as Keras names and fetches it (None
    for other models and other weights)."""
    name = _BUILDERS.get(str(model_cfg.get("_target_")))
    if name is None or model_cfg.get("weights") != "imagenet":
        return None
    if name == "mobilenet_v2":
        size = model_cfg.get("input_size")
        rows = size if size in _MOBILENET_V2_SIZES else 224  # Keras's own fallback
        file = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
        return Download(_KERAS_APPLICATIONS + "mobilenet_v2/" + file, file,
                        cache_subdir="models")
    if name == "efficientnet_b0":
        file = "efficientnetb0_notop.h5"
        return Download(_EFFICIENTNET + file, file, _EFFICIENTNET_B0_HASH, "models")
    file = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    return Download(_KERAS_APPLICATIONS + "resnet/" + file, file, _RESNET50_HASH, "models")
