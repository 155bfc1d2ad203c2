"""A trial as a launcher sees it: a Hydra job, what it came to, and a worker's death.

Shared by every launcher sweeper drives (the pool, Ray) and by the search that tells its oracle
each trial's outcome.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, open_dict

from sweeper.config.keys import identity
from sweeper.record import Status, TrialRecord

# How a trial's record says TensorFlow ran out of memory (sweeper/trial/gpu.py writes it): a
# launcher that packed the trial on a shared GPU may give it the whole GPU.
OUT_OF_GPU_MEMORY = "out of GPU memory"
OUT_OF_MEMORY = "out of memory"


@dataclass
class Job:
    """One trial of a batch: its overrides, where its folder is, and how often it was tried."""

    idx: int
    overrides: list[str]
    attempts: int = 0
    output_dir: str | None = None
    started: float = 0.0
    alone: bool = False  # it ran out of memory on a shared GPU: its retry gets a GPU to itself


@dataclass(frozen=True)
class Outcome:
    """What a finished job came to: completed with its objective, pruned with its best before
    the pruner stopped it and why, or failed and why."""

    status: str  # completed, pruned, infeasible or failed
    value: float | None = None
    error: str = ""
    note: str = ""  # why a pruned trial was stopped


def distinct(batch: Sequence[Sequence[str]]) -> tuple[list[list[str]], list[int]]:
    """The batch with each configuration once (two jobs whose overrides differ only in
    bookkeeping keys, or in order, are the same trial: one folder), and for each job of the batch
    the position of the one that runs it."""
    runs: list[list[str]] = []
    seen: dict[tuple[str, ...], int] = {}
    index = []
    for overrides in batch:
        key = tuple(sorted(identity(overrides)))
        if key not in seen:
            seen[key] = len(runs)
            runs.append(list(overrides))
        index.append(seen[key])
    return runs, index


def job_config(context: Any, config: DictConfig, overrides: Sequence[str], idx: int,
               job_id: str | None = None) -> tuple[DictConfig, str]:
    """A job's configuration, as Hydra's launchers build it, and its folder; ``job_id`` is
    Hydra's basic launcher's ``<job name>_<idx>`` unless given."""
    sweep_config = context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = job_id or f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    saved = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(sweep_config)  # the folder's name resolves through it
    output_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
    HydraConfig.instance().cfg = saved
    return sweep_config, str(output_dir)


def trial_folder(ret: JobReturn) -> Path | None:
    """The trial folder a job ran in (its Hydra output dir; the working dir without chdir is
    the command's own), None when it never got one."""
    try:
        return Path(str(ret.hydra_cfg.hydra.runtime.output_dir))  # type: ignore[union-attr]
    except Exception:
        return Path(ret.working_dir) if ret.working_dir else None


def outcome(ret: JobReturn) -> Outcome:
    """The outcome of a finished job; the trial's own record names the error where it has one."""
    value: Any = None
    error = ""
    if ret.status == JobStatus.COMPLETED:
        value = ret.return_value
    else:  # the public return_value re-raises the failure: its private field, hydra-core<1.4
        error = f"{type(ret._return_value).__name__}: {ret._return_value}"
    folder = trial_folder(ret)
    record = TrialRecord.read(folder) if folder is not None else None
    if record is not None and record.error:
        error = record.error
    if record is not None and record.status is Status.INFEASIBLE:  # not trained, on purpose
        return Outcome(Status.INFEASIBLE.value, None, error=record.infeasible or "")
    if isinstance(value, int | float) and math.isfinite(value):
        if record is not None and record.status is Status.PRUNED and record.pruned is not None:
            return Outcome(Status.PRUNED.value, float(value), note=record.pruned.reason)
        return Outcome(Status.COMPLETED.value, float(value))
    return Outcome(Status.FAILED.value, None, error or "no objective")


def out_of_memory(error: str) -> bool:
    """Whether a trial's error says it ran out of (GPU) memory."""
    return error.startswith((OUT_OF_GPU_MEMORY, OUT_OF_MEMORY))


def owe_retry(job: Job) -> None:
    """Note in the trial's record that the launcher will run it again."""
    if job.output_dir is None:
        return
    record = TrialRecord.read(Path(job.output_dir))
    if record is not None:
        record.owe_retry()
        record.write(Path(job.output_dir))


def record_death(job: Job, cause: str, will_retry: bool) -> None:
    """Mark the trial's record failed with the cause, when the trial got as far as writing one
    and had not finished."""
    if job.output_dir is None:
        return
    trial_dir = Path(job.output_dir)
    record = TrialRecord.read(trial_dir)
    if record is None or record.finished:
        return
    record.worker_died(cause, will_retry)
    record.write(trial_dir)


def died_return(job: Job, cause: str) -> JobReturn:
    """The JobReturn of a trial whose worker died for good."""
    # A dead worker fails its trial, not the sweep: the value is NaN like any failed trial's,
    # so Hydra's sweeper goes on and the end-of-sweep callbacks still run.
    ret = JobReturn(overrides=job.overrides, status=JobStatus.COMPLETED,
                    working_dir=job.output_dir or "")
    ret.return_value = math.nan
    return ret
