"""sweeper from Python (a notebook, a script): run a sweep, read a finished one.

    import sweeper
    results = sweeper.sweep(["model=cnn", "optimizer=adam,sgd", "train.epochs=3"], name="cnn")
    results.leaderboard          # a pandas DataFrame, best first
    results.best.hparams         # the best trial's record
    results.best_model           # experiments/cnn/best/model.keras

A sweep runs as its own process (``python -m sweeper -m ...``): TensorFlow, the GPUs and Hydra's
global state stay out of the caller's process, and its output is passed through line by line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.config.keys import key_of
from sweeper.errors import SweeperError, SweepIncomplete
from sweeper.record import TrialRecord


@dataclass
class Results:
    """A sweep's results: its ranked leaderboard and its trials' records."""

    sweep_dir: Path
    leaderboard: Any  # pandas.DataFrame: one row per trial, ranked; rank 1 is the best
    problems: list[str] = field(default_factory=list)  # records that could not be read

    @property
    def best(self) -> TrialRecord | None:
        """The record of the best-ranked trial, completed or pruned (None: no trial ranks)."""
        ranked = self.leaderboard[self.leaderboard["rank"] == 1]
        if ranked.empty:
            return None
        return TrialRecord.load(self.sweep_dir / "trials" / str(ranked["trial_id"].iloc[0]))

    @property
    def best_model(self) -> Path | None:
        """The promoted model (``best/model.keras``), else the best trial's checkpoint."""
        promoted = self.sweep_dir / "best" / "model.keras"
        if promoted.is_file():
            return promoted
        best = self.best
        return None if best is None else self.sweep_dir / "trials" / best.trial_id / \
            best.checkpoint

    def records(self) -> dict[str, TrialRecord]:
        """Every readable trial record, by trial id."""
        found = {}
        for trial_dir in sorted((self.sweep_dir / "trials").iterdir()):
            record = TrialRecord.read(trial_dir)
            if record is not None:
                found[record.trial_id] = record
        return found


def load(sweep_dir: str | Path) -> Results:
    """The results of the sweep in ``sweep_dir`` (``experiments/<sweep name>``)."""
    from sweeper.results import leaderboard

    folder = Path(sweep_dir)
    df, problems = leaderboard.load(folder)
    return Results(folder, leaderboard.rank(df), problems)


def sweep(overrides: Sequence[str] = (), *, name: str | None = None, cwd: str | Path = ".",
          quiet: bool = False) -> Results:
    """Run a sweep of ``overrides`` (as on the command line: ``"optimizer=adam,sgd"``) and
    return its results. ``name`` is ``sweep.name`` (default: a timestamp); outputs go under
    ``cwd``. Raises :class:`SweeperError` with the command's one-line message when the sweep
    cannot start, :class:`SweepIncomplete` when it ran but did not finish its work."""
    given = {key_of(o): o.split("=", 1)[1] for o in overrides if "=" in o}
    name = name or given.get("sweep.name") or time.strftime("%Y-%m-%d_%H-%M-%S")
    arguments = ["-m", *(o for o in overrides if key_of(o) != "sweep.name"),
                 f"sweep.name={name}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    process = subprocess.Popen([sys.executable, "-m", "sweeper", *arguments], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    error = ""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("sweeper: error: "):
            error = line.removeprefix("sweeper: error: ").strip()
        if not quiet:
            print(line, end="", flush=True)
    status = process.wait()
    if status != 0:
        message = error or f"python -m sweeper exited with status {status}"
        raise (SweepIncomplete if status == SweepIncomplete.status else SweeperError)(message)
    experiments = given.get("paths.experiments", "experiments")
    return load(Path(cwd) / experiments / name)
