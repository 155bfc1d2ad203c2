"""``hydra/launcher=pool``: one trial per GPU (or CPU worker) in warm worker processes.

The heavy lifting is in :mod:`sweeper.launch.pool`, imported only when a sweep launches, so Hydra's
plugin discovery stays light and never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.sweeper_plugins.config import PoolLauncherConf  # noqa: F401  (registers it)


class PoolLauncher(Launcher):
    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self.pool: Any = None  # sweeper.launch.pool.Pool, kept across the batches of one sweep

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        from sweeper.launch.pool_launch import PoolBatch

        return PoolBatch(self, self.settings.get("live")).launch(job_overrides, initial_job_idx)

    def stream(self, first: Sequence[Sequence[str]], more: Any,
               initial_job_idx: int) -> Sequence[JobReturn]:
        """Run ``first`` and whatever ``more`` gives as each job ends (an asynchronous search:
        see :meth:`sweeper.launch.batch.Batch.stream`)."""
        from sweeper.launch.pool_launch import PoolBatch

        return PoolBatch(self, self.settings.get("live")).stream(first, more, initial_job_idx)
