"""Pictures of a sweep beside its leaderboard: the objective by trial (by configuration, with its
interval and tie marks, when configurations were repeated), the hyperparameters that vary against
the objective (parallel coordinates, each axis in its own units) and the learning curves of the
best. No TensorFlow, no pyplot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeper.record import TrialRecord
from sweeper.results import pareto
from sweeper.results.configurations import by_configuration
from sweeper.results.leaderboard import objective
from sweeper.results.table import varying

PLOTS = ("objective_by_trial.png", "parallel_coordinates.png", "learning_curves.png")
# What a picture can show: the best trials' bars, the best trials' lines. A sweep of thousands
# of trials is drawn in a second, not in minutes (its leaderboard has every trial).
MAX_BARS = 40
MAX_LINES = 500
CURVES = 5  # configurations (or trials) in learning_curves.png


def plots(sweep_dir: Path, ranked: pd.DataFrame) -> list[Path]:
    """The sweep's pictures from its ranked trials; those with nothing to show are removed."""
    done = ranked[ranked["rank"].notna()]
    if done.empty:
        return []
    name, mode = objective(ranked)
    if "config_id" in done:  # sweep.repeats: one bar, one line per configuration
        table = by_configuration(ranked, mode)
        table = table[table["rank"].notna()]
        keys = dict(zip(table["config_id"], table["label"], strict=True))
    else:
        table = done.assign(label=done["trial_id"], n=1, objective=_values(done, name))
        keys = dict(zip(table["trial_id"], table["label"], strict=True))
    written = [_bars(sweep_dir / PLOTS[0], table, name)]
    goals = pareto.goals_of(sweep_dir)  # sweep.objectives: pareto.png, infeasible trials too
    every = by_configuration(ranked, mode) if "config_id" in done else ranked
    if (front := pareto.plot(sweep_dir, pareto.annotate(every, goals), goals)) is not None:
        written.append(front)
    for path, draw in ((sweep_dir / PLOTS[1], lambda p: _parallel(p, table, name)),
                       (sweep_dir / PLOTS[2], lambda p: _curves(p, sweep_dir, done, keys, name))):
        if draw(path):
            written.append(path)
        else:  # a stale picture would mislead
            path.unlink(missing_ok=True)
    return written


def _values(done: pd.DataFrame, name: str) -> pd.Series:
    # The objective's own column: what the ranking used, even where records disagree on it.
    return (done[name] if name in done else done["objective"]).astype(float)


def _figure(width: float, height: float) -> Any:
    # Figure, not pyplot: no global state and no GUI backend, so this runs in any process.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _bars(path: Path, table: pd.DataFrame, name: str) -> Path:
    """The objective by trial, or by configuration with its 95% interval and tie marks."""
    bars = min(len(table), MAX_BARS)
    shown = table.iloc[:bars][::-1]
    fig = _figure(8, 0.35 * bars + 1.5)
    ax = fig.add_subplot()
    repeated = "objective_ci" in shown
    error = shown["objective_ci"].astype(float).fillna(0).to_numpy() if repeated else None
    tied = shown.get("tied", pd.Series(False, index=shown.index)).fillna(False).astype(bool)
    colors = ["tab:orange" if r == 1 else "tab:green" if t else "tab:blue"
              for r, t in zip(shown["rank"], tied, strict=True)]
    labels = [f"{label}{'  (tied with #1)' if t else ''}"
              for label, t in zip(shown["label"].astype(str), tied, strict=True)]
    ax.barh(labels, shown["objective"].astype(float), xerr=error, color=colors, capsize=3)
    unit = "configurations: mean ± 95% interval" if repeated else "trials"
    more = f"the best {bars} of {len(table)} " if bars < len(table) else ""
    ax.set(xlabel=name, title=f"{name}, {more}{unit} (best at the top)")
    ax.tick_params(axis="y", labelsize=7)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    return path


