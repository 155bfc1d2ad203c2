"""One batch of Hydra jobs as sweeper's own launchers (the pool, Ray) run it: the sweep folder,
each configuration once, the live table of its trials, and results in the batch's order."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, configure_log, setup_globals
from omegaconf import DictConfig

from sweeper.launch.jobs import Job, distinct
from sweeper.launch.progress import Board

log = logging.getLogger(__name__)


class Batch(ABC):
    """A batch of jobs for ``launcher``, once Hydra has set it up; the launcher's kind says how
    it gets ready (:meth:`start`) and how it runs them (:meth:`run`)."""

    name = ""  # how the launcher's log lines begin

    def __init__(self, launcher: Any, live: bool | None = None) -> None:
        assert all(x is not None for x in (launcher.config, launcher.hydra_context,
                                           launcher.task_function))
        self.launcher, self.live = launcher, live  # live: the table's setting (progress.Board)
        self.config: DictConfig = launcher.config
        self.context = launcher.hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> list[JobReturn]:
        """Run the batch; results in its order."""
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        runs, index = distinct(job_overrides)
        jobs = [Job(initial_job_idx + i, overrides) for i, overrides in enumerate(runs)]
        slots, where = self.start(sweep_dir, jobs)
        log.info("%s: %d trial(s) %s", self.name, len(job_overrides), where)
        if len(runs) < len(job_overrides):
            log.info("%s: %d configuration(s) given more than once run once", self.name,
                     len(job_overrides) - len(runs))
        board = Board([(j.idx, j.overrides) for j in jobs], slots, self.live)
        board.log_plan()
        with board:
            results = self.run(jobs, board)
        return [results[jobs[i].idx] for i in index]

    @abstractmethod
    def start(self, sweep_dir: Path, jobs: list[Job]) -> tuple[int, str]:
        """Get ready to run ``jobs``; how many run at once, and where (for the log)."""

    @abstractmethod
    def run(self, jobs: list[Job], board: Board) -> dict[int, JobReturn]:
        """Run ``jobs`` to completion; each one's JobReturn by its index."""
