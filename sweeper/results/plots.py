"""Pictures of a sweep beside its leaderboard: the objective by trial, and the hyperparameters
that vary against the objective (parallel coordinates). No TensorFlow, no pyplot."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sweeper.results.leaderboard import objective
from sweeper.results.table import varying

PLOTS = ("objective_by_trial.png", "parallel_coordinates.png")


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
    fig = Figure(figsize=(8, 0.35 * len(done) + 1.5))
    ax = fig.add_subplot()
    ax.barh(done["trial_id"].astype(str)[::-1], values[::-1])
    ax.set(xlabel=name, title=f"{name} by trial (best at the top)")
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
    fig = Figure(figsize=(max(6, 1.6 * len(table.columns)), 4.5))
    ax = fig.add_subplot()
    # One colour per class, in order of appearance: the best trial comes first.
    colors = ["tab:orange", "tab:blue"][:table["trial"].nunique()]
    parallel_coordinates(table, "trial", ax=ax, color=colors, alpha=0.7)
    ax.set(title=f"hyperparameters vs {name} (each axis scaled to 0..1)")
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
