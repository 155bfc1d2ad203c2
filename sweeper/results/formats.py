"""Export formats of a trained classifier: SavedModel (TF Serving), Keras, TensorFlow Lite.

Every model takes raw pixels: rescaling and resizing are inside it. A README.md and export.json
next to the model describe its input and output. Each export is checked: it must predict what
the Keras model predicts. TensorFlow is imported here, when an export is made.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from sweeper.atomic import file_digest
from sweeper.errors import ExportError, first_line

FORMATS = ("saved_model", "keras", "tflite")
SIGNATURE = "serving_default"


def load(model_file: Path) -> Any:
    """The Keras model in ``model_file``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    try:
        return keras.models.load_model(model_file)
    except Exception as e:  # Keras raises anything from ValueError to zipfile errors
        raise ExportError(f"{model_file}: not a loadable Keras model ({type(e).__name__}: "
                          f"{first_line(str(e))[:300]})") from e


def describe(model: Any) -> dict[str, Any]:
    """What a client sends and gets back, from the model itself."""
    top = pixel_range(model)
    inside = "rescaling" + (" and resizing" if _has_layer(model, "resize") else "")
    return {"input": model.inputs[0].name, "shape": [None, *model.input_shape[1:]],
            "dtype": str(model.inputs[0].dtype),
            "pixels": f"raw, 0..{top:g} ({inside} inside the model)" if top else "raw",
            "output": model.output_names[0], "output_shape": [None, model.output_shape[-1]]}


def pixel_range(model: Any) -> float | None:
    """The largest raw pixel value the model was trained on (its Rescaling layer's divisor)."""
    if not _has_layer(model, "rescale"):
        return None
    return round(1.0 / float(model.get_layer("rescale").scale), 4)


def _has_layer(model: Any, name: str) -> bool:
    return any(layer.name == name for layer in model.layers)


def _sample(model: Any, n: int = 4) -> Any:
    """A few images of raw pixels, whole numbers as the data loaders give them."""
    import numpy as np

    top = pixel_range(model) or 1.0
    shape = (n, *model.input_shape[1:])
    return np.random.default_rng(0).integers(0, int(top) + 1, shape).astype("float32")


def _check(served: Any, model: Any, sample: Any, fmt: str) -> None:
    import numpy as np

    expected = model.predict(sample, verbose=0)
    if not np.allclose(served, expected, rtol=1e-4, atol=1e-5):
        gap = float(np.abs(np.asarray(served) - expected).max())
        raise ExportError(f"{fmt}: the export predicts differently from the model (by {gap:.3g})")


def saved_model(model: Any, target: Path) -> dict[str, Any]:
    """Write ``model`` as a SavedModel (Keras's ``tf_saved_model`` export) and check its
    ``serving_default`` signature against the model; returns the signature as clients see it."""
    import tensorflow as tf

    try:
        model.export(str(target), format="tf_saved_model", verbose=False)
    except Exception as e:
        raise ExportError(f"saved_model: {type(e).__name__}: {first_line(str(e))[:300]}") from e
    serving = tf.saved_model.load(str(target)).signatures[SIGNATURE]
    ((name, spec),) = serving.structured_input_signature[1].items()
    sample = _sample(model)
    ((output, probabilities),) = serving(**{name: tf.constant(sample)}).items()
    _check(probabilities.numpy(), model, sample, "saved_model")
    return {**describe(model), "signature": SIGNATURE, "input": name,
            "shape": spec.shape.as_list(), "dtype": spec.dtype.name, "output": output}


def tflite(model: Any, target: Path) -> dict[str, Any]:
    """Write ``model`` as TensorFlow Lite (``tf.lite.TFLiteConverter``) and check it."""
    import tensorflow as tf

    try:
        target.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    except Exception as e:
        raise ExportError(f"tflite: TensorFlow {tf.__version__} cannot convert this model "
                          f"({type(e).__name__}: {first_line(str(e))[:300]})") from e
    if not hasattr(tf.lite, "Interpreter"):  # LiteRT moved out of TensorFlow: check elsewhere
        return describe(model)
    with warnings.catch_warnings():  # its deprecation notice, not ours to act on
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(target))
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    sample = _sample(model, 1)  # a converted Keras model takes one image per call
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], sample)
    interpreter.invoke()
    _check(interpreter.get_tensor(out["index"]), model, sample, "tflite")
    return {**describe(model), "input": inp["name"], "shape": inp["shape"].tolist()}


def write(model_file: Path, fmt: str, out: Path, version: int = 1) -> dict[str, Any]:
    """Export ``model_file`` into the folder ``out``; returns the export.json written beside it."""
    model = load(model_file)
    if fmt == "saved_model":
        target = out / str(version)
        spec = saved_model(model, target)
    elif fmt == "keras":
        target = out / "model.keras"
        shutil.copy2(model_file, target)
        spec = describe(model)
    elif fmt == "tflite":
        target = out / "model.tflite"
        spec = tflite(model, target)
    else:
        raise ExportError(f"--format {fmt}: one of {', '.join(FORMATS)}")
    info = {"format": fmt, "path": target.name, "source": str(model_file),
            "source_sha256": file_digest(model_file), **spec}
    # Plain writes: the caller builds ``out`` beside its final place and renames it in whole.
    (out / "export.json").write_text(json.dumps(info, indent=2) + "\n")
    (out / "README.md").write_text(_readme(info))
    return info


def _readme(info: dict[str, Any]) -> str:
    serve = ""
    if info["format"] == "saved_model":
        serve = ("\nServe it with TF Serving (this folder is the model base path; each version "
                 "is a numbered folder):\n\n"
                 "    tensorflow_model_server --model_base_path=$PWD --model_name=classifier\n"
                 f"\nInspect it with `saved_model_cli show --all --dir {info['path']}`.\n")
    return (f"# Exported classifier ({info['format']})\n\n"
            f"- model: `{info['path']}`, from `{info['source']}` "
            f"(sha256 {info['source_sha256'][:12]}…)\n"
            + (f"- signature: `{info['signature']}`\n" if "signature" in info else "")
            + f"- input `{info['input']}`: {info['dtype']}, shape {info['shape']}, "
            f"pixels {info['pixels']}\n"
            f"- output `{info['output']}`: class probabilities, shape {info['output_shape']}\n"
            + serve)

