"""Early stopping: pruner=none, median and asha on one random search, and Hyperband beside them.

    python benchmarks/pruner_benchmark.py [--seeds 1 2 3 4 5] [--variants none asha] [--out DIR]
                                          [--models mlp cnn]

The search: 32 random trials (keras-tuner's random oracle, ``hydra.sweeper.seed`` = the seed, so
every variant of a seed trains the same 32 configurations) over learning rate log-uniform
1e-4 .. 1, units range(16,257,16), dropout 0 .. 0.5 and optimizer adam, sgd, rmsprop, adagrad;
MLP on the full digits dataset, 20 epochs per trial, pool launcher with 2 CPU workers. Many of
those configurations are poor (a learning rate near 1, or 1e-4 with adagrad), and early epochs
tell them apart.

- none, median, asha: the search with ``pruner=`` each (their default settings); asha3: asha
  with ``pruner.reduction_factor=3`` (a third of the trials at a rung go on, not a quarter).
  All 32 trials go to the launcher as one batch (``hydra.sweeper.batch_size=32``: random
  search learns nothing from results, and a slot freed by a pruned trial takes the next trial
  at once).
- asha_g4: asha with ``pruner.grace_period=4`` (rungs at epochs 4 and 16): slow starters,
  such as a high learning rate with adagrad, are judged after they have warmed up.
- hyperband: ``hydra.sweeper.algorithm=hyperband`` with the same 20 epochs at most per trial and
  its factor 3: keras-tuner's whole schedule for one iteration (30 trials on 22 configurations,
  226 epochs), its brackets run by the same 2 workers.

``--models mlp cnn`` adds ``model=choice(mlp,cnn)`` to the space (each configuration then draws
its model too; the CNN's BatchNorm validates right from its first epoch, so an early rung judges
it fairly); its runs are kept apart from the MLP-only runs.

Each run is the real command. Printed per run: trials, trials pruned, epochs trained (each
trial's own, so a Hyperband survivor counts only what it added), the command's wall time, the
best validation accuracy, the test accuracy of the trial ranked first (the promoted model), and
the best test accuracy of any trial; then per seed the ratios to ``none``, and the target: asha
trains at most a third of none's epochs and ends within 0.005 of none's best test accuracy; and
what each variant did with the three configurations ``none`` ranks first (kept: trained to the
end; and the rank it gave them).

Runs are slow (minutes each), so seeds run separately: with ``--out DIR`` each run's figures are
kept in ``DIR/results/`` and a later invocation with the same ``--out`` reuses them, so
``--seeds 1 2`` today and ``--seeds 3 4 5`` tomorrow end with the table of all five.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

TRIALS = 32
EPOCHS = 20
SPACE = ["optimizer.learning_rate=tag(log, interval(1e-4,1.0))", "model.units=range(16,257,16)",
         "model.dropout=interval(0.0,0.5)", "optimizer=choice(adam,sgd,rmsprop,adagrad)"]
COMMON = ["hydra/sweeper=tuner", "hydra.launcher.workers=2", *SPACE]
RANDOM = ["hydra.sweeper.algorithm=random", f"hydra.sweeper.max_trials={TRIALS}",
          f"hydra.sweeper.batch_size={TRIALS}", f"train.epochs={EPOCHS}"]
VARIANTS = {
    "none": [*RANDOM, "pruner=none"],
    "median": [*RANDOM, "pruner=median"],
    "asha": [*RANDOM, "pruner=asha"],
    "asha3": [*RANDOM, "pruner=asha", "pruner.reduction_factor=3"],  # keeps a third at a rung
    "asha_g4": [*RANDOM, "pruner=asha", "pruner.grace_period=4"],  # first rung at epoch 4
    "hyperband": ["hydra.sweeper.algorithm=hyperband",
                  f"hydra.sweeper.hyperband.max_epochs={EPOCHS}",
                  "hydra.sweeper.hyperband.factor=3"],
}
EPOCH_TARGET = 1 / 3  # asha's epochs over none's, at most
ACCURACY_TARGET = 0.005  # none's best test accuracy less asha's, at most


def run(root: Path, variant: str, seed: int, models: list[str]) -> dict:
    """One search as the real command; its figures (kept in root/results/ for later runs)."""
    tag = "" if models == ["mlp"] else "-" + "-".join(models)
    kept = root / "results" / f"{variant}-{seed}{tag}.json"
    if kept.is_file():
        return {**json.loads(kept.read_text()), "earlier": True}
    name = f"{variant}-{seed}{tag}"
    space = [] if models == ["mlp"] else [f"model=choice({','.join(models)})"]
    command = [sys.executable, "-m", "sweeper", "-m", f"sweep.name={name}",
               f"hydra.sweeper.seed={seed}", *COMMON, *space, *VARIANTS[variant]]
    tic = time.time()
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    wall = time.time() - tic
    if done.returncode != 0:
        raise SystemExit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = {"variant": variant, "seed": seed, "wall_s": round(wall, 1),
              **figures(root / "experiments" / name)}
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(result, indent=1) + "\n")
    return result


def figures(sweep_dir: Path) -> dict:
    """Trials, pruned trials, epochs trained, best validation accuracy, the first-ranked trial's
    test accuracy and the best test accuracy of any trial, from the sweep's own files."""
    records = [json.loads(p.read_text()) for p in sweep_dir.glob("trials/*/trial.json")]
    board = pd.read_csv(sweep_dir / "leaderboard.csv")
    ranked = board[board["rank"].notna()]
    first = ranked[ranked["rank"] == 1].iloc[0]
    hp = sorted(c for c in board.columns if c.startswith("hp.") and not c.startswith("hp.tuner")
                and board[c].nunique(dropna=False) > 1)  # what sets the configurations apart
    configs = {config(row, hp): {"status": row["status"], "rank": int(row["rank"]),
                                 "objective": float(row["objective"])}
               for _, row in ranked.sort_values("rank").iterrows()}
    return {"configs": configs,
            "trials": len(records),
            "pruned": sum(r["status"] == "pruned" for r in records),
            "failed": sum(r["status"] == "failed" for r in records),
            "epochs": sum(int(r.get("epochs_trained") or 0) for r in records),
            "best_val": float(ranked["objective"].max()),
            "first_test": float(first["test_accuracy"]),
            "best_test": float(ranked["test_accuracy"].max())}