def _parallel(path: Path, table: pd.DataFrame, name: str) -> bool:
    """Each varying hyperparameter on an axis of its own units (options labelled, a range that
    spans decades on a log scale), one line per trial or configuration coloured by the
    objective, with a colour bar."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    axes = varying(table)
    if not axes:  # one axis is no parallel coordinates
        return False
    lines = table.iloc[:MAX_LINES]  # the best first
    fig = _figure(max(6, 1.8 * (len(axes) + 1)), 4.8)
    ax = fig.add_subplot()
    positions: list[np.ndarray] = []
    for i, column in enumerate(axes):
        where, ticks = _axis(table[column])
        positions.append(where.iloc[:MAX_LINES].to_numpy())
        ax.axvline(i, color="0.6", lw=0.8)
        for at, text in ticks:
            ax.text(i + 0.03, at, text, fontsize=7, va="center")
    values = lines["objective"].astype(float)
    low, high = float(values.min()), float(values.max())
    norm = Normalize(low, high if high > low else low + 1e-9)
    cmap = colormaps["viridis"]
    ys = np.vstack(positions).T
    for row, value in zip(ys[::-1], values[::-1], strict=True):  # the best drawn last, on top
        ax.plot(range(len(axes)), row, color=cmap(norm(value)), alpha=0.8, lw=1.2)
    ax.set_xticks(range(len(axes)), [c.removeprefix("hp.") for c in axes], fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.1, len(axes) - 0.5)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=name)
    more = f", the best {len(lines)} of {len(table)}" if len(lines) < len(table) else ""
    ax.set(title=f"hyperparameters vs {name}{more}")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    return True


def _axis(column: pd.Series) -> tuple[pd.Series, list[tuple[float, str]]]:
    """Positions in 0..1 of a hyperparameter's values, and the axis's labelled ticks."""
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        options = sorted(column.dropna().astype(str).unique())
        spread = {o: i / max(1, len(options) - 1) for i, o in enumerate(options)}
        return column.astype(str).map(spread).astype(float), [(v, o) for o, v in spread.items()]
    values = column.astype(float)
    low, high = float(values.min()), float(values.max())
    log = low > 0 and high / low >= 100  # a learning rate: decades, not a line
    scale = np.log10 if log else (lambda v: v)
    a, b = scale(low), scale(high)
    span = (b - a) or 1.0
    where = (values.map(scale) - a) / span
    ticks = [(float((scale(v) - a) / span), f"{v:.3g}") for v in
             (np.logspace(a, b, 4) if log else np.linspace(low, high, 4 if high > low else 1))]
    return where, ticks


def _curves(path: Path, sweep_dir: Path, done: pd.DataFrame, keys: dict[Any, Any],
            name: str) -> bool:
    """The objective by epoch of the best configurations (each repeat a line of its colour),
    with an x where the pruner stopped a trial."""
    fig = _figure(8, 4.5)
    ax = fig.add_subplot()
    drawn = False
    column = "config_id" if "config_id" in done else "trial_id"
    for n, key in enumerate(list(keys)[:CURVES]):
        color = f"C{n}"
        label: str | None = str(keys[key])
        for trial_id in done.loc[done[column] == key, "trial_id"]:
            record = TrialRecord.read(sweep_dir / "trials" / str(trial_id))
            if record is None:
                continue
            ys = [float(h.get(name, math.nan)) for h in record.history]
            ax.plot(range(1, len(ys) + 1), ys, color=color, alpha=0.8, label=label)
            label = None  # one legend entry per configuration
            if record.pruned is not None and ys:
                ax.plot([len(ys)], [ys[-1]], "x", color=color, ms=9, mew=2)
            drawn = True
    if not drawn:
        return False
    ax.set(xlabel="epoch", ylabel=name,
           title=f"{name} by epoch, the best {min(CURVES, len(keys))} (x: stopped by the pruner)")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    return True
