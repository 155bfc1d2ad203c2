"""The aggregator: every trial record of a sweep in one pandas DataFrame, ranked; leaderboards.

A trial's folder is the single source of truth: nothing here needs anything but the
``trials/*/trial.json`` records. No TensorFlow import.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from sweeper.record import RECORD, write_atomic

log = logging.getLogger(__name__)

LEADERBOARD_CSV = "leaderboard.csv"
LEADERBOARD_MD = "leaderboard.md"
FIRST = ["rank", "trial_id", "status", "objective"]
LAST = ["best_epoch", "epochs", "duration_s", "device", "error"]


class NoResults(ValueError):
    """A sweep folder without results to rank or promote; the message is one line."""


def load(sweep_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """One row per readable trial record, and one line per record that could not be read."""
    if not sweep_dir.is_dir():
        raise NoResults(f"{sweep_dir}: no such sweep folder")
    rows, problems = [], []
    for path in sorted(sweep_dir.glob(f"trials/*/{RECORD}")):
        try:
            record = json.loads(path.read_text())
            rows.append(_row(record))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            problems.append(f"{path}: skipped, unreadable record ({type(e).__name__}: {e})")
    if not rows:
        raise NoResults(f"{sweep_dir}: no trial records under trials/")
    return pd.DataFrame(rows).convert_dtypes(), problems


def _row(record: dict[str, Any]) -> dict[str, Any]:
    objective = record["objective"]
    row: dict[str, Any] = {
        "trial_id": str(record["trial_id"]), "status": str(record["status"]),
        "objective": objective.get("value"), "objective_name": objective["name"],
        "objective_mode": objective["mode"],
    }
    row.update({f"hp.{k}": v for k, v in record.get("hparams", {}).items()})
    row.update({k: v for k, v in (record.get("metrics") or {}).items()})
    row.update(best_epoch=record.get("best_epoch"), epochs=record.get("epochs_completed"),
               duration_s=record.get("duration_s"), device=record.get("device"),
               error=record.get("error"))
    return row


def rank(df: pd.DataFrame, metric: str | None = None, mode: str | None = None) -> pd.DataFrame:
    """Completed trials best first by ``metric`` (default: the sweep's objective) in ``mode``,
    ties broken by lower validation loss, then shorter duration; failed and running trials last,
    unranked."""
    metric = metric or "objective"
    if metric not in df.columns:
        raise NoResults(f"--metric {metric}: not in the records (have: "
                        f"{', '.join(c for c in df.columns if not c.startswith('hp.'))})")
    mode = mode or str(df["objective_mode"].iloc[0])
    done = df[(df["status"] == "completed") & df[metric].notna()]
    keys = [metric] + [c for c in ("val_loss", "duration_s") if c in df.columns and c != metric]
    done = done.sort_values(keys, ascending=[mode == "min"] + [True] * (len(keys) - 1),
                            kind="stable")
    rest = df.drop(done.index).sort_values(["status", "trial_id"], kind="stable")
    ranked = pd.concat([done.assign(rank=range(1, len(done) + 1)), rest.assign(rank=pd.NA)])
    ranked["rank"] = ranked["rank"].astype("Int64")
    ordered = [c for c in FIRST if c in ranked] + sorted(
        (c for c in ranked if c.startswith("hp.")), key=str) + [
        c for c in ranked if c not in FIRST and c not in LAST and not c.startswith("hp.")] + [
        c for c in LAST if c in ranked]
    return ranked[ordered].reset_index(drop=True)


def leaderboard(sweep_dir: Path, metric: str | None = None,
                mode: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Rank the sweep and write ``leaderboard.csv`` and ``leaderboard.md`` beside its trials."""
    df, problems = load(sweep_dir)
    ranked = rank(df, metric, mode)
    write_atomic(sweep_dir / LEADERBOARD_CSV, ranked.to_csv(index=False))
    write_atomic(sweep_dir / LEADERBOARD_MD, markdown(ranked) + "\n")
    return ranked, problems


def markdown(ranked: pd.DataFrame) -> str:
    """The table as Markdown; unranked (failed, running) rows are marked."""
    shown = ranked.copy()
    shown["status"] = [s if s == "completed" else f"**{s}**" for s in shown["status"]]
    return str(shown.to_markdown(index=False, floatfmt=".4f"))


def summary_columns(ranked: pd.DataFrame) -> list[str]:
    """The columns worth a terminal's width: rank, id, status, varying hparams, key metrics."""
    varying = [c for c in ranked if c.startswith("hp.") and ranked[c].nunique(dropna=True) > 1]
    metrics = [c for c in ("objective", "val_loss", "test_accuracy", "test_f1_macro")
               if c in ranked]
    return ["rank", "trial_id", "status", *varying, *metrics, "duration_s", "device", "error"]


def print_table(ranked: pd.DataFrame, top: int | None = None, title: str = "") -> None:
    """The ranked table in the terminal (rich)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None, header_style="bold")
    columns = [c for c in summary_columns(ranked) if c in ranked]
    for column in columns:
        table.add_column(column.removeprefix("hp."))
    for _, row in (ranked.head(top) if top else ranked).iterrows():
        style = "" if row["status"] == "completed" else "red"
        table.add_row(*[_cell(row[c]) for c in columns], style=style)
    # Off a terminal (CI logs, files) rich would assume 80 columns and squeeze every cell.
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 220).print(table)


def _cell(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
