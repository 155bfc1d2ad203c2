"""Export a sweep's model: ``python -m sweeper.export SWEEP_DIR --format saved_model --out DIR``.

Exports the promoted model (``best/model.keras``) or, with ``--trial ID``, that trial's best
checkpoint. ``saved_model`` writes ``DIR/1/`` (the versioned layout TF Serving loads) with a
``serving_default`` signature; ``keras`` writes ``DIR/model.keras``; ``tflite`` writes
``DIR/model.tflite``. Every model takes raw pixels: rescaling and resizing are inside it. A
README.md and export.json next to the model describe its input and output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

FORMATS = ("saved_model", "keras", "tflite")


def fail(message: str) -> None:
    print(f"sweeper: error: {message}", file=sys.stderr)
    sys.exit(2)


def source(sweep_dir: Path, trial: str | None) -> Path:
    """The .keras file to export, or one clear line and exit."""
    if not sweep_dir.is_dir():
        fail(f"{sweep_dir}: no such sweep folder")
    if trial:
        path = sweep_dir / "trials" / trial / "checkpoints" / "best.keras"
        if not path.is_file():
            fail(f"--trial {trial}: no checkpoint at {path}")
        return path
    path = sweep_dir / "best" / "model.keras"
    if not path.is_file():
        fail(f"{sweep_dir}: no promoted model (best/model.keras); run "
             f"`python -m sweeper.promote {sweep_dir}` or pass --trial ID")
    return path


def export(model_file: Path, fmt: str, out: Path) -> dict[str, object]:
    """Write ``model_file`` to ``out`` in ``fmt``; returns the description written beside it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from sweeper.promote import input_spec

    model = keras.models.load_model(model_file)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "saved_model":
        target = out / "1"
        model.export(str(target), format="tf_saved_model", verbose=False)
    elif fmt == "keras":
        target = out / "model.keras"
        shutil.copy2(model_file, target)
    else:
        import tensorflow as tf

        target = out / "model.tflite"
        target.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    spec = {"format": fmt, "path": str(target.relative_to(out)), "source": str(model_file),
            **input_spec(model)}
    (out / "export.json").write_text(json.dumps(spec, indent=2) + "\n")
    (out / "README.md").write_text(_readme(spec))
    return spec


def _readme(spec: dict[str, object]) -> str:
    serve = ""
    if spec["format"] == "saved_model":
        serve = ("\nServe it with TF Serving (this folder is the model base path):\n\n"
                 "    tensorflow_model_server --model_base_path=$PWD --model_name=classifier\n"
                 "\nInspect it with `saved_model_cli show --all --dir 1`.\n")
    return (f"# Exported classifier ({spec['format']})\n\n"
            f"- model: `{spec['path']}`, from `{spec['source']}`\n"
            f"- signature: `{spec['signature']}`, input `{spec['input']}`: {spec['dtype']}, "
            f"shape {spec['shape']}, pixels {spec['pixels']}\n"
            f"- output: {spec['output']}\n{serve}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sweeper.export", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--format", choices=FORMATS, default="saved_model")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the model to")
    parser.add_argument("--trial", help="export this trial's checkpoint instead of best/")
    parser.add_argument("--force", action="store_true", help="write into a non-empty --out")
    args = parser.parse_args(argv)
    model_file = source(args.sweep_dir, args.trial)
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        fail(f"--out {args.out}: not empty; pass --force to write into it")
    spec = export(model_file, args.format, args.out)
    print(f"sweeper: exported {model_file} as {args.format} to {args.out / str(spec['path'])}")


if __name__ == "__main__":
    main()
