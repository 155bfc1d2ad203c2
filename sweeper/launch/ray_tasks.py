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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, setup_globals
from omegaconf import DictConfig, open_dict

from sweeper.launch.devices import gpu_label
from sweeper.launch.jobs import Job, died_return, distinct, outcome, record_death
from sweeper.launch.progress import Board
from sweeper.launch.ray_cluster import ray_room
from sweeper.record import RECORD, TrialRecord

log = logging.getLogger(__name__)
POLL_S = 0.5  # how often running trials' records are read for the table


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]],
           initial_job_idx: int) -> list[JobReturn]:
    """Submit the batch as Ray tasks; results in the batch's order."""
    import ray

    # Private helpers of hydra-ray-launcher (bounded in pyproject.toml): submitting a job exactly
    # as its own launcher does is the point of this module.
    from hydra_plugins.hydra_ray_launcher._launcher_util import launch_job_on_ray, start_ray

    setup_globals()
    config, context = launcher.config, launcher.hydra_context
    assert config is not None and context is not None and launcher.task_function is not None
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    start_ray(launcher.ray_cfg.init)
    log.info("Ray: %d trial(s) on the cluster at %s", len(job_overrides),
             ray.get_runtime_context().gcs_address)
    submitted = time.time()
    jobs: dict[Any, Job] = {}
    runs, index = distinct(job_overrides)
    for i, overrides in enumerate(runs):
        job = Job(initial_job_idx + i, overrides, attempts=1)
        sweep_config = _sweep_config(context, config, job)
        ref = launch_job_on_ray(context, launcher.ray_cfg.remote, sweep_config,
                                functools.partial(_in_trial_log, launcher.task_function),
                                Singleton.get_state())
        jobs[ref] = job
    results: dict[int, JobReturn] = {}
    slots = max(1, ray_room(launcher.ray_cfg)[0])
    board = Board([(j.idx, j.overrides) for j in jobs.values()], slots)
    board.log_plan()
    with board:
        for job in jobs.values():
            board.output_dir(job.idx, str(job.output_dir))
        pending = list(jobs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=POLL_S)
                for ref in ready:
                    job = jobs[ref]
                    _started(job, board, submitted, done=True)
                    results[job.idx] = _result(ray, ref, job)
                    board.finished(job.idx, outcome(results[job.idx]))
                for ref in pending:
                    _started(jobs[ref], board, submitted)
                board.refresh()
        except BaseException:
            for ref in pending:  # Ctrl-C: no trial goes on without the sweep
                ray.cancel(ref, force=True)
            raise
    ordered = list(jobs.values())
    return [results[ordered[i].idx] for i in index]


OUTPUT_LOG = "output.log"  # a Ray trial's own process output, in its folder


def _in_trial_log(task_function: Any, cfg: DictConfig) -> Any:
    """Run the trial with its process's output (TensorFlow's C++ log lines, a library's prints)
    going to ``output.log`` in its folder, as a pool worker's go to its log, not to the sweep's
    console through Ray."""
    path = Path(HydraConfig.get().runtime.output_dir) / OUTPUT_LOG
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        try:
            return task_function(cfg)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _sweep_config(context: Any, config: DictConfig, job: Job) -> DictConfig:
    """The trial's configuration, as Hydra's Ray launcher builds it, and its folder."""
    sweep_config = context.config_loader.load_sweep_config(config, job.overrides)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"job_id_for_{job.idx}"
        sweep_config.hydra.job.num = job.idx
    saved = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(sweep_config)  # the folder's name resolves through it
    try:
        job.output_dir = str(Path(str(sweep_config.hydra.sweep.dir))
                             / str(sweep_config.hydra.sweep.subdir))
    finally:
        HydraConfig.instance().cfg = saved
    return sweep_config


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
