"""``python -m sweeper.report SWEEP_DIR``: the ranked trials of a sweep, and plots of them.

    python -m sweeper.report experiments/s1 [--top K] [--metric M] [--format table|csv|md|json]
    python -m sweeper.report experiments/s1 --compare experiments/s2 experiments/s3

Refreshes the leaderboard (ranked by the sweep's objective) and writes its pictures next to it;
``--metric`` changes only what is shown. A sweep with repeated configurations
(``sweep.repeats``) is shown by configuration (``0.842 ± 0.011 (n=3)`` and the tie marks); the
best trial's per-class test precision and recall follow the table. A trial record that cannot
be read keeps its row (status ``unreadable``) and makes the command exit 1. No TensorFlow import.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from sweeper import lock
from sweeper.cli import command
from sweeper.errors import NoResults, SweepIncomplete
from sweeper.record import Status, TrialRecord
from sweeper.results import leaderboard, pareto, plots, table
from sweeper.results.configurations import by_configuration
from sweeper.results.planned import planned_trials

log = logging.getLogger("sweeper.report")  # not __main__ under -m: sweeper's own lines


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
    parser.add_argument("--pareto", action="store_true",
                        help="only the Pareto front of the sweep's objectives (sweep.objectives)")
    args = parser.parse_args(argv)
    with command():
        report(args)


def report(args: argparse.Namespace) -> None:
    if args.compare:
        compared = leaderboard.compare([args.sweep_dir, *args.compare], args.metric, args.mode)
        _emit(compared, args.format, "best trial of each sweep", None)
        return
    ranked, problems = leaderboard.load(args.sweep_dir)
    ranked = leaderboard.rank(ranked, args.metric, args.mode)
    if args.metric is None and "config_id" not in ranked:  # sweep.objectives: the front
        ranked = pareto.annotate(ranked, pareto.goals_of(args.sweep_dir))
    if args.pareto:
        if "front" not in ranked:
            raise NoResults(f"{args.sweep_dir}: no Pareto front (the sweep has one objective; "
                            "sweep.objectives=[val_accuracy:max,latency_ms:min] gives two)")
        ranked = ranked[ranked["front"]].sort_values(ranked.attrs["objectives"][1])
    for problem in problems:
        log.warning("%s", problem)
    try:
        board, _ = leaderboard.leaderboard(args.sweep_dir)
        plots.plots(args.sweep_dir, board)
    except OSError as e:  # someone else's read-only sweep still gets its table
        log.warning("leaderboard and plots not written: %s", e)
    title = f"sweep {args.sweep_dir.name}"
    running = lock.holder(args.sweep_dir)
    pending = None
    if running is not None:
        planned = planned_trials(args.sweep_dir)
        pending = None if planned is None else max(0, planned - len(ranked))
        title += f" (running, {running})"
    if "config_id" in ranked and (args.metric is None or args.metric == "objective"):
        # sweep.repeats: the configurations, each with its mean, interval and tie mark
        configs = by_configuration(ranked, leaderboard.objective(ranked)[1])
        if args.format == "table":
            shown, columns = table.for_configurations(configs.head(args.top) if args.top
                                                      else configs)
            table.print_table(shown, title=f"{title}: {len(shown)} of {len(configs)} "
                              f"configurations, {len(ranked)} trials", columns=columns)
        else:
            _emit(configs, args.format, title, args.top)
    else:
        _emit(ranked, args.format, title, args.top, pending)
    if args.format == "table":
        _per_class(args.sweep_dir, ranked)
    if (ranked["status"] == Status.FAILED.value).all():  # the table above shows why
        raise NoResults(f"{args.sweep_dir}: every trial failed ({len(ranked)})")
    broken = leaderboard.unreadable(problems)
    if broken:  # the table has their rows, but not their figures
        raise SweepIncomplete(f"{len(broken)} of {len(ranked)} trial records could not be read "
                              "(named above): the table lacks their figures")


def _per_class(sweep_dir: Path, ranked: pd.DataFrame) -> None:
    """Each class's test precision and recall of the best-ranked trial, when it has them."""
    best = ranked[ranked["rank"] == 1]
    record = TrialRecord.read(sweep_dir / "trials" / str(best.iloc[0]["trial_id"])) \
        if len(best) else None
    if record is None or not record.per_class:
        return
    rows = pd.DataFrame([{"class": name, **scores} for name, scores in record.per_class.items()])
    table.print_table(rows, title="the best trial, each class (test split)",
                      columns=["class", "precision", "recall"])


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number from 1")
    return int(text)


def _emit(ranked: pd.DataFrame, fmt: str, title: str, top: int | None,
          pending: int | None = None) -> None:
    shown = ranked.head(top) if top else ranked
    if fmt == "csv":
        sys.stdout.write(shown.to_csv(index=False))
    elif fmt == "md":
        print(leaderboard.markdown(shown))
    elif fmt == "json":
        print(shown.to_json(orient="records", indent=2))
    elif "rank" in shown:
        total = f"{len(ranked) + pending} trials, {pending} not started yet" if pending \
            else f"{len(ranked)} trials"
        table.print_table(shown, title=f"{title}: {len(shown)} of {total}")
    else:
        keep = ("sweep", "trials", "completed", "pruned", "failed", "running", "trial_id",
                "objective_name")
        columns = [c for c in keep if c in shown]
        columns += [c for c in table.summary_columns(shown) if c not in columns]
        table.print_table(shown, title=title, columns=columns)


if __name__ == "__main__":
    main()
