"""Export a sweep's model: ``python -m sweeper.export SWEEP_DIR --format saved_model --out DIR``.

Exports the promoted model (``best/model.keras``) or, with ``--trial ID``, that trial's best
checkpoint. ``saved_model`` writes ``DIR/<version>/`` (the versioned layout TF Serving loads; the
promoted model's version, 1 for a trial) with a ``serving_default`` signature; ``keras`` writes
``DIR/model.keras``; ``tflite`` writes ``DIR/model.tflite``. Every model takes raw pixels:
rescaling and resizing are inside it. A README.md and export.json next to the model describe its
input and output. Each export is checked: it must predict what the Keras model predicts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

from sweeper import results
from sweeper.preflight import fail
from sweeper.record import RECORD, Status, read_record

FORMATS = ("saved_model", "keras", "tflite")
SIGNATURE = "serving_default"


class ExportError(RuntimeError):
    """The model cannot be exported in this format; the message is one line."""


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:  # hashlib.file_digest would do, from Python 3.11 on
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(model_file: Path) -> Any:
    """The Keras model in ``model_file``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    try:
        return keras.models.load_model(model_file)
    except Exception as e:  # Keras raises anything from ValueError to zipfile errors
        raise ExportError(f"{model_file}: not a loadable Keras model ({type(e).__name__}: "
                          f"{_first_line(e)})") from e


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
        raise ExportError(f"saved_model: {type(e).__name__}: {_first_line(e)}") from e
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
                          f"({type(e).__name__}: {_first_line(e)})") from e
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
            "source_sha256": sha256(model_file), **spec}
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


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:300]


def source(sweep_dir: Path, trial: str | None) -> tuple[Path, int]:
    """The .keras file to export and its SavedModel version, or one clear line and exit."""
    if not sweep_dir.is_dir():
        fail(f"{sweep_dir}: no such sweep folder")
    if trial:
        trial_dir = sweep_dir / "trials" / trial
        record = read_record(trial_dir)
        if record is None:
            fail(f"--trial {trial}: no readable {trial_dir / RECORD}")
        path = trial_dir / str(record.get("checkpoint"))
        if not path.is_file():
            fail(f"--trial {trial}: no checkpoint at {path}")
        if record.get("status") != Status.COMPLETED.value:
            print(f"sweeper: warning: trial {trial} is {record.get('status')}; exporting its "
                  "best checkpoint so far", file=sys.stderr)
        return path, 1
    path = sweep_dir / "best" / "model.keras"
    try:
        version = int(json.loads((sweep_dir / "best" / "best.json").read_text())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        version = 0
    if not version or not path.is_file():
        try:
            df, _ = results.load(sweep_dir)
        except results.NoResults as e:
            fail(str(e))
        completed = (df["status"] == Status.COMPLETED.value).any()
        fail(f"{sweep_dir}: no promoted model (best/); " + (
            f"run `python -m sweeper.promote {sweep_dir}` or pass --trial ID" if completed
            else "no trial completed"))
    return path, version


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sweeper.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--format", choices=FORMATS, default="saved_model")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the model to")
    parser.add_argument("--trial", help="export this trial's checkpoint instead of best/")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty --out (replacing what an export puts there)")
    args = parser.parse_args(argv)
    model_file, version = source(args.sweep_dir, args.trial)
    out: Path = args.out
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        fail(f"--out {out}: not empty; pass --force to write into it")
    # Built beside --out and moved in whole: a failed export leaves --out as it was.
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        info = write(model_file, args.format, staging, version)
        if not out.exists():
            os.replace(staging, out)
        else:
            for entry in staging.iterdir():
                _remove(out / entry.name)
                os.replace(entry, out / entry.name)
    except ExportError as e:
        fail(str(e))
    except OSError as e:
        fail(f"--out {out}: {e}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"sweeper: exported {model_file} as {args.format} to {out / info['path']}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
