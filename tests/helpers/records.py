"""trial.json files as trials write them, for tests of what reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def trial_record(trial_id: str, status: str = "completed", value: float | None = 0.9,
                 val_loss: float | None = 0.5, duration: float = 10.0, **hparams: Any) -> dict:
    """A trial.json (schema 1) as a trial writes it; failed and running ones have no value."""
    metrics = {"val_accuracy": value, "val_loss": val_loss, "test_accuracy": value}
    return {"schema": 1, "sweep": "s", "trial_id": trial_id, "status": status,
            "overrides": [], "hparams": {"model.units": 16, "optimizer": "adam", **hparams},
            "objective": {"name": "val_accuracy", "mode": "max", "value": value},
            "metrics": metrics if value is not None else {}, "best_epoch": 1,
            "epochs_completed": 1, "checkpoint": "checkpoints/best.keras",
            "duration_s": duration, "device": "CPU",
            "error": "TrialFailed: nan loss at epoch 1" if status == "failed" else None}


def write_trial(sweep: Path, record: dict | str, name: str | None = None) -> Path:
    """Write a trial folder holding ``record`` (a dict, or raw text for broken records)."""
    folder = sweep / "trials" / (name or record["trial_id"])  # type: ignore[index]
    folder.mkdir(parents=True)
    text = record if isinstance(record, str) else json.dumps(record)
    (folder / "trial.json").write_text(text)
    return folder
