"""``python -m sweeper.export SWEEP_DIR --format saved_model --out DIR``: export a sweep's model.

Exports the promoted model (``best/model.keras``) or, with ``--trial ID``, that trial's best
checkpoint. ``saved_model`` writes ``DIR/<version>/`` (the versioned layout TF Serving loads; the
promoted model's version, 1 for a trial) with a ``serving_default`` signature; ``keras`` writes
``DIR/model.keras``; ``tflite`` writes ``DIR/model.tflite``. Every model takes raw pixels:
rescaling and resizing are inside it. A README.md and export.json next to the model describe its
input and output. Each export is checked: it must predict what the Keras model predicts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path

from sweeper.cli import command
from sweeper.errors import ExportError, NoResults
from sweeper.record import RECORD, Status, TrialRecord
from sweeper.results import leaderboard
from sweeper.results.formats import FORMATS, write

log = logging.getLogger("sweeper.export")  # not __main__ under -m: sweeper's own lines


def source(sweep_dir: Path, trial: str | None) -> tuple[Path, int]:
    """The .keras file to export and its SavedModel version."""
    if not sweep_dir.is_dir():
        raise NoResults(f"{sweep_dir}: no such sweep folder")
    if trial:
        trial_dir = sweep_dir / "trials" / trial
        record = TrialRecord.read(trial_dir)
        if record is None:
            raise NoResults(f"--trial {trial}: no readable {trial_dir / RECORD}")
        path = trial_dir / record.checkpoint
        if not path.is_file():
            raise NoResults(f"--trial {trial}: no checkpoint at {path}")
        if not record.status.scored:
            log.warning("trial %s is %s; exporting its best checkpoint so far", trial,
                        record.status.value)
        return path, 1
    path = sweep_dir / "best" / "model.keras"
    try:
        version = int(json.loads((sweep_dir / "best" / "best.json").read_text())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        version = 0
    if not version or not path.is_file():
        df, _ = leaderboard.load(sweep_dir)
        completed = (df["status"] == Status.COMPLETED.value).any()
        raise NoResults(f"{sweep_dir}: no promoted model (best/); " + (
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
    with command():
        export(args.sweep_dir, args.format, args.out, args.trial, args.force)


def export(sweep_dir: Path, fmt: str, out: Path, trial: str | None, force: bool) -> None:
    model_file, version = source(sweep_dir, trial)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"--out {out}: not empty; pass --force to write into it")
    # Built beside --out and moved in whole: a failed export leaves --out as it was.
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        info = write(model_file, fmt, staging, version)
        if not out.exists():
            os.replace(staging, out)
        else:
            for entry in staging.iterdir():
                _remove(out / entry.name)
                os.replace(entry, out / entry.name)
    except OSError as e:
        raise ExportError(f"--out {out}: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"sweeper: exported {model_file} as {fmt} to {out / info['path']}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