def config(row: pd.Series, columns: list[str]) -> str:
    """A configuration in words: its hyperparameters (the tuner's bookkeeping left out)."""
    values = []
    for c in columns:
        value = row[c]
        if pd.isna(value):
            continue
        values.append(f"{c[3:]}={value:.3g}" if isinstance(value, float) else f"{c[3:]}={value}")
    return " ".join(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the sweeps and figures here; figures found here are reused")
    parser.add_argument("--models", nargs="+", choices=["mlp", "cnn", "lenet5"],
                        default=["mlp"], help="models in the space (model=choice(...))")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="pruner-benchmark-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"{TRIALS} random trials of {EPOCHS} epochs on digits, models {', '.join(args.models)}, "
          f"2 workers; in {root}", flush=True)

    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            result = run(root.resolve(), variant, seed, args.models)
            rows.append(result)
            print(line(result), flush=True)
    tag = "" if args.models == ["mlp"] else "-" + "-".join(args.models)
    for kept in sorted((root / "results").glob(f"*-[0-9]*{tag}.json")):  # earlier invocations'
        if tag == "" and not kept.stem.split("-")[-1].isdigit():
            continue
        earlier = json.loads(kept.read_text())
        if (earlier["variant"], earlier["seed"]) not in {(r["variant"], r["seed"]) for r in rows}:
            rows.append({**earlier, "earlier": True})

    print(f"\n{'variant':10} {'seed':>4} {'trials':>6} {'pruned':>6} {'epochs':>6} "
          f"{'wall s':>7} {'best val':>8} {'test (1st)':>10} {'best test':>9}")
    for r in sorted(rows, key=lambda r: (r["seed"], list(VARIANTS).index(r["variant"]))):
        print(line(r))
    print(f"\nratios to none (epochs, wall time) and test accuracy gaps (none - variant); target: "
          f"asha epochs <= {EPOCH_TARGET:.2f} of none's and best test gap <= {ACCURACY_TARGET}")
    met: dict[str, list[bool]] = {}
    by = {(r["variant"], r["seed"]): r for r in rows}
    for seed in sorted({r["seed"] for r in rows}):
        none = by.get(("none", seed))
        if none is None:
            continue
        for variant in VARIANTS:
            r = by.get((variant, seed))
            if r is None or variant == "none":
                continue
            epochs = r["epochs"] / none["epochs"]
            gap = none["best_test"] - r["best_test"]
            verdict = ""
            if variant.startswith("asha"):  # every ASHA variant has the same target
                ok = epochs <= EPOCH_TARGET and gap <= ACCURACY_TARGET
                met.setdefault(variant, []).append(ok)
                verdict = "  target met" if ok else "  target missed"
            wall = r["wall_s"] / none["wall_s"]
            print(f"seed {seed} {variant:9}: epochs {epochs:.2f}, wall {wall:.2f}, "
                  f"best test gap {gap:+.4f}, first-ranked test gap "
                  f"{none['first_test'] - r['first_test']:+.4f}{verdict}")
    print("\nthe configurations none ranks first, in each variant (rank there; kept = not "
          "pruned)")
    for seed in sorted({r["seed"] for r in rows}):
        none = by.get(("none", seed))
        if none is None or "configs" not in none:
            continue
        for place, (name, best) in enumerate(list(none["configs"].items())[:3], 1):
            seen = []
            for variant in VARIANTS:
                r = by.get((variant, seed))
                if r is None or variant == "none" or "configs" not in r:
                    continue
                there = r["configs"].get(name)
                seen.append(f"{variant} " + ("not proposed" if there is None else
                            f"#{there['rank']} {there['status']}"))
            print(f"seed {seed} none #{place} ({best['objective']:.4f}) {name}: "
                  f"{'; '.join(seen)}")
    for variant, oks in met.items():
        print(f"\n{variant} met the target in {sum(oks)} of {len(oks)} seeds (wanted: at least 4 "
              "of 5)")


def line(r: dict) -> str:
    mark = " (kept)" if r.get("earlier") else ""
    return (f"{r['variant']:10} {r['seed']:>4} {r['trials']:>6} {r['pruned']:>6} {r['epochs']:>6} "
            f"{r['wall_s']:>7.0f} {r['best_val']:>8.4f} {r['first_test']:>10.4f} "
            f"{r['best_test']:>9.4f}{mark}")


if __name__ == "__main__":
    main()
