"""One batch of Hydra jobs as sweeper's own launchers (the pool, Ray) run it: the sweep folder,
each configuration once, the live table of its trials, and results in the batch's order; or a
stream of jobs (:meth:`Batch.stream`) that grows as jobs finish, for an asynchronous search."""

from __future__ import annotations

import itertools
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
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
        runs, index = distinct(job_overrides)
        jobs = [Job(initial_job_idx + i, overrides) for i, overrides in enumerate(runs)]
        slots, where = self._begin(jobs)
        log.info("%s: %d trial(s) %s", self.name, len(job_overrides), where)
        if len(runs) < len(job_overrides):
            log.info("%s: %d configuration(s) given more than once run once", self.name,
                     len(job_overrides) - len(runs))
        board = Board([(j.idx, j.overrides) for j in jobs], slots, self.live)
        board.log_plan()
        with board:
            results = self.run(jobs, board)
        return [results[jobs[i].idx] for i in index]

    def stream(self, first: Sequence[Sequence[str]], more: Callable[[list[str], JobReturn],
                                                                     list[list[str]]],
               initial_job_idx: int) -> list[JobReturn]:
        """Run ``first``, and whatever ``more`` asks for as each job ends (its overrides and
        JobReturn in, the jobs to run next out): a slot freed is filled at once, not when a
        whole batch is done. Results in the order the jobs were given."""
        jobs = [Job(initial_job_idx + i, list(o)) for i, o in enumerate(first)]
        numbers = itertools.count(initial_job_idx + len(jobs))
        by_idx = {job.idx: job for job in jobs}
        slots, where = self._begin(jobs)
        log.info("%s: %d trial(s) %s, more as each ends", self.name, len(jobs), where)
        board = Board([(j.idx, j.overrides) for j in jobs], slots, self.live, growing=True)
        board.log_plan()

        def feed(idx: int, ret: JobReturn) -> list[Job]:
            new = [Job(next(numbers), o) for o in more(by_idx[idx].overrides, ret)]
            by_idx.update((job.idx, job) for job in new)
            board.add([(job.idx, job.overrides) for job in new])
            self.submit(new)
            return new

        with board:
            results = self.run(jobs, board, feed)
        return [results[idx] for idx in sorted(results)]

    def _begin(self, jobs: list[Job]) -> tuple[int, str]:
        """Hydra's globals and logging, the sweep folder, then :meth:`start`."""
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        return self.start(sweep_dir, jobs)

    @abstractmethod
    def submit(self, jobs: list[Job]) -> None:
        """Hand ``jobs``, added to a running stream, to where they run."""

    @abstractmethod
    def start(self, sweep_dir: Path, jobs: list[Job]) -> tuple[int, str]:
        """Get ready to run ``jobs``; how many run at once, and where (for the log)."""

    @abstractmethod
    def run(self, jobs: list[Job], board: Board,
            feed: Callable[[int, JobReturn], list[Job]] | None = None) -> dict[int, JobReturn]:
        """Run ``jobs`` to completion, and those ``feed`` adds as each ends; each one's
        JobReturn by its index."""
