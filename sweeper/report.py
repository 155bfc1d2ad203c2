"""``python -m sweeper.report SWEEP_DIR``: the ranked trials of a sweep, and plots of them.

    python -m sweeper.report experiments/s1 [--top K] [--metric M] [--format table|csv|md|json]
    python -m sweeper.report experiments/s1 --compare experiments/s2 experiments/s3

Refreshes the leaderboard (ranked by the sweep's objective) and writes
``objective_by_trial.png`` and ``parallel_coordinates.png`` next to it; ``--metric`` changes only
what is shown. No TensorFlow import.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from sweeper import results
from sweeper.preflight import fail
from sweeper.record import Status

PLOTS = ("objective_by_trial.png", "parallel_coordinates.png")


def plots(sweep_dir: Path, ranked: pd.DataFrame) -> list[Path]:
    """Objective by trial, and hyperparameters against the objective (parallel coordinates)."""
    # Figure, not pyplot: no global state and no GUI backend, so this runs in any process.
    from matplotlib.figure import Figure
    from pandas.plotting import parallel_coordinates

    done = ranked[ranked["rank"].notna()]
    if done.empty:
        return []
    name, _ = results.objective(ranked)
    # The objective's own column: what the ranking used, even where records disagree on it.
    values = (done[name] if name in done else done["objective"]).astype(float)
    fig = Figure(figsize=(8, 0.35 * len(done) + 1.5))
    ax = fig.add_subplot()
    ax.barh(done["trial_id"].astype(str)[::-1], values[::-1])
    ax.set(xlabel=name, title=f"{name} by trial (best at the top)")
    ax.tick_params(axis="y", labelsize=7)
    first = sweep_dir / PLOTS[0]
    fig.savefig(first, dpi=90, bbox_inches="tight")

    varying = [c for c in results.summary_columns(done) if c.startswith("hp.")]
    second = sweep_dir / PLOTS[1]
    if not varying:  # one axis is no parallel coordinates; a stale plot would mislead
        second.unlink(missing_ok=True)
        return [first]
    table = pd.DataFrame({c.removeprefix("hp."): _scaled(done[c]) for c in varying})
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


def compare(sweep_dirs: list[Path], metric: str | None, mode: str | None) -> pd.DataFrame:
    """The best completed trial of each sweep, one sweep a row."""
    rows = []
    for sweep_dir in sweep_dirs:
        df, _ = results.load(sweep_dir)
        ranked = results.rank(df, metric, mode)
        counts = ranked["status"].value_counts()
        row = {"sweep": str(sweep_dir), "trials": len(ranked),
               **{status: int(counts.get(status, 0)) for status in ("completed", "failed",
                                                                     "running")}}
        best = ranked[ranked["rank"] == 1]
        if not best.empty:
            row.update(best.iloc[0].drop(labels=["rank", "status"]).to_dict())
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sweeper.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--top", type=_positive, help="show only the best K trials")
    parser.add_argument("--metric", help="rank by this column (default: the sweep's objective)")
    parser.add_argument("--mode", choices=("max", "min"),
                        help="with --metric (default: min for a loss, max otherwise)")
    parser.add_argument("--format", choices=("table", "csv", "md", "json"), default="table")
    parser.add_argument("--compare", nargs="+", type=Path, metavar="SWEEP_DIR",
                        help="more sweeps: each sweep's best trial side by side")
    args = parser.parse_args(argv)
    try:
        if args.compare:
            table = compare([args.sweep_dir, *args.compare], args.metric, args.mode)
            _emit(table, args.format, "best trial of each sweep", None)
            return
        ranked, problems = results.load(args.sweep_dir)
        ranked = results.rank(ranked, args.metric, args.mode)
    except results.NoResults as e:
        fail(str(e))
    for problem in problems:
        print(f"sweeper: warning: {problem}", file=sys.stderr)
    try:
        board, _ = results.leaderboard(args.sweep_dir)
        plots(args.sweep_dir, board)
    except OSError as e:  # someone else's read-only sweep still gets its table
        print(f"sweeper: warning: leaderboard and plots not written: {e}", file=sys.stderr)
    _emit(ranked, args.format, f"sweep {args.sweep_dir.name}", args.top)
    if (ranked["status"] == Status.FAILED.value).all():  # the table above shows why
        fail(f"{args.sweep_dir}: every trial failed ({len(ranked)})")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 1")
    return int(text)


def _emit(table: pd.DataFrame, fmt: str, title: str, top: int | None) -> None:
    shown = table.head(top) if top else table
    if fmt == "csv":
        sys.stdout.write(shown.to_csv(index=False))
    elif fmt == "md":
        print(results.markdown(shown))
    elif fmt == "json":
        print(shown.to_json(orient="records", indent=2))
    elif "rank" in shown:
        results.print_table(shown, title=f"{title}: {len(shown)} of {len(table)} trials")
    else:
        keep = ("sweep", "trials", "completed", "failed", "running", "trial_id", "objective_name")
        columns = [c for c in keep if c in shown]
        columns += [c for c in results.summary_columns(shown) if c not in columns]
        results.print_table(shown, title=title, columns=columns)


if __name__ == "__main__":
    main()
