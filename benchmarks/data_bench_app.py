"""sweeper's Hydra application with the image-folder loader chosen by the data benchmark.

    SWEEPER_BENCH_LOADER=old|new|keras SWEEPER_BENCH_OUT=DIR python data_bench_app.py -m ...

Each worker runs sweeper's own trial (sweeper.trial.run) with ``sweeper.trial.data.load`` swapped
for the chosen loader, and writes what the benchmark reads into DIR/<pid>.json: the images each
split holds, the seconds its warm-up spent loading the data, the CPU seconds of loading and of
the trial, and its peak RSS (VmHWM).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from sweeper.config.schema import CONFIG_NAME, CONFIG_PATH, register

register()
_seen: dict[str, Any] = {"warm_up_s": 0.0, "load_cpu_s": 0.0}


def _cpu_s() -> float:
    """CPU seconds this process has used (all its threads): a measure other load on a shared
    machine does not change."""
    t = os.times()
    return t.user + t.system


def _install() -> None:
    """Swap the trial's loader for the benchmark's choice (once per worker)."""
    import data_loaders

    from sweeper.trial import data

    if getattr(data, "_benchmarked", False):
        return
    chosen = os.environ["SWEEPER_BENCH_LOADER"]
    original = data.load
    load = original if chosen == "new" else getattr(data_loaders, chosen)
    cache: dict[str, Any] = {}

    def counted(dataset: DictConfig, validation_split: float) -> Any:
        key = str(dataset.path)
        if key not in cache:  # loaded once per worker, as sweeper's own load is
            cpu = _cpu_s()
            cache[key] = load(dataset, validation_split)
            _seen["load_cpu_s"] = _cpu_s() - cpu
            _seen["counts"] = data_loaders.counts(cache[key])
        return cache[key]

    data.load = counted  # type: ignore[assignment]
    data._benchmarked = True  # type: ignore[attr-defined]


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def warm_up(cfg: DictConfig) -> None:
    _install()
    from sweeper.trial import run

    tic = time.perf_counter()
    run.warm_up(cfg)
    _seen["warm_up_s"] = time.perf_counter() - tic


def task(cfg: DictConfig) -> float:
    _install()
    from sweeper.trial import run

    cpu = _cpu_s()
    value = run.run(cfg)
    _seen["trial_cpu_s"] = _cpu_s() - cpu
    out = Path(os.environ["SWEEPER_BENCH_OUT"])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{os.getpid()}.json").write_text(json.dumps(
        {**_seen, "peak_rss_mb": _peak_rss_mb(), "loader": os.environ["SWEEPER_BENCH_LOADER"]}))
    return value


# Workers import this module by its own name (benchmarks/ is on their PYTHONPATH).
task.warm_up = "data_bench_app.warm_up"  # type: ignore[attr-defined]

if __name__ == "__main__":
    import data_bench_app  # this file under its own name, so workers find the same functions

    hydra.main(version_base="1.3", config_path=CONFIG_PATH,
               config_name=CONFIG_NAME)(data_bench_app.task)()
