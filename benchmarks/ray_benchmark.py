"""Per-trial overhead of the Ray launcher against the pool launcher, on the seed preset.

    python benchmarks/ray_benchmark.py [--repeat N]

Runs the seed preset (8 trials x 5 epochs on digits) through the pool launcher with 1 and 2 CPU
workers, and through ``hydra/launcher=ray_cluster`` (num_gpus=0, 1 CPU per trial) on a running
local Ray cluster of 1 and of 2 CPUs, started beforehand with ``ray start --head`` as a real
cluster would be. Prints wall time, time to the last trial's end and the per-trial overhead,
computed as in pool_benchmark.py: (time to the last trial's end - sum of the trials' own fit +
evaluate time) / trials, and the ratios Ray / pool.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_ray import ENV, LocalRay  # noqa: E402
from pool_benchmark import SEED, timed, trial_work  # noqa: E402


def seed_sweep(work: Path, name: str, extra: list[str]) -> tuple[float, float, float]:
    """Wall time, time to the last trial's end, and overhead per trial of one seed sweep."""
    wall, start = timed([sys.executable, "-m", "sweeper", "-m", "+search=seed",
                         f"sweep.name={name}", *extra], work)
    work_s, last = trial_work(work / "experiments" / name)
    return wall, last - start, (last - start - work_s) / len(SEED)


def on_ray(work: Path, name: str, cpus: int) -> tuple[float, float, float]:
    """The seed sweep on a fresh local Ray cluster of ``cpus`` CPUs (its start not timed)."""
    os.environ.update(ENV)
    with LocalRay(nodes=1, cpus=cpus) as address:
        return seed_sweep(work, name, [
            "hydra/launcher=ray_cluster", f"hydra.launcher.ray.init.address={address}",
            "hydra.launcher.ray.remote.num_gpus=0"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the median is shown")
    args = parser.parse_args()
    runs: list[dict[str, tuple[float, float, float]]] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            runs.append({
                "pool, 1 worker": seed_sweep(work, "pool1", ["hydra.launcher.workers=1"]),
                "ray, 1 CPU": on_ray(work, "ray1", 1),
                "pool, 2 workers": seed_sweep(work, "pool2", ["hydra.launcher.workers=2"]),
                "ray, 2 CPUs": on_ray(work, "ray2", 2),
            })
    median = {label: tuple(statistics.median(r[label][i] for r in runs) for i in range(3))
              for label in runs[0]}
    print(f"seed preset: {len(SEED)} trials x 5 epochs on digits; {os.cpu_count()} cores; "
          f"median of {args.repeat} run(s)\n")
    print(f"{'launcher':18} {'wall s':>7} {'trials s':>9} {'overhead/trial s':>17}")
    for label, (wall, trials, over) in median.items():
        print(f"{label:18} {wall:7.1f} {trials:9.1f} {over:17.2f}")
    pairs = ((1, "pool, 1 worker", "ray, 1 CPU"), (2, "pool, 2 workers", "ray, 2 CPUs"))
    for n, pool, ray in pairs:
        ratio = median[ray][1] / median[pool][1]
        extra = median[ray][2] - median[pool][2]
        print(f"{n} slot(s): Ray / pool, time to the last trial {ratio:.2f}; "
              f"overhead per trial {extra:+.2f} s")


if __name__ == "__main__":
    main()
