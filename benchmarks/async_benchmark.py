"""Slots kept busy: the tuner sweeper in synchronous batches against asynchronous ask/tell.

    python benchmarks/async_benchmark.py [--trials 16] [--workers 2] [--algorithms random bayesian]
                                         [--out DIR]

Each algorithm searches ``--trials`` trials whose lengths vary (``train.epochs`` in 1..8,
``model.units`` in 8..256, MLP on digits) with ``--workers`` pool workers, once with
``hydra.sweeper.asynchronous=false`` (ask a batch, wait for its slowest trial, tell) and once
asynchronously (a freed slot gets the next asked trial at once), the same oracle seed. Printed
from the trials' records: the slot-busy fraction (time slots spend inside trials / (slots x
wall from the first trial's start to the last one's end)), that wall time, and the command's
own; and the same fraction as the launcher sees it (a slot is busy from the moment it is handed
a trial's job, Hydra's set-up of the job in the worker included, to the moment the job's result
is back: the launcher's "started" and "completed" log lines). Target: >= 0.95 busy
asynchronously, and a wall time no worse than the synchronous one.
Figures are printed, nothing is asserted; measure on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

LINE = re.compile(r"^\[(\S+ \S+)\]\[HYDRA\] trial #(\d+) (started|completed|pruned|failed) on")


def launcher_busy(log: str, workers: int) -> float:
    """Slot occupancy from the launcher's own log lines: job handed over to result back."""
    spans: dict[str, list[float]] = {}
    for line in log.splitlines():
        match = LINE.match(line)
        if match:
            when = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            spans.setdefault(match[2], []).append(when)
    done = [(s[0], s[-1]) for s in spans.values() if len(s) == 2]
    first, last = min(s for s, _ in done), max(e for _, e in done)
    return sum(e - s for s, e in done) / (workers * (last - first))


def run(out: Path, algorithm: str, asynchronous: bool, trials: int,
        workers: int) -> tuple[float, float, float, float]:
    name = f"{algorithm}-{'async' if asynchronous else 'sync'}"
    tic = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "sweeper", "-m", "hydra/sweeper=tuner",
         f"hydra.sweeper.algorithm={algorithm}", f"hydra.sweeper.max_trials={trials}",
         "hydra.sweeper.seed=7", f"hydra.sweeper.asynchronous={str(asynchronous).lower()}",
         f"hydra.launcher.workers={workers}", "model.units=range(8,257)",
         "train.epochs=range(1,9)", f"sweep.name={name}", "hydra.launcher.live=false"],
        cwd=out, capture_output=True, text=True)
    command = time.time() - tic
    if done.returncode != 0:
        sys.exit(f"{name}: the sweep failed:\n{done.stderr[-3000:]}")
    spans = []
    for path in (out / "experiments" / name).glob("trials/*/trial.json"):
        record = json.loads(path.read_text())
        spans.append((datetime.fromisoformat(record["started_at"]).timestamp(),
                      datetime.fromisoformat(record["finished_at"]).timestamp()))
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    busy = sum(e - s for s, e in spans) / (workers * (last - first))
    return busy, launcher_busy(done.stdout + done.stderr, workers), last - first, command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--algorithms", nargs="+", default=["random", "bayesian"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="async-benchmark-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"{'search':<10} {'mode':<6} {'busy':>6} {'launcher busy':>14} {'trials wall s':>14} "
          f"{'command s':>10}")
    for algorithm in args.algorithms:
        walls = {}
        for asynchronous in (False, True):
            busy, seen, wall, command = run(out, algorithm, asynchronous, args.trials,
                                            args.workers)
            walls[asynchronous] = wall
            print(f"{algorithm:<10} {'async' if asynchronous else 'sync':<6} {busy:>6.3f} "
                  f"{seen:>14.3f} {wall:>14.1f} {command:>10.1f}", flush=True)
        print(f"{algorithm:<10} async wall / sync wall = {walls[True] / walls[False]:.2f}")
    print(f"(records kept in {out})")


if __name__ == "__main__":
    main()
