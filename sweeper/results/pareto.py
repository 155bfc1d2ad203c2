"""Constraints and several objectives on the leaderboard (``sweep.constraints``,
``sweep.objectives``): which trials are feasible, their Pareto ranks, the front's knee, and
``pareto.png``. No TensorFlow import.

A trial dominates another when it is at least as good on every objective and better on one.
Non-dominated sorting gives rank 1 to the trials nothing dominates (the front), rank 2 to those
only the front dominates, and so on; only feasible, scored trials take part. The knee is the
front's member closest to the ideal point (each objective's best on the front) once every
objective is scaled to 0..1 over the front: the member that gives up least on all of them at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeper.config.objectives import BUILD, TFLITE, TRAINED, Goals
from sweeper.errors import ConfigError

PARETO_PNG = "pareto.png"


def goals_of(sweep_dir: Path) -> Goals:
    """The goals of the sweep's last run (its multirun.yaml); none for a sweep without one, or
    goals that no longer parse (the records' own marks stand then)."""
    from omegaconf import OmegaConf

    from sweeper.config.checks import metric_names
    from sweeper.config.objectives import goals

    try:
        config = OmegaConf.load(sweep_dir / "multirun.yaml")
        return goals(config.sweep, metric_names(config.train))
    except (OSError, ConfigError, AttributeError, KeyError, ValueError):
        return Goals()


def feasibility(df: pd.DataFrame, goals: Goals) -> pd.DataFrame:
    """``df`` with the ``infeasible`` column: the constraint each trial breaks (blank: none). A
    trial that was not trained keeps its record's reason; a trained one is judged on the
    sweep's constraints as they stand (a re-run may change them)."""
    if not goals.constraints:
        return df
    reasons = []
    for _, row in df.iterrows():
        if row.get("status") == "infeasible":
            reasons.append(row.get("infeasible"))
            continue
        values = {k: float(v) for k, v in row.items() if isinstance(v, int | float | np.number)
                  and not isinstance(v, bool) and not pd.isna(v)}
        reasons.append(goals.broken(values, (BUILD, TRAINED, TFLITE)))
    return df.assign(infeasible=pd.array(reasons, dtype="string"))


def ranks(values: np.ndarray, maximize: list[bool]) -> list[int]:
    """Non-dominated sorting of ``values`` (one row per trial, one column per objective)."""
    signed = np.where(maximize, -values, values)  # every objective minimised
    left = set(range(len(signed)))
    out = [0] * len(signed)
    level = 0
    while left:
        level += 1
        front = [i for i in left if not any(
            np.all(signed[j] <= signed[i]) and np.any(signed[j] < signed[i]) for j in left)]
        for i in front:
            out[i] = level
        left -= set(front)
    return out


def annotate(table: pd.DataFrame, goals: Goals) -> pd.DataFrame:
    """``table`` (ranked trials or configurations) with ``pareto_rank`` and ``front`` for the
    ranked rows that have every objective, and ``knee`` marking the front's knee."""
    columns = _columns(table, goals)
    if columns is None:
        return table
    scored = table[table["rank"].notna()].dropna(subset=columns)
    rank = pd.array([pd.NA] * len(table), dtype="Int64")
    knee = [False] * len(table)
    if len(scored):
        maximize = [mode == "max" for _, mode in goals.objectives]
        levels = ranks(scored[columns].to_numpy(float), maximize)
        where = [table.index.get_loc(i) for i in scored.index]
        for position, level in zip(where, levels, strict=True):
            rank[position] = level
        front = scored[[level == 1 for level in levels]]
        knee[table.index.get_loc(knee_of(front, columns, maximize))] = True
    front = pd.array(rank == 1, dtype="boolean").fillna(False)
    shown = ["knee" if k else "front" if f else "" if pd.isna(r) else f"rank {r}"
             for k, f, r in zip(knee, front, rank, strict=True)]
    out = table.assign(pareto_rank=rank, front=front, knee=knee, pareto=shown)
    out.attrs["objectives"] = columns
    return out


def knee_of(front: pd.DataFrame, columns: list[str], maximize: list[bool]) -> Any:
    """The index of the front's knee (see the module's docstring)."""
    values = front[columns].to_numpy(float)
    low, high = values.min(axis=0), values.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = (values - low) / span
    gap = np.where(maximize, 1 - scaled, scaled)  # 0 at the front's best on each objective
    return front.index[int(np.argmin(np.sqrt((gap ** 2).sum(axis=1))))]


def _columns(table: pd.DataFrame, goals: Goals) -> list[str] | None:
    """The table's column of each objective (the first is the ranked ``objective``)."""
    if len(goals.objectives) < 2:
        return None
    columns = ["objective", *(name for name, _ in goals.objectives[1:])]
    return columns if all(c in table for c in columns) else None


def plot(sweep_dir: Path, table: pd.DataFrame, goals: Goals) -> Path | None:
    """``pareto.png``: every scored trial on the first two objectives, the front joined and
    labelled, the knee ringed, infeasible trials crossed out."""
    path = sweep_dir / PARETO_PNG
    if "pareto_rank" not in table:
        path.unlink(missing_ok=True)
        return None
    from matplotlib.figure import Figure

    (x_name, x_mode), (y_name, y_mode) = goals.objectives[1], goals.objectives[0]
    x_col, y_col = x_name, "objective"
    fig = Figure(figsize=(7.5, 5))
    ax = fig.add_subplot()
    ranked = table[table["pareto_rank"].notna()]
    ax.scatter(ranked[x_col].astype(float), ranked[y_col].astype(float), color="0.6", s=22,
               label="dominated")
    if "infeasible" in table:
        bad = table[table["infeasible"].notna() & table[x_col].notna() & table[y_col].notna()]
        ax.scatter(bad[x_col].astype(float), bad[y_col].astype(float), marker="x",
                   color="tab:red", s=30, label="infeasible (a constraint)")
    front = ranked[ranked["front"]].sort_values(x_col)
    ax.step(front[x_col].astype(float), front[y_col].astype(float), where="post",
            color="tab:blue", lw=1.2)
    ax.scatter(front[x_col].astype(float), front[y_col].astype(float), color="tab:blue", s=40,
               zorder=3, label="Pareto front")
    for _, row in front.iterrows():
        ax.annotate(str(row.get("label", row.get("trial_id"))), (float(row[x_col]),
                    float(row[y_col])), fontsize=7, xytext=(4, 4), textcoords="offset points")
    knee = ranked[ranked["knee"]]
    ax.scatter(knee[x_col].astype(float), knee[y_col].astype(float), s=160, facecolors="none",
               edgecolors="tab:orange", lw=1.5, zorder=4, label="knee")
    if x_name in ("params", "flops", "trainable_params") and (ranked[x_col] > 0).all():
        ax.set_xscale("log")
    ax.set_xlabel(f"{x_name} ({'lower' if x_mode == 'min' else 'higher'} is better)")
    ax.set_ylabel(f"{y_name} ({'lower' if y_mode == 'min' else 'higher'} is better)")
    ax.set_title(f"Pareto front: {y_name} against {x_name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    return path
