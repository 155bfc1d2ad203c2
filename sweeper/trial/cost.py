"""What a trained model costs to run (:data:`sweeper.config.objectives.COSTS`), measured in the
worker where TensorFlow already runs.

Parameters and FLOPs are known once the model is built (:func:`built`); the rest once it is
trained (:func:`trained`), from its best checkpoint. The TensorFlow Lite sizes and latency
(:func:`tflite`) convert the checkpoint as ``python -m sweeper.export --format tflite`` does,
so the exported file has the size the record holds; ``python -m sweeper.trial.cost
MODEL.tflite`` measures a file's latency the same way, in a process of its own.
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MB = 1e6
LATENCY_RUNS, LATENCY_WARMUP = 50, 10
THROUGHPUT_RUNS = 5


def built(model: Any) -> dict[str, Any]:
    """Parameters and FLOPs per image of a built model."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return {"params": int(model.count_params()), "trainable_params": trainable,
            "flops": flops(model)}


def flops(model: Any) -> int | None:
    """Float operations of one image through the model in inference mode, by TensorFlow's
    profiler over the frozen graph of its concrete function (None where it cannot tell)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2_as_graph,
    )

    spec = tf.TensorSpec([1, *model.inputs[0].shape[1:]], model.inputs[0].dtype)
    try:
        function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
        _, graph_def = convert_variables_to_constants_v2_as_graph(function)
        with tf.Graph().as_default() as graph:
            tf.graph_util.import_graph_def(graph_def, name="")
            options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
            options["output"] = "none"
            profile = tf.compat.v1.profiler.profile(graph=graph, cmd="op", options=options,
                                                    run_meta=tf.compat.v1.RunMetadata())
    except Exception:  # a layer the profiler cannot trace: the figure stays unknown
        return None
    return int(profile.total_float_ops) if profile is not None else None


def trained(model: Any, checkpoint: Path, images: np.ndarray, epoch_s: float,
            gpus: int) -> dict[str, Any]:
    """Size, throughput and memory of the trained ``model`` (whose best checkpoint is
    ``checkpoint``); ``images`` is one training batch of inputs."""
    model.predict_on_batch(images)  # traced and warm
    tic = time.perf_counter()
    for _ in range(THROUGHPUT_RUNS):
        model.predict_on_batch(images)
    seconds = time.perf_counter() - tic
    out = {"keras_mb": checkpoint.stat().st_size / MB,
           "throughput": round(len(images) * THROUGHPUT_RUNS / seconds, 1),
           "epoch_s": round(epoch_s, 3),
           # ru_maxrss is in KiB on Linux (bytes on macOS)
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                * (1 if sys.platform == "darwin" else 1024) / MB, 1)}
    if gpus:
        import tensorflow as tf

        out["gpu_peak_mb"] = round(tf.config.experimental.get_memory_info("GPU:0")["peak"]
                                   / MB, 1)
    return out


# Architecture (the model's Keras config) -> its TensorFlow Lite figures, in this worker: they
# depend on the layers and their shapes, not on the weights' values, and a converter run costs
# a quarter second however small the model (trials differing only in how they train share them).
_MEASURED: dict[str, dict[str, Any]] = {}


def architecture(model: Any) -> str:
    """The model's layers and shapes as Keras configures them (not how it was compiled)."""
    return json.dumps(model.get_config(), sort_keys=True, default=str)


def tflite(checkpoint: Path, architecture: str) -> dict[str, Any]:
    """The SavedModel and TensorFlow Lite sizes of the checkpoint's model, and its latency;
    measured once per ``architecture`` in a worker."""
    if architecture not in _MEASURED:
        _MEASURED[architecture] = _tflite(checkpoint)
    return dict(_MEASURED[architecture])


def _tflite(checkpoint: Path) -> dict[str, Any]:
    import tensorflow as tf

    from sweeper.results.formats import load

    model = load(checkpoint)
    folder = Path(tempfile.mkdtemp(prefix="sweeper-cost-"))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it lists the signature's tensors
            model.export(str(folder / "saved_model"), verbose=False)
        saved = sum(f.stat().st_size for f in (folder / "saved_model").rglob("*") if f.is_file())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    plain = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic-range quantization
    quantized = converter.convert()
    median, spread = latency(plain)
    return {"saved_model_mb": saved / MB, "tflite_mb": len(plain) / MB,
            "tflite_quant_mb": len(quantized) / MB, "latency_ms": median,
            "latency_spread_ms": spread}


def latency(content: bytes, runs: int = LATENCY_RUNS,
            warmup: int = LATENCY_WARMUP) -> tuple[float, float]:
    """Median milliseconds of one image through a TensorFlow Lite model (the interpreter, one
    thread), after ``warmup`` runs, and the range from the 10th to the 90th percentile."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():  # its deprecation notice, once per call otherwise
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    given = interpreter.get_input_details()[0]
    x = np.random.default_rng(0).random(given["shape"]).astype(given["dtype"]) * 255
    times = []
    for i in range(warmup + runs):
        interpreter.set_tensor(given["index"], x)
        tic = time.perf_counter()
        interpreter.invoke()
        if i >= warmup:
            times.append((time.perf_counter() - tic) * 1000)
    deciles = statistics.quantiles(times, n=10)
    return round(statistics.median(times), 5), round(deciles[-1] - deciles[0], 5)


if __name__ == "__main__":  # python -m sweeper.trial.cost MODEL.tflite: its latency, as JSON
    from sweeper.trial.gpu import start_tensorflow

    start_tensorflow()
    median, spread = latency(Path(sys.argv[1]).read_bytes())
    print(json.dumps({"latency_ms": median, "latency_spread_ms": spread,
                      "tflite_mb": Path(sys.argv[1]).stat().st_size / MB}))
