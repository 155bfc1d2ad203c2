"""Grid against keras-tuner's random, Bayesian and Hyperband search, for the same epochs; and
Optuna's TPE and CMA-ES against keras-tuner's Bayesian and random search (``--samplers``).

    python benchmarks/search_benchmark.py [--seeds 1 2 3] [--out DIR]
    python benchmarks/search_benchmark.py --samplers [--seeds 1 2 3 4 5] [--trials 32]
                                          [--epochs 3] [--out DIR]

``--samplers``: each of tpe, cmaes, bayesian and random searches the space below for
``--trials`` trials of ``--epochs`` epochs, once per seed, with no pruner and with ASHA
(``pruner=asha``), asynchronously on 2 CPU workers. Printed per search: the best validation
accuracy found after 8, 16 and all trials (in the order trials finished), mean ± standard
deviation over the seeds.

The space (2,880 points, digits, MLP): units range(16,257,16) x dropout 0, 0.1 .. 0.4 x learning
rate 1e-4 .. 3e-2 on a log scale (6 values) x optimizer adam, sgd x batch size 32, 64, 128.

- grid: what a hand-made grid affords for the budget: a 2x2x2 sub-grid of that space (units 64,
  192 x learning rate 1e-3, 1e-2 x adam, sgd; dropout 0.2, batch 64), 9 epochs per trial, through
  Hydra's own grid sweeper;
- random and Bayesian: 8 trials of 9 epochs each (72 epochs);
- Hyperband: max_epochs 9, factor 3, one iteration (keras-tuner's schedule, about 75 epochs).

Every search runs as the real command (pool launcher, 2 CPU workers). Epochs are counted from
the trial records (epochs each trial trained itself, so a Hyperband survivor counts only its
own), in the order trials finished. Prints, per search: trials, epochs, best test accuracy, and
the epochs it needed to reach the grid's best test accuracy, as a ratio of the grid's epochs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SPACE = ["model.units=range(16,257,16)", "model.dropout=choice(0.0,0.1,0.2,0.3,0.4)",
         "optimizer.learning_rate=choice(1e-4,3e-4,1e-3,3e-3,1e-2,3e-2)",
         "optimizer=choice(adam,sgd)", "train.batch_size=choice(32,64,128)"]
POINTS = 16 * 5 * 6 * 2 * 3
EPOCHS = 9
GRID = ["model.units=64,192", "optimizer.learning_rate=0.001,0.01", "optimizer=adam,sgd",
        "model.dropout=0.2", "train.batch_size=64", f"train.epochs={EPOCHS}"]
SEARCHES = {
    "random": ["hydra.sweeper.algorithm=random", "hydra.sweeper.max_trials=8",
               f"train.epochs={EPOCHS}"],
    "bayesian": ["hydra.sweeper.algorithm=bayesian", "hydra.sweeper.max_trials=8",
                 "hydra.sweeper.bayesian.num_initial_points=3", f"train.epochs={EPOCHS}"],
    "hyperband": ["hydra.sweeper.algorithm=hyperband",
                  f"hydra.sweeper.hyperband.max_epochs={EPOCHS}",
                  "hydra.sweeper.hyperband.factor=3"],
}


def sweep(cwd: Path, name: str, args: list[str]) -> list[dict]:
    """Run one search as the real command; its completed records in the order they finished."""
    command = [sys.executable, "-m", "sweeper", "-m", f"sweep.name={name}", *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
    return sweep_records(cwd, name)


def summary(records: list[dict], target: float | None) -> dict:
    """Epochs used, best test accuracy, and the epochs spent until ``target`` was reached."""
    spent, reached, best = 0, None, 0.0
    for r in records:
        spent += int(r.get("epochs_trained") or 0)
        accuracy = (r.get("metrics") or {}).get("test_accuracy")
        if r["status"] != "completed" or accuracy is None:
            continue
        best = max(best, accuracy)
        if reached is None and target is not None and accuracy >= target - 1e-9:
            reached = spent
    return {"trials": len(records), "epochs": spent, "best": best, "reached": reached}


SAMPLERS = ("tpe", "cmaes", "bayesian", "random")
CHECKPOINTS = (8, 16)


def best_after(records: list[dict], counts: list[int]) -> list[float]:
    """The best validation accuracy among the first ``n`` finished trials, for each n."""
    values = [(r.get("metrics") or {}).get("val_accuracy") for r in records]
    return [max((v for v in values[:n] if v is not None), default=float("nan")) for n in counts]


def samplers(root: Path, seeds: list[int], trials: int, epochs: int) -> None:
    counts = [*CHECKPOINTS, trials]
    print(f"space: {POINTS} points; {trials} trials of {epochs} epochs per search; in {root}")
    print(f"\n{'search':10} {'pruner':6} " + " ".join(f"{'best after ' + str(n):>20}"
                                                     for n in counts))
    for pruner in ("none", "asha"):
        for name in SAMPLERS:
            found = []
            for seed in seeds:
                records = sweep(root, f"{name}-{pruner}-{seed}", [
                    "hydra/sweeper=tuner", f"hydra.sweeper.algorithm={name}",
                    f"hydra.sweeper.seed={seed}", f"hydra.sweeper.max_trials={trials}",
                    f"train.epochs={epochs}", f"pruner={pruner}", "hydra.launcher.live=false",
                    *SPACE])
                found.append(best_after(records, counts))
            cells = []
            for i in range(len(counts)):
                column = [row[i] for row in found]
                spread = statistics.stdev(column) if len(column) > 1 else 0.0
                cells.append(f"{statistics.mean(column):.4f} ± {spread:.4f}")
            print(f"{name:10} {pruner:6} " + " ".join(f"{c:>20}" for c in cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--out", type=Path, default=None, help="keep the sweeps here")
    parser.add_argument("--samplers", action="store_true",
                        help="Optuna's TPE and CMA-ES against keras-tuner's Bayesian and random")
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="search-benchmark-"))
    root.mkdir(parents=True, exist_ok=True)
    if args.samplers:
        samplers(root, args.seeds or [1, 2, 3, 4, 5], args.trials, args.epochs)
        return
    args.seeds = args.seeds or [1, 2, 3]

    print(f"space: {POINTS} points; budget about {8 * EPOCHS} epochs per search; in {root}")
    grid = summary(sweep(root, "grid", GRID), None)
    grid_best = grid["best"]
    grid_to_best = summary(sweep_records(root, "grid"), grid_best)["reached"]
    rows = [("grid (2x2x2 sub-grid)", "-", grid, grid_to_best)]
    for seed in args.seeds:
        for name, extra in SEARCHES.items():
            records = sweep(root, f"{name}-{seed}",
                            ["hydra/sweeper=tuner", f"hydra.sweeper.seed={seed}", *SPACE, *extra])
            result = summary(records, grid_best)
            rows.append((name, str(seed), result, result["reached"]))

    print(f"\n{'search':24} {'seed':>4} {'trials':>6} {'epochs':>6} {'best test acc':>13} "
          f"{'epochs to grid best':>19} {'vs grid epochs':>14}")
    for name, seed, r, reached in rows:
        to_best = "not reached" if reached is None else str(reached)
        ratio = "" if reached is None else f"{reached / grid['epochs']:.2f}"
        print(f"{name:24} {seed:>4} {r['trials']:>6} {r['epochs']:>6} {r['best']:>13.4f} "
              f"{to_best:>19} {ratio:>14}")
    print(f"\ngrid: best test accuracy {grid_best:.4f}, reached after {grid_to_best} of "
          f"{grid['epochs']} epochs")
    for name in SEARCHES:
        mine = [(r, reached) for n, _, r, reached in rows if n == name]
        ratios = [reached / grid["epochs"] for _, reached in mine if reached is not None]
        hit = f"{len(ratios)}/{len(mine)} seeds reached it"
        median = f", median {statistics.median(ratios):.2f} of the grid's epochs" if ratios else ""
        best = statistics.mean(r["best"] for r, _ in mine)
        print(f"{name:10} mean best test accuracy {best:.4f}; {hit}{median}")


def sweep_records(cwd: Path, name: str) -> list[dict]:
    records = [json.loads(p.read_text())
               for p in (cwd / "experiments" / name).glob("trials/*/trial.json")]
    return sorted(records, key=lambda r: r["finished_at"] or "")


if __name__ == "__main__":
    main()
