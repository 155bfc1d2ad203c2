"""One batch of trials as Ray tasks, for ``hydra/launcher=ray_cluster``.

Built from Hydra's Ray launcher (its ``start_ray`` and ``launch_job_on_ray``); what it adds is
what the pool launcher does too: a live table of the trials (status, node and device, epoch,
metric, ETA, read from each trial's own record), and a trial whose Ray worker dies for good
(killed, out of memory, its node lost, after Ray's own retries) failing alone, its record
saying why, while the sweep goes on to its leaderboard.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn
from omegaconf import DictConfig, open_dict, read_write

from sweeper.launch.batch import Batch
from sweeper.launch.devices import gpu_label
from sweeper.launch.jobs import Job, died_return, job_config, outcome, record_death
from sweeper.launch.progress import Board
from sweeper.launch.ray_cluster import ray_room
from sweeper.launch.worker import redirect_output
from sweeper.record import RECORD, TrialRecord

log = logging.getLogger(__name__)
POLL_S = 0.5  # how often running trials' records are read for the table


class RayBatch(Batch):
    """A batch submitted as Ray tasks by ``RayClusterLauncher``."""

    name = "Ray"

    def start(self, sweep_dir: Path, jobs: list[Job]) -> tuple[int, str]:
        import ray

        # Private helpers of hydra-ray-launcher (bounded in pyproject.toml): submitting a job
        # exactly as its own launcher does is the point of this module.
        from hydra_plugins.hydra_ray_launcher._launcher_util import start_ray

        ray_cfg = self.launcher.ray_cfg
        start_ray(ray_cfg.init)
        self.submitted = time.time()
        self.refs: dict[Any, Job] = {}
        # A Ray worker runs in its node's folder, not the command's: a relative sweep folder is
        # the command's, as with every other launcher.
        self.where_from = Path(str(self.config.hydra.runtime.cwd)) / sweep_dir
        self.submit(jobs)
        where = f"on the cluster at {ray.get_runtime_context().gcs_address}"
        return max(1, ray_room(ray_cfg)[0]), where

    def submit(self, jobs: list[Job]) -> None:
        """Each job as a Ray task, exactly as Hydra's Ray launcher submits it."""
        # Private helpers of hydra-ray-launcher (bounded in pyproject.toml).
        from hydra_plugins.hydra_ray_launcher._launcher_util import launch_job_on_ray

        task = functools.partial(_in_trial_log, self.launcher.task_function)
        for job in jobs:
            job.attempts = 1
            sweep_config, job.output_dir = job_config(  # as Hydra's Ray launcher names the job
                self.context, self.config, job.overrides, job.idx, f"job_id_for_{job.idx}")
            with read_write(sweep_config.hydra), open_dict(sweep_config):
                sweep_config.hydra.sweep.dir = str(self.where_from)
            ref = launch_job_on_ray(self.context, self.launcher.ray_cfg.remote, sweep_config,
                                    task, Singleton.get_state())
            self.refs[ref] = job

    def run(self, jobs: list[Job], board: Board,
            feed: Callable[[int, JobReturn], list[Job]] | None = None) -> dict[int, JobReturn]:
        import ray

        for job in jobs:
            board.output_dir(job.idx, str(job.output_dir))
        results: dict[int, JobReturn] = {}
        pending = list(self.refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
                for ref in ready:
                    job = self.refs[ref]
                    _started(job, board, self.submitted, done=True)
                    results[job.idx] = _result(ray, ref, job)
                    board.finished(job.idx, outcome(results[job.idx]))
                    for new in feed(job.idx, results[job.idx]) if feed is not None else []:
                        board.output_dir(new.idx, str(new.output_dir))
                        pending.append(next(r for r, j in self.refs.items() if j is new))
                for ref in pending:
                    _started(self.refs[ref], board, self.submitted)
                board.refresh()
        except BaseException:
            for ref in pending:  # Ctrl-C: no trial goes on without the sweep
                ray.cancel(ref, force=True)
            raise
        return results


OUTPUT_LOG = "output.log"  # a Ray trial's own process output, in its folder


def _in_trial_log(task_function: Any, cfg: DictConfig) -> Any:
    """Run the trial with its process's output (TensorFlow's C++ log lines, a library's prints)
    going to ``output.log`` in its folder, as a pool worker's go to its log, not to the sweep's
    console through Ray."""
    saved = os.dup(1), os.dup(2)
    redirect_output(str(Path(HydraConfig.get().runtime.output_dir) / OUTPUT_LOG))
    try:
        return task_function(cfg)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, kept in enumerate(saved, start=1):
            os.dup2(kept, fd)
            os.close(kept)


def _started(job: Job, board: Board, submitted: float, done: bool = False) -> None:
    """A trial has started once it wrote its record after the batch was submitted (or, for one
    that had nothing to do, once it is done); the table then shows where it runs."""
    if job.started or job.output_dir is None:
        return
    try:
        fresh = (Path(job.output_dir) / RECORD).stat().st_mtime >= submitted
    except OSError:
        fresh = False
    record = TrialRecord.read(Path(job.output_dir)) if fresh or done else None
    if record is None and not done:
        return
    job.started = time.time()
    node = str(record.node or "") if record else ""
    device = f"{record.device} {gpu_label(record.gpus)}".strip() if record else ""
    board.started(job.idx, f"{device} {node[:8]}".strip() or "?")


def _result(ray: Any, ref: Any, job: Job) -> JobReturn:
    """The trial's JobReturn; a task Ray gave up on fails its trial, not the sweep."""
    try:
        ret: JobReturn = ray.get(ref)
        return ret
    except ray.exceptions.RayError as e:
        cause = f"worker died: {type(e).__name__}"
        record_death(job, cause, will_retry=False)
        log.warning("trial #%d: %s: %s", job.idx, cause, str(e).strip().splitlines()[0])
        return died_return(job, cause)
