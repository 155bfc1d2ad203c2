"""``hydra/launcher=pool``'s entry point: a batch of Hydra jobs run by the sweep's worker pool.

The pool (:mod:`sweeper.launch.pool`) is made on the first batch and kept across the batches of
one sweep (a tuner's rounds); after the last it stays warm, and the end of the sweep uses one of
its workers (:func:`warm`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import cloudpickle
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, setup_globals

from sweeper.launch import kinds
from sweeper.launch.jobs import Job, distinct
from sweeper.launch.pool import Pool
from sweeper.launch.progress import Board

log = logging.getLogger(__name__)

_current: Pool | None = None  # the sweep's pool, warm after its last batch


def warm() -> Pool | None:
    """The pool of the sweep this process runs, if it has one (its workers stay warm until the
    process ends: the end of the sweep uses one)."""
    return _current


def _warn_oversubscribed(slots: int) -> None:
    """More CPU workers than cores: trials compete for them (each is slower, none is faster)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if cores and slots > cores:
        log.warning("pool: %d workers on %d CPU cores: trials will compete for the cores "
                    "(hydra.launcher.workers=%d or fewer runs each one faster)", slots, cores,
                    cores)


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]],
           initial_job_idx: int) -> list[JobReturn]:
    """Run one batch of Hydra jobs for ``PoolLauncher``; results in the batch's order."""
    from hydra.core.utils import configure_log

    setup_globals()
    config = launcher.config
    assert config is not None and launcher.hydra_context is not None
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    s = launcher.settings
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if launcher.pool is None:
        slots = kinds.pool_slots(s)
        extra = {str(k): str(v) for k, v in (s.get("env") or {}).items()}
        slots = [replace(slot, env={**slot.env, **extra}) for slot in slots]
        reuse = s.get("reuse_workers", "auto")
        payload = cloudpickle.dumps((launcher.hydra_context, config, launcher.task_function,
                                     Singleton.get_state()))
        launcher.pool = Pool(slots, payload, Path(str(s.get("log_dir") or sweep_dir / "workers")),
                             reuse_workers=not slots[0].gpus if reuse == "auto" else bool(reuse),
                             max_retries=int(s.get("max_retries", 1)),
                             warmup=s.get("warmup") or getattr(launcher.task_function, "warm_up",
                                                               None))
        launcher.pool.adopt_prestarted(len(distinct(job_overrides)[0]))
        if not slots[0].gpus:
            _warn_oversubscribed(len(slots))
    pool: Pool = launcher.pool
    global _current
    _current = pool
    log.info("pool: %d trial(s) on %d slot(s): %s", len(job_overrides), len(pool.slots),
             ", ".join(slot.name for slot in pool.slots))
    runs, index = distinct(job_overrides)
    if len(runs) < len(job_overrides):
        log.info("pool: %d configuration(s) given more than once run once",
                 len(job_overrides) - len(runs))
    jobs = [Job(initial_job_idx + i, o) for i, o in enumerate(runs)]
    board = Board([(j.idx, j.overrides) for j in jobs], len(pool.slots), s.get("live"))
    board.log_plan()
    try:
        with board:
            results = pool.run(jobs, board)
    except BaseException:
        pool.close()  # Ctrl-C or a broken pool: no worker outlives the sweep
        launcher.pool = _current = None
        raise
    return [results[jobs[i].idx] for i in index]
