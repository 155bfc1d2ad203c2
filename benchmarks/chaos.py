"""Chaos: interrupt a sweep again and again, resume it, and count what was lost.

    python benchmarks/chaos.py [--rounds 5] [--seed 0] [--out DIR] [OVERRIDE ...]

A 12-trial sweep on digits runs with 2 workers. Each round starts (or resumes) the sweep with
its own command, then at random moments kills a worker with SIGKILL and/or sends SIGINT to the
sweep. After the rounds the same command runs to the end, and an uninterrupted run of the same
sweep gives the expected set of trials. Prints: trials completed, trials re-run needlessly
(target 0), epochs retrained beyond the interrupted epoch (target 0 per interrupted trial; a
signal between the epoch's record and its backup costs one), invalid files (target 0), and
whether the final trial set equals the uninterrupted run's. Overrides are added to the sweep's
command: ``train.backup_every_s=0`` backs up after every epoch (the default writes backups on a
time budget of <= 5 % of training, and an interruption loses the epochs since the last one).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import yaml

SWEEP = ["-m", "optimizer=adam,sgd", "model.units=8,16,32", "model.dropout=0.1,0.2",
         "train.epochs=12", "hydra.launcher.workers=2", "hydra.launcher.live=false"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def sweeper(cwd: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweeper", *SWEEP, f"sweep.name={name}"],
                            cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def records(sweep_dir: Path) -> dict[str, dict]:
    out = {}
    for path in sweep_dir.glob("trials/*/trial.json"):
        try:
            out[path.parent.name] = json.loads(path.read_text())
        except ValueError:
            continue  # counted by invalid_files
    return out


def invalid_files(sweep_dir: Path) -> list[str]:
    """Files a reader would trip on: unparsable records or configs, broken checkpoints."""
    bad = []
    for trial in sweep_dir.glob("trials/*"):
        for name, parse in (("trial.json", json.loads), ("config.yaml", yaml.safe_load)):
            path = trial / name
            if path.exists():
                try:
                    parse(path.read_text())
                except Exception:
                    bad.append(str(path))
        checkpoint = trial / "checkpoints" / "best.keras"
        if checkpoint.exists() and not zipfile.is_zipfile(checkpoint):
            bad.append(str(checkpoint))
    return bad


def chaos_round(cwd: Path, name: str, rng: random.Random) -> str:
    """Run the sweep until a random interruption; returns what was done to it."""
    proc = sweeper(cwd, name)
    sweep_dir = cwd / "experiments" / name
    done = []
    deadline = time.time() + rng.uniform(8, 20)
    killed = False
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        running = [r for r in records(sweep_dir).values()
                   if r.get("status") == "running" and r.get("epochs_completed", 0) >= 1]
        if not killed and running and rng.random() < 0.1:
            victim = rng.choice(running)
            try:
                os.kill(victim["pid"], signal.SIGKILL)
                done.append(f"kill -9 worker of {victim['trial_id'][:24]}")
            except ProcessLookupError:
                pass
            killed = True
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        done.append("SIGINT")
    proc.communicate(timeout=120)
    return ", ".join(done) or "ran to the end"


def run(rounds: int, seed: int, work: Path) -> dict[str, object]:
    rng = random.Random(seed)
    snapshots: dict[str, str] = {}  # completed trial -> its record's text when first seen
    needless = set()
    for i in range(rounds):
        what = chaos_round(work, "chaos", rng)
        sweep_dir = work / "experiments" / "chaos"
        for path_s, text in snapshots.items():  # a completed record must never change
            if Path(path_s).read_text() != text:
                needless.add(Path(path_s).parent.name)
        for path in sweep_dir.glob("trials/*/trial.json"):
            text = path.read_text()
            if json.loads(text).get("status") == "completed":
                snapshots.setdefault(str(path), text)
        done = sum(r.get("status") == "completed" for r in records(sweep_dir).values())
        print(f"round {i + 1}: {what}; {done}/12 completed", flush=True)
    final = sweeper(work, "chaos")
    final.communicate(timeout=900)
    sweep_dir = work / "experiments" / "chaos"
    for path_s, text in snapshots.items():
        if Path(path_s).read_text() != text:
            needless.add(Path(path_s).parent.name)
    reference = sweeper(work, "reference")
    reference.communicate(timeout=900)
    final_records = records(sweep_dir)
    interrupted = [r for r in final_records.values() if r.get("resumed_from_epoch")]
    retrained = [r["epochs_trained"] - r["epochs_completed"] for r in final_records.values()]
    return {
        "trials completed": sum(r["status"] == "completed" for r in final_records.values()),
        "trials resumed mid-training": len(interrupted),
        "epochs saved by resuming": sum(r["resumed_from_epoch"] for r in interrupted),
        "trials re-run needlessly": len(needless),
        "epochs retrained beyond the interrupted epoch": sum(retrained),
        "  of them, per interrupted trial at most": max(retrained, default=0),
        "invalid files": len(invalid_files(sweep_dir)),
        "same trials as an uninterrupted run":
            set(final_records) == set(records(work / "experiments" / "reference")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="keep the sweeps here (default: a temp folder)")
    parser.add_argument("overrides", nargs="*", help="added to the sweep's command")
    args = parser.parse_args()
    SWEEP.extend(args.overrides)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        figures = run(args.rounds, args.seed, work)
    print()
    for key, value in figures.items():
        print(f"{key:48} {value}")
    ok = (figures["trials completed"] == 12 and figures["trials re-run needlessly"] == 0
          and figures["invalid files"] == 0 and figures["same trials as an uninterrupted run"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
