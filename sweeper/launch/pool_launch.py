"""``hydra/launcher=pool``'s entry point: a batch of Hydra jobs run by the sweep's worker pool.

The pool (:mod:`sweeper.launch.pool`) is made on the first batch and kept across the batches of
one sweep (a tuner's rounds); after the last it stays warm, and the end of the sweep
(:class:`~sweeper.results.finish.SweepCallback`, which is handed the pool) uses one of its workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cloudpickle
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn

from sweeper.launch import kinds
from sweeper.launch.batch import Batch
from sweeper.launch.devices import cpu_cores
from sweeper.launch.jobs import Job
from sweeper.launch.pool import Pool
from sweeper.launch.progress import Board
from sweeper.results.finish import SweepCallback

log = logging.getLogger(__name__)


class PoolBatch(Batch):
    """A batch run by the pool that ``PoolLauncher`` keeps (made here for its first batch)."""

    name = "pool"

    def start(self, sweep_dir: Path, jobs: list[Job]) -> tuple[int, str]:
        if self.launcher.pool is None:
            self.launcher.pool = self._make_pool(sweep_dir)
        slots = self.launcher.pool.slots
        return len(slots), f"on {len(slots)} slot(s): " + ", ".join(s.name for s in slots)

    def submit(self, jobs: list[Job]) -> None:
        pass  # the pool queues the jobs it is fed itself

    def run(self, jobs: list[Job], board: Board,
            feed: Callable[[int, JobReturn], list[Job]] | None = None) -> dict[int, JobReturn]:
        pool: Pool = self.launcher.pool
        try:
            return pool.run(jobs, board, feed)
        except BaseException:
            pool.close()  # Ctrl-C or a broken pool: no worker outlives the sweep
            self.launcher.pool = None
            raise

    def _make_pool(self, sweep_dir: Path) -> Pool:
        s = self.launcher.settings
        extra = {str(k): str(v) for k, v in (s.get("env") or {}).items()}
        slots = [replace(slot, env={**slot.env, **extra}) for slot in kinds.pool_slots(s)]
        reuse = s.get("reuse_workers", "auto")
        task = self.launcher.task_function
        payload = cloudpickle.dumps((self.context, self.config, task, Singleton.get_state()))
        pool = Pool(slots, payload, Path(str(s.get("log_dir") or sweep_dir / "workers")),
                    reuse_workers=not slots[0].gpus if reuse == "auto" else bool(reuse),
                    max_retries=int(s.get("max_retries", 1)),
                    warmup=s.get("warmup") or getattr(task, "warm_up", None))
        if not slots[0].gpus:
            _warn_oversubscribed(len(slots))
        # The end of the sweep promotes in a warm worker; Hydra's Callbacks keeps the instances
        # in ``callbacks`` (hydra-core<1.4, as pyproject.toml bounds it).
        for callback in getattr(self.context.callbacks, "callbacks", []):
            if isinstance(callback, SweepCallback):
                callback.pool = pool
        return pool


def _warn_oversubscribed(slots: int) -> None:
    """More CPU workers than cores: trials compete for them (each is slower, none is faster)."""
    cores = cpu_cores()
    if slots > cores:
        log.warning("pool: %d workers on %d CPU cores: trials will compete for the cores "
                    "(hydra.launcher.workers=%d or fewer runs each one faster)", slots, cores,
                    cores)
