"""The ranked trials in a terminal: what a person compares, fitted to the terminal's width."""

from __future__ import annotations

import sys
from typing import Any

import pandas as pd

from sweeper.record import Status
from sweeper.results.configurations import shown as shown_mean
from sweeper.results.leaderboard import RANKED


def varying(ranked: pd.DataFrame) -> list[str]:
    """The hyperparameter columns whose value differs between trials."""
    return [c for c in ranked if c.startswith("hp.") and ranked[c].nunique(dropna=True) > 1]


def summary_columns(ranked: pd.DataFrame) -> list[str]:
    """What a person compares: the trial (its label names the hyperparameters that vary), its
    status, the objective and the test scores, how long it took, why the pruner stopped it and
    why it failed."""
    metrics = [c for c in ("objective", *ranked.attrs.get("objectives", [])[1:],
                           "test_accuracy", "test_f1_macro") if c in ranked]
    trial = ["label"] if "label" in ranked else ["trial_id", *varying(ranked)]
    optional = ("pruned", "infeasible", "error")
    return [c for c in ("rank", *trial, "status", *metrics, "pareto", "epochs", "duration_s",
                        *optional)
            if c in ranked and (c not in optional or ranked[c].notna().any())]


def for_configurations(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The leaderboard by configuration as a person reads it: ``0.842 ± 0.011 (n=3)`` and the
    tie marks, with the columns to show."""
    shown = table.assign(
        expected=[shown_mean(row) if row["n"] else "" for _, row in table.iterrows()],
        tie=["tied with #1" + (f" (p={p:.2g})" if not pd.isna(p) else "") if t is True else ""
             for t, p in zip(table.get("tied", [None] * len(table)),
                             table.get("p_value", [None] * len(table)), strict=True)])
    columns = [c for c in ("rank", "label", "expected", "tie", "test_accuracy", "duration_s")
               if c in shown]
    return shown, columns


def print_table(ranked: pd.DataFrame, top: int | None = None, title: str = "",
                columns: list[str] | None = None, console: Any = None) -> None:
    """The ranked table in the terminal (rich); failed and running trials in red."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None, header_style="bold")
    columns = columns or summary_columns(ranked)
    headers = {**HEADERS, "objective": _objective_name(ranked)}
    for column in columns:
        # Words wrap in their cell rather than being cut to "optimi…"; numbers stay whole.
        text = column in _TEXT
        table.add_column(headers.get(column, column.removeprefix("hp.")),
                         overflow="fold", no_wrap=not text, ratio=3 if text else None)
    for _, row in (ranked.head(top) if top else ranked).iterrows():
        ranked_row = row.get("status", Status.COMPLETED.value) in RANKED and \
            pd.isna(row.get("infeasible"))
        table.add_row(*[_cell(row[c]) for c in columns], style="" if ranked_row else "red")
    console = console or Console(file=sys.stdout)
    if "pareto" in columns:
        table.caption = "front: not dominated on the objectives (sweep.objectives); knee: the " \
            "front's closest to its ideal point"
    if not console.is_terminal and console.width == 80:
        # Off a terminal (CI logs, files) rich would assume 80 columns and squeeze every cell.
        console.width = 160
    console.print(table)


HEADERS = {"expected": "mean ± 95% CI", "tie": "", "label": "trial", "duration_s": "time (s)",
           "pareto": "Pareto",
           "test_accuracy": "test acc", "test_f1_macro": "test F1"}
_TEXT = ("label", "trial_id", "pruned", "infeasible", "error", "sweep")


def _objective_name(ranked: pd.DataFrame) -> str:
    names = ranked["objective_name"].dropna().unique() if "objective_name" in ranked else []
    return str(names[0]) if len(names) == 1 else "objective"


def _cell(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
