"""How many trials a sweep's search will run: written as it starts, read by ``sweeper.report``
to count the trials of a running sweep that have not started yet."""

from __future__ import annotations

import json
from pathlib import Path

from sweeper.atomic import write_json
from sweeper.record import now_iso

PLAN = "plan.json"  # how many trials the sweep's search will run, written as it starts


def write_plan(sweep_dir: Path, trials: int | None) -> None:
    """Say how many trials this run of the sweep will have in all (None: the search cannot
    tell), for ``sweeper.report`` on a running sweep."""
    write_json(sweep_dir / PLAN, {"trials": trials, "written_at": now_iso()})


def planned_trials(sweep_dir: Path) -> int | None:
    """The trials the sweep's search said it will run (None: unknown)."""
    try:
        trials = json.loads((sweep_dir / PLAN).read_text())["trials"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return trials if isinstance(trials, int) else None
