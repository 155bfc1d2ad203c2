"""How often the promoted configuration is really the best: one seed per configuration against
three (``sweep.repeats``), on the pruner benchmark's 32-configuration space and the seed preset.

    python benchmarks/ranking_benchmark.py [--spaces pruner seed] [--seeds 10] [--sweeps 10]
                                           [--out DIR]

For each space, one real command trains every configuration with ``--seeds`` seeds
(``sweep.repeats``): the pruner benchmark's space is its 32 random configurations (keras-tuner's
random oracle, ``hydra.sweeper.seed=1``; learning rate log-uniform 1e-4 .. 1, units 16 .. 256,
dropout 0 .. 0.5, four optimizers; MLP on the full digits, 20 epochs), the seed preset its 8
(the HParams tutorial's grid, 5 epochs). Then ``--sweeps`` sweeps of each kind are replayed from
those records, sweep i with ``repeats=1`` on seed i and with ``repeats=3`` on seeds i, i+1, i+2
(mod ``--seeds``), each promoting as sweeper does (``leaderboard.rank``,
``configurations.by_configuration`` and its tie-break). A configuration's true mean, for a sweep,
is its mean over the seeds that sweep did not use (so the sweep's own luck does not count as
truth). Printed for each kind: how often the promoted configuration is within 0.5 points
(0.005) of the true best, the mean regret (true best mean minus the promoted configuration's
true mean) and the compute each sweep used (trials, and the sum of their training time).
Target: ``repeats=3`` within 0.5 points in >= 9 of 10 sweeps, with lower regret than
``repeats=1``.

With ``--out DIR`` the trained sweeps are kept in ``DIR`` and reused by a later invocation.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sweeper.results import configurations, leaderboard  # noqa: E402

SPACES = {
    "pruner": ["hydra/sweeper=tuner", "hydra.sweeper.algorithm=random",
               "hydra.sweeper.max_trials=32", "hydra.sweeper.seed=1",
               "optimizer.learning_rate=tag(log, interval(1e-4,1.0))",
               "model.units=range(16,257,16)", "model.dropout=interval(0.0,0.5)",
               "optimizer=choice(adam,sgd,rmsprop,adagrad)", "train.epochs=20"],
    "seed": ["+search=seed"],
}
WITHIN = 0.005  # half a point of accuracy


def train(space: str, seeds: int, out: Path) -> Path:
    """Every configuration of ``space`` with ``seeds`` seeds (kept, and reused, in ``out``)."""
    sweep = out / "experiments" / space
    if (sweep / "sweep.json").is_file():
        return sweep
    tic = time.time()
    done = subprocess.run([sys.executable, "-m", "sweeper", "-m", *SPACES[space],
                           f"sweep.repeats={seeds}", f"sweep.name={space}",
                           "hydra.launcher.live=false", "sweep.allow_failures=true"],
                          cwd=out, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{space}: the sweep failed:\n{done.stderr[-3000:]}")
    print(f"{space}: trained in {time.time() - tic:.0f} s", flush=True)
    return sweep


def replay(trials: pd.DataFrame, used: list[int], rule: str) -> tuple[str, int, float]:
    """The configuration a sweep of the seeds ``used`` promotes under ``sweep.tie_break=rule``,
    its trials and their training time."""
    mine = trials[trials["seed"].isin(used)]
    ranked = leaderboard.rank(mine)
    table = configurations.by_configuration(ranked, leaderboard.objective(mine)[1])
    chosen, _ = configurations.tie_break(table, rule, ranked)
    return str(chosen["config_id"]), len(mine), float(mine["duration_s"].sum())


def evaluate(sweep: Path, seeds: int, sweeps: int, rule: str) -> pd.DataFrame:
    trials, _ = leaderboard.load(sweep)
    trials = trials[trials["status"].isin(leaderboard.RANKED)]
    rows = []
    for repeats in (1, 3):
        for i in range(sweeps):
            used = [(i + k) % seeds for k in range(repeats)]
            promoted, count, seconds = replay(trials, used, rule)
            held_out = trials[~trials["seed"].isin(used)]
            truth = held_out.groupby("config_id")["objective"].mean()
            best = float(truth.max())
            regret = best - float(truth.get(promoted, float("nan")))
            rows.append({"repeats": repeats, "sweep": i, "seeds": used, "promoted": promoted,
                         "regret": regret, "within": regret <= WITHIN, "trials": count,
                         "train_s": seconds})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", choices=list(SPACES), default=list(SPACES))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--sweeps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--tie-breaks", nargs="+", choices=["none", "params", "duration"],
                        default=["none", "params"], help="the sweep.tie_break rules to replay")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="ranking-"))
    out.mkdir(parents=True, exist_ok=True)
    for space in args.spaces:
        sweep = train(space, args.seeds, out)
        for rule in args.tie_breaks:
            report(space, rule, evaluate(sweep, args.seeds, args.sweeps, rule), args)


def report(space: str, rule: str, runs: pd.DataFrame, args: argparse.Namespace) -> None:
    print(f"\n{space}, sweep.tie_break={rule}: {args.sweeps} sweeps of each kind, truth from "
          f"the held-out seeds of {args.seeds}")
    summary = runs.groupby("repeats").agg(
        within=("within", "sum"), sweeps=("within", "size"), mean_regret=("regret", "mean"),
        worst_regret=("regret", "max"), trials=("trials", "mean"),
        train_s=("train_s", "mean"))
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    one, three = summary.loc[1], summary.loc[3]
    print(f"repeats=3 within 0.5 points in {int(three.within)}/{int(three.sweeps)} sweeps "
          f"(target >= 9/10), repeats=1 in {int(one.within)}/{int(one.sweeps)}; mean regret "
          f"{three.mean_regret:.4f} vs {one.mean_regret:.4f} "
          f"({'lower' if three.mean_regret < one.mean_regret else 'not lower'}); compute "
          f"x{three.train_s / one.train_s:.2f}")


if __name__ == "__main__":
    main()
