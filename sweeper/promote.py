"""Promote a sweep's best completed trial to ``best/``: ``python -m sweeper.promote SWEEP_DIR``.

``best/`` holds ``model.keras`` (the trial's checkpoint), ``saved_model/<version>/`` (a
SavedModel with a ``serving_default`` signature, in the versioned layout TF Serving loads) and
``best.json``. It is built beside the sweep and renamed into place, and replaced only by a
strictly better trial; each replacement bumps the version, so a TF Serving instance watching
``best/saved_model`` loads the new model. Runs TensorFlow on the CPU: the sweep's parent process
calls it as a child process and never touches an accelerator itself.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from sweeper import results
from sweeper.record import now_iso, read_record, write_json

BEST = "best"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def current(sweep_dir: Path) -> dict[str, Any] | None:
    """The promoted model's best.json, restoring ``best/`` if a swap was cut short."""
    best, old = sweep_dir / BEST, sweep_dir / f".{BEST}.old"
    if not best.exists() and old.exists():
        os.replace(old, best)
    try:
        data = json.loads((best / "best.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def promote(sweep_dir: Path) -> tuple[dict[str, Any], bool]:
    """Promote the best completed trial; returns best.json and whether ``best/`` changed."""
    ranked, _ = results.load(sweep_dir)
    ranked = results.rank(ranked)
    winners = ranked[ranked["rank"] == 1]
    if winners.empty:
        raise results.NoResults(f"{sweep_dir}: no completed trial to promote")
    trial_id = str(winners["trial_id"].iloc[0])
    trial_dir = sweep_dir / "trials" / trial_id
    record = read_record(trial_dir)
    assert record is not None
    checkpoint = trial_dir / record["checkpoint"]
    digest = sha256(checkpoint)
    before = current(sweep_dir)
    if before and not _better(record["objective"], before["objective"], digest, before):
        return before, False
    version = int(before["version"]) + 1 if before else 1
    staging = sweep_dir / f".{BEST}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    shutil.copy2(checkpoint, staging / "model.keras")
    signature = export_saved_model(staging / "model.keras", staging / "saved_model" / str(version))
    info = {
        "trial_id": trial_id, "sweep": record["sweep"], "version": version,
        "objective": record["objective"], "hparams": record["hparams"],
        "metrics": record["metrics"], "checkpoint": str(checkpoint.relative_to(sweep_dir)),
        "checkpoint_sha256": digest, "serving": signature, "versions": record["versions"],
        "promoted_at": now_iso(),
    }
    write_json(staging / "best.json", info)
    best, old = sweep_dir / BEST, sweep_dir / f".{BEST}.old"
    shutil.rmtree(old, ignore_errors=True)
    if best.exists():
        os.replace(best, old)
    os.replace(staging, best)
    shutil.rmtree(old, ignore_errors=True)
    return info, True


def _better(candidate: dict[str, Any], incumbent: dict[str, Any], digest: str,
            before: dict[str, Any]) -> bool:
    if digest == before.get("checkpoint_sha256"):
        return False
    new, old = candidate.get("value"), incumbent.get("value")
    if old is None:
        return new is not None
    return new is not None and (new > old if candidate["mode"] == "max" else new < old)


def export_saved_model(keras_file: Path, out: Path) -> dict[str, Any]:
    """Write a SavedModel whose ``serving_default`` takes raw pixels; returns its input spec."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    model = keras.models.load_model(keras_file)
    model.export(str(out), format="tf_saved_model", verbose=False)
    return input_spec(model)


def input_spec(model: Any) -> dict[str, Any]:
    """What a client sends: the input's name, shape, dtype and pixel range."""
    rescale = model.get_layer("rescale")
    top = round(1.0 / float(rescale.scale))
    return {"signature": "serving_default", "input": model.inputs[0].name,
            "shape": [None, *model.input_shape[1:]], "dtype": "float32",
            "pixels": f"raw, 0..{top} (rescaling and resizing are inside the model)",
            "output": f"class probabilities, shape [None, {model.output_shape[-1]}]"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sweeper.promote", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        info, changed = promote(args.sweep_dir)
    except results.NoResults as e:
        print(f"sweeper: error: {e}", file=sys.stderr)
        sys.exit(2)
    verb = "promoted" if changed else "kept"
    print(f"sweeper: {verb} trial {info['trial_id']} ({info['objective']['name']}="
          f"{info['objective']['value']:.4f}) as {args.sweep_dir / BEST} "
          f"(saved_model version {info['version']})")


if __name__ == "__main__":
    main()
