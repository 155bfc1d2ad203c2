"""What measuring a trial's costs costs: the demo sweep with and without TensorFlow Lite.

    python benchmarks/cost_benchmark.py [--space seed|models] [--out DIR]

Runs ``python -m sweeper -m +search=seed`` (the README's demo: 8 MLPs, 5 epochs) twice, once
as it is (parameters, FLOPs, .keras size, throughput, memory) and once with
``sweep.measure=[tflite]`` (the SavedModel and TensorFlow Lite sizes and the interpreter's
latency as well); ``--space models`` runs the four classic models (mlp, cnn, lenet5, vgg16)
instead. Printed from the trials' own records (``timings.cost_s`` against ``duration_s``): the
seconds measuring took per trial, and its share of the trial's time. Target: under 10% of the
trial's time on the demo without TensorFlow Lite. Figures are printed, nothing is asserted;
measure on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACES = {"seed": ["+search=seed"], "models": ["model=mlp,cnn,lenet5,vgg16", "train.epochs=5"]}


def sweep(out: Path, space: str, tflite: bool) -> list[dict]:
    name = f"{space}-{'tflite' if tflite else 'plain'}"
    tic = time.time()
    done = subprocess.run([sys.executable, "-m", "sweeper", "-m", *SPACES[space],
                           f"sweep.name={name}", "hydra.launcher.live=false",
                           *(["sweep.measure=[tflite]"] if tflite else [])],
                          cwd=out, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{name}: the sweep failed:\n{done.stderr[-3000:]}")
    print(f"{name}: {time.time() - tic:.0f} s", flush=True)
    return [json.loads(p.read_text())
            for p in sorted((out / "experiments" / name).glob("trials/*/trial.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", choices=list(SPACES), default="seed")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="cost-benchmark-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"{'measured':<28} {'trials':>6} {'cost s/trial':>13} {'trial s':>8} {'share':>7}")
    for tflite in (False, True):
        trials = sweep(out, args.space, tflite)
        cost = [t["timings"]["cost_s"] for t in trials]
        duration = [t["duration_s"] for t in trials]
        share = sum(cost) / sum(duration)
        label = "params..memory + TFLite" if tflite else "params, FLOPs, size, memory"
        print(f"{label:<28} {len(trials):>6} {sum(cost) / len(cost):>13.3f} "
              f"{sum(duration) / len(duration):>8.2f} {share:>7.1%}", flush=True)
        for t in trials:
            flops = t["cost"].get("flops")
            latency = t["cost"].get("latency_ms")
            print(f"    {t['trial_id'][:40]:<40} cost {t['timings']['cost_s']:.3f} s of "
                  f"{t['duration_s']:.2f} s; {t['cost']['params']:,} params, "
                  f"{flops or 0:,} FLOPs" + (f", {latency:.4f} ms" if latency else ""))
    print(f"(records kept in {out})")


if __name__ == "__main__":
    main()
