"""sweeper against the hand-written loop, and at any sweep size: where the time goes.

    python benchmarks/overhead_benchmark.py [--repeat 3] [--sizes 64 512 10000]
                                            [--skip-loop] [--skip-scale] [--sweep-trials 512]

Part 1 runs, alternating, the tutorial's Listing 5-5 loop (``benchmarks/listing55_loop.py``: 8
models, 5 epochs, HParams logging, one process) twice, doing the sweep's work (its 1,149
training images, validated on its 288 after every epoch) and as written (1,437 images, no
validation), and ``python -m sweeper -m +search=seed`` (the same 8 models) with 1 and 2 pool
workers; it prints the median wall time, its ratio to each loop, CPU seconds, and the
sweep's timeline read from its records: command start to the first trial's first training step
(beside the loop's own TensorFlow import), the trials, the overhead per trial beyond fit and
evaluate, and the end (last trial to exit).

Part 2 times a grid's start at several sizes: from the command to the pool's launch (the sweep
process's part: composing, checking, planning; the worker's TensorFlow import comes on top), and
the sweep process's cost per trial; then the resume of a 10,000-trial sweep whose trials are all
complete (it must launch nothing), and the sweep process's CPU per trial over a real sweep of
``--sweep-trials`` small trials.

Every run is a whole command in a fresh temporary folder; figures are printed, nothing is
asserted. Measure on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
PY = sys.executable


def run(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (the command and every process it waited for), start time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    done = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    wall = time.time() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, start


def timeline(sweep_dir: Path, start: float, wall: float, slots: int) -> dict[str, float]:
    """The sweep's timeline from its records: to the first training step, the trials, the
    overhead per trial beyond fit and evaluate, and the end."""
    records = [json.loads(p.read_text()) for p in sweep_dir.glob("trials/*/trial.json")]
    began = [datetime.fromisoformat(r["started_at"]).timestamp() for r in records]
    ended = [datetime.fromisoformat(r["finished_at"]).timestamp() for r in records]
    first_step = min(b + r["timings"].get("setup_s", 0.0)
                     for b, r in zip(began, records, strict=True))
    work = sum(r["timings"]["fit_s"] + r["timings"]["evaluate_s"] for r in records)
    span = max(ended) - first_step
    return {"to_first_step": first_step - start, "trials": span,
            "overhead_per_trial": (span * slots - work) / len(records),
            "end": start + wall - max(ended)}


LOOP = ROOT / "benchmarks" / "listing55_loop.py"
SAME_WORK, AS_WRITTEN = "loop, same work", "loop, as written"


def part1(repeat: int) -> None:
    import_s = statistics.median(
        run([PY, "-c", "import tensorflow"], ROOT)[0] for _ in range(3))
    rows: dict[str, list[tuple[float, float, dict[str, float]]]] = {}
    for i in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for label, flags in ((SAME_WORK, []), (AS_WRITTEN, ["--as-written"])):
                wall, cpu, _ = run([PY, str(LOOP), str(work / label.replace(" ", "")), *flags],
                                   work)
                rows.setdefault(label, []).append((wall, cpu, {}))
            for workers in (1, 2):
                name = f"pool{workers}_{i}"
                wall, cpu, start = run([PY, "-m", "sweeper", "-m", "+search=seed",
                                        f"sweep.name={name}", f"hydra.launcher.workers={workers}",
                                        "hydra.launcher.live=false"], work)
                rows.setdefault(f"pool, {workers} worker{'s' * (workers > 1)}", []).append(
                    (wall, cpu, timeline(work / "experiments" / name, start, wall, workers)))
    same = statistics.median(w for w, _, _ in rows[SAME_WORK])
    written = statistics.median(w for w, _, _ in rows[AS_WRITTEN])
    print(f"seed preset (8 trials x 5 epochs, digits) vs the loop; median of {repeat}; "
          f"{os.cpu_count()} cores; TensorFlow import alone: {import_s:.2f} s\n")
    head = (f"{'command':20} {'wall s':>7} {'vs same':>8} {'vs as wr.':>9} {'CPU s':>7} "
            f"{'to 1st step':>11} {'trials s':>8} {'ovh/trial':>9} {'end s':>6}")
    print(head)
    for label, results in rows.items():
        wall = statistics.median(r[0] for r in results)
        cpu = statistics.median(r[1] for r in results)
        line = f"{label:20} {wall:7.1f} {wall / same:8.2f} {wall / written:9.2f} {cpu:7.1f}"
        if results[0][2]:
            for key, width in (("to_first_step", 11), ("trials", 8),
                               ("overhead_per_trial", 9), ("end", 6)):
                value = statistics.median(r[2][key] for r in results)
                line += f" {value:{width}.2f}"
        print(line)
    print("\n'vs same': against the loop doing the sweep's work (its split, validated every "
          "epoch); 'vs as wr.': against the tutorial's loop as printed (more images, no "
          "validation)")
    print("targets (vs same): pool 1 worker <= 1.15 x the loop, 2 workers <= 0.85 x; to the "
          f"first step <= the import + 0.5 s (= {import_s + 0.5:.2f}); overhead/trial <= 0.1 s; "
          "end <= 1.5 s")


def grid(size: int) -> list[str]:
    """A grid of ``size`` points (a power-of-ten-ish product of four keys, two optimizers)."""
    per = max(1, round((size / 2) ** 0.25))
    while 2 * per ** 4 < size:
        per += 1
    keys = {"model.units": [8 + i for i in range(per)],
            "model.dropout": [round(0.05 * i, 2) for i in range(per)],
            "optimizer.learning_rate": [round(0.001 * (i + 1), 4) for i in range(per)],
            "train.batch_size": [16 + i for i in range(per)]}
    return [f"{k}={','.join(map(str, v))}" for k, v in keys.items()] + ["optimizer=adam,sgd"]


def launch_time(size: int, work: Path) -> tuple[float, int]:
    """Seconds from the command to the pool's launch of a ``size`` grid, and its trials."""
    cmd = [PY, "-m", "sweeper", "-m", *grid(size), "train.epochs=1", f"sweep.name=g{size}",
           "hydra.launcher.workers=1", "hydra.launcher.live=false"]
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=work, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seconds, trials = float("nan"), 0
    for line in proc.stdout:
        if "pool: " in line and " trial(s)" in line:
            seconds = time.time() - start
            trials = int(line.split("pool: ")[1].split(" ")[0])
            break
    proc.kill()
    proc.wait()
    return seconds, trials


