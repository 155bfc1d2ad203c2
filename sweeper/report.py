"""``python -m sweeper.report SWEEP_DIR``: the ranked trials of a sweep, and plots of them.

    python -m sweeper.report experiments/s1 [--top K] [--metric M] [--format table|csv|md|json]
    python -m sweeper.report experiments/s1 --compare experiments/s2 experiments/s3

Writes ``objective_by_trial.png`` and ``parallel_coordinates.png`` next to the leaderboard.
No TensorFlow import.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from sweeper import results

PLOTS = ("objective_by_trial.png", "parallel_coordinates.png")


def plots(sweep_dir: Path, ranked: pd.DataFrame) -> list[Path]:
    """Objective by trial, and hyperparameters against the objective (parallel coordinates)."""
    from matplotlib.figure import Figure
    from pandas.plotting import parallel_coordinates

    done = ranked[ranked["status"] == "completed"].dropna(subset=["objective"])
    if done.empty:
        return []
    name = str(ranked["objective_name"].iloc[0])
    fig = Figure(figsize=(8, 0.35 * len(done) + 1.5))
    ax = fig.add_subplot()
    ax.barh(done["trial_id"].astype(str)[::-1], done["objective"].astype(float)[::-1])
    ax.set(xlabel=name, title=f"{name} by trial (best at the top)")
    ax.tick_params(axis="y", labelsize=7)
    first = sweep_dir / PLOTS[0]
    fig.savefig(first, dpi=90, bbox_inches="tight")

    varying = [c for c in results.summary_columns(done) if c.startswith("hp.")]
    table = pd.DataFrame({c.removeprefix("hp."): _scaled(done[c]) for c in varying})
    table[name] = _scaled(done["objective"])
    table["rank"] = ["best" if r == 1 else "other" for r in done["rank"]]
    fig = Figure(figsize=(max(6, 1.6 * len(table.columns)), 4.5))
    ax = fig.add_subplot()
    parallel_coordinates(table, "rank", ax=ax, color=["tab:orange", "tab:blue"], alpha=0.7)
    ax.set(title=f"hyperparameters vs {name} (each axis scaled to 0..1)")
    second = sweep_dir / PLOTS[1]
    fig.savefig(second, dpi=90, bbox_inches="tight")
    return [first, second]


def _scaled(column: pd.Series) -> pd.Series:
    """Numbers scaled to 0..1; categories as evenly spaced codes."""
    if not pd.api.types.is_numeric_dtype(column):
        codes = column.astype("category").cat.codes.astype(float)
        span = max(1.0, float(codes.max()))
        return codes / span
    values = column.astype(float)
    span = float(values.max() - values.min())
    return (values - values.min()) / span if span else values * 0 + 0.5


def compare(sweep_dirs: list[Path], metric: str | None) -> pd.DataFrame:
    """The best completed trial of each sweep, side by side."""
    rows = []
    for sweep_dir in sweep_dirs:
        ranked, _ = results.load(sweep_dir)
        ranked = results.rank(ranked, metric)
        best = ranked[ranked["rank"] == 1]
        counts = ranked["status"].value_counts()
        row = {"sweep": sweep_dir.name, "trials": len(ranked),
               "completed": int(counts.get("completed", 0)),
               "failed": int(counts.get("failed", 0))}
        if not best.empty:
            row.update(best.iloc[0].drop(labels=["rank", "status"]).to_dict())
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sweeper.report", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--top", type=int, help="show only the best K trials")
    parser.add_argument("--metric", help="rank by this column (default: the sweep's objective)")
    parser.add_argument("--mode", choices=("max", "min"), help="with --metric: max or min")
    parser.add_argument("--format", choices=("table", "csv", "md", "json"), default="table")
    parser.add_argument("--compare", nargs="+", type=Path, metavar="SWEEP_DIR",
                        help="more sweeps: show each sweep's best trial side by side")
    args = parser.parse_args(argv)
    try:
        if args.compare:
            table = compare([args.sweep_dir, *args.compare], args.metric)
            _emit(table, args.format, "best trial of each sweep", None)
            return
        ranked, problems = results.load(args.sweep_dir)
        ranked = results.rank(ranked, args.metric, args.mode)
    except results.NoResults as e:
        print(f"sweeper: error: {e}", file=sys.stderr)
        sys.exit(2)
    for problem in problems:
        print(f"sweeper: warning: {problem}", file=sys.stderr)
    plots(args.sweep_dir, ranked)
    _emit(ranked, args.format, f"sweep {args.sweep_dir.name}", args.top)


def _emit(table: pd.DataFrame, fmt: str, title: str, top: int | None) -> None:
    shown = table.head(top) if top else table
    if fmt == "csv":
        sys.stdout.write(shown.to_csv(index=False))
    elif fmt == "md":
        print(results.markdown(shown) if "status" in shown else shown.to_markdown(index=False))
    elif fmt == "json":
        print(shown.to_json(orient="records", indent=2))
    elif "rank" in shown:
        results.print_table(shown, title=title)
    else:
        print(shown.to_string(index=False))


if __name__ == "__main__":
    main()
