"""Pictures of a sweep beside its leaderboard: the objective by trial, and the hyperparameters
that vary against the objective (parallel coordinates). No TensorFlow, no pyplot."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sweeper.results.leaderboard import objective
from sweeper.results.table import varying

PLOTS = ("objective_by_trial.png", "parallel_coordinates.png")
# What a picture can show: the best trials' bars, the best trials' lines. A sweep of thousands
# of trials is drawn in a second, not in minutes (its leaderboard has every trial).
MAX_BARS = 40
MAX_LINES = 500


def plots(sweep_dir: Path, ranked: pd.DataFrame) -> list[Path]:
    """Objective by trial, and hyperparameters against the objective (parallel coordinates)."""
    # Figure, not pyplot: no global state and no GUI backend, so this runs in any process.
    from matplotlib.figure import Figure
    from pandas.plotting import parallel_coordinates

    done = ranked[ranked["rank"].notna()]
    if done.empty:
        return []
    name, _ = objective(ranked)
    # The objective's own column: what the ranking used, even where records disagree on it.
    values = (done[name] if name in done else done["objective"]).astype(float)
    bars = min(len(done), MAX_BARS)
    fig = Figure(figsize=(8, 0.35 * bars + 1.5))
    ax = fig.add_subplot()
    ax.barh(done["trial_id"].astype(str)[:bars][::-1], values[:bars][::-1])
    shown = f"the best {bars} of {len(done)} trials" if bars < len(done) else "by trial"
    ax.set(xlabel=name, title=f"{name}, {shown} (best at the top)")
    ax.tick_params(axis="y", labelsize=7)
    first = sweep_dir / PLOTS[0]
    fig.savefig(first, dpi=90, bbox_inches="tight")

    axes = varying(done)
    second = sweep_dir / PLOTS[1]
    if not axes:  # one axis is no parallel coordinates; a stale plot would mislead
        second.unlink(missing_ok=True)
        return [first]
    table = pd.DataFrame({c.removeprefix("hp."): _scaled(done[c]) for c in axes})
    table[name] = _scaled(values)
    table["trial"] = ["best" if r == 1 else "other" for r in done["rank"]]
    lines = min(len(table), MAX_LINES)  # scaled over every trial, drawn for the best
    table = table.iloc[:lines]
    fig = Figure(figsize=(max(6, 1.6 * len(table.columns)), 4.5))
    ax = fig.add_subplot()
    # One colour per class, in order of appearance: the best trial comes first.
    colors = ["tab:orange", "tab:blue"][:table["trial"].nunique()]
    parallel_coordinates(table, "trial", ax=ax, color=colors, alpha=0.7)
    best = f", the best {lines} of {len(done)} trials" if lines < len(done) else ""
    ax.set(title=f"hyperparameters vs {name} (each axis scaled to 0..1{best})")
    fig.savefig(second, dpi=90, bbox_inches="tight")
    return [first, second]


def _scaled(column: pd.Series) -> pd.Series:
    """Numbers scaled to 0..1; categories as evenly spaced codes."""
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        codes = column.astype(str).astype("category").cat.codes.astype(float)
        return codes / max(1.0, float(codes.max()))
    values = column.astype(float)
    span = float(values.max() - values.min())
    return (values - values.min()) / span if span else values * 0 + 0.5