def fake_completed(size: int, work: Path) -> Path:
    """A sweep folder of a ``size`` grid whose trials are all complete (records only)."""
    sys.path.insert(0, str(ROOT))
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    from sweeper.config.identity import override_dirname, trial_id
    from sweeper.config.keys import excluded_from_id
    from sweeper.config.overrides import sweep_arguments
    from sweeper.record import Objective, Status, TrialRecord

    (jobs,) = BasicSweeper.split_arguments(
        sweep_arguments(None, [*grid(size), "train.epochs=1"]), None)
    trials = work / "experiments" / "done" / "trials"
    for job in jobs:
        name = trial_id(override_dirname(job, excluded_from_id()))
        TrialRecord(sweep="done", trial_id=name, overrides=job,
                    objective=Objective("val_accuracy", "max", 0.5),
                    status=Status.COMPLETED).write(trials / name)
    return trials.parent


def part2(sizes: list[int], sweep_trials: int) -> None:
    print("\ngrid start (sweep process only; the worker's TensorFlow import comes on top)\n")
    print(f"{'trials':>7} {'to launch s':>12}")
    points = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            seconds, trials = launch_time(size, Path(tmp))
        points.append((trials, seconds))
        print(f"{trials:7d} {seconds:12.2f}")
    if len(points) > 1:
        (n1, t1), (n2, t2) = points[0], points[-1]
        print(f"cost per trial before the launch: {(t2 - t1) / (n2 - n1) * 1000:.2f} ms "
              "(target <= 5 ms; 10,000 trials within 3 s)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        size = sizes[-1]
        fake_completed(size, work)
        tic = time.time()
        done = subprocess.run([PY, "-m", "sweeper", "-m", *grid(size), "train.epochs=1",
                               "sweep.name=done", "hydra.launcher.live=false"], cwd=work,
                              env=ENV, capture_output=True, text=True)
        said = done.stdout + done.stderr
        launched = "pool: " in said
        count = len(list((work / "experiments" / "done" / "trials").iterdir()))
        print(f"\nresume of a {count}-trial sweep whose trials are all complete: "
              f"{time.time() - tic:.1f} s, trials launched: {'some' if launched else 'none'} "
              f"(exit {done.returncode}: the records are stand-ins, nothing to promote)")
    if sweep_trials:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            cmd = [PY, "-m", "sweeper", "-m", *grid(sweep_trials), "train.epochs=1",
                   "dataset.limit=100", "sweep.name=many", "hydra.launcher.workers=2",
                   "hydra.launcher.live=false"]
            proc = subprocess.Popen(cmd, cwd=work, env=ENV, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            ticks, cpu = os.sysconf("SC_CLK_TCK"), 0.0
            while proc.poll() is None:  # the sweep process's own CPU, not its workers'
                try:
                    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                    cpu = (int(fields[11]) + int(fields[12])) / ticks
                except (OSError, IndexError, ValueError):
                    pass
                time.sleep(0.2)
            trials = len(list((work / "experiments" / "many" / "trials").glob("*/trial.json")))
            print(f"\na sweep of {trials} small trials: the sweep process used {cpu:.1f} CPU s, "
                  f"{cpu / max(1, trials) * 1000:.1f} ms per trial (composing, checking, "
                  "launching, the live table, the leaderboard and promotion included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 10000])
    parser.add_argument("--sweep-trials", type=int, default=512)
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    if not args.skip_loop:
        part1(args.repeat)
    if not args.skip_scale:
        part2(args.sizes, args.sweep_trials)
    shutil.rmtree(ROOT / "outputs", ignore_errors=True)


if __name__ == "__main__":
    main()
