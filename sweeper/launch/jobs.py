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

from hydra.core.utils import JobReturn, JobStatus

from sweeper.config.keys import identity
from sweeper.record import Status, TrialRecord


@dataclass
class Job:
    """One trial of a batch: its overrides, where its folder is, and how often it was tried."""

    idx: int
    overrides: list[str]
    attempts: int = 0
    output_dir: str | None = None
    started: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """What a finished job came to: completed with its objective, or failed and why."""

    status: str  # completed or failed
    value: float | None = None
    error: str = ""


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
    else:
        error = f"{type(ret._return_value).__name__}: {ret._return_value}"
    folder = trial_folder(ret)
    record = TrialRecord.read(folder) if folder is not None else None
    if record is not None and record.error:
        error = record.error
    if isinstance(value, int | float) and math.isfinite(value):
        return Outcome(Status.COMPLETED.value, float(value))
    return Outcome(Status.FAILED.value, None, error or "no objective")


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
    ret = JobReturn(overrides=job.overrides, status=JobStatus.COMPLETED, _return_value=math.nan)
    ret.working_dir = job.output_dir or ""
    return ret
