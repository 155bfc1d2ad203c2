"""The grid of ``hydra/sweeper=grid``: Hydra's basic grid, at any size.

Before the sweep, :func:`corners` gives the preflight what it must check for the whole grid to be
safe: every combination of the swept config groups' options (composed, since each option brings
its own defaults), and every value of every other swept key (applied to a composed configuration
in memory, which checks its type and range). A 10,000-point grid is checked with a handful of
compositions instead of 10,000.

During the sweep, :func:`sweep` launches the grid in Hydra's order, leaving out the trials an
earlier run of the sweep finished: their folders are found from the overrides alone (the trial id
is a function of them), so resuming a finished sweep launches nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.override_parser.types import Override
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf, open_dict

from sweeper.config.identity import folder
from sweeper.config.overrides import sweep_arguments
from sweeper.errors import ConfigError
from sweeper.record import UNREADABLE, RecordError, TrialRecord
from sweeper.results.planned import write_plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Value:
    """One swept value to check on a composed configuration, and the override that gives it."""

    line: str  # as the grid writes it: model.units=32
    key: str  # model.units
    value: Any  # 32
    add: bool  # +model.depth=... adds a key


def corners(parsed: Sequence[Override], groups: Sequence[str]) -> tuple[list[list[str]],
                                                                         list[Value]]:
    """The grid's jobs to compose (every combination of swept group options, the first value of
    every other swept key), and the other keys' remaining values to check on the first one."""
    fixed: list[str] = []
    group_lines: list[list[str]] = []
    swept: list[list[Value]] = []
    last = {o.get_key_element(): o for o in parsed}  # a key given twice: the grid takes the last
    for o in last.values():
        key = o.get_key_element()
        if not o.is_sweep_override():
            fixed.append(f"{key}={o.get_value_element_as_str()}")
        elif o.key_or_group in groups:
            group_lines.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            lines = [f"{key}={v}" for v in o.sweep_string_iterator()]
            values = list(o.sweep_iterator())
            swept.append([Value(line, o.key_or_group, value, o.is_add() or o.is_force_add())
                          for line, value in zip(lines, values, strict=True)])
    if any(not options for options in [*group_lines, *swept]):
        raise ConfigError("the sweep is empty: no combination of values to run")
    firsts = [values[0].line for values in swept]
    jobs = [[*fixed, *combination, *firsts]
            for combination in itertools.product(*group_lines)]
    rest = [value for values in swept for value in values[1:]]
    return jobs, rest


def together(values: Sequence[Value], groups: Sequence[Sequence[str]]) -> Iterator[list[Value]]:
    """The swept values a rule that reads several keys (``groups``: the keys of each such rule)
    must see together: for each group, every combination in which two or more of its keys take
    a value other than the first configuration's own (one value at a time is checked apart)."""
    by_key: dict[str, list[Value]] = {}
    for value in values:
        by_key.setdefault(value.key, []).append(value)
    for group in groups:
        keys = [key for key in group if key in by_key]
        if len(keys) < 2:
            continue
        for combination in itertools.product(*([None, *by_key[key]] for key in keys)):
            chosen = [value for value in combination if value is not None]
            if len(chosen) >= 2:
                yield chosen


@contextlib.contextmanager
def applied(cfg: Any, value: Value) -> Iterator[Any]:
    """``cfg`` (a composed configuration) with one swept value set as composing would set it
    (OmegaConf checks its type against the schema), and as it was again afterwards."""
    before = OmegaConf.select(cfg, value.key, default=_ABSENT)
    try:
        OmegaConf.update(cfg, value.key, value.value, merge=True, force_add=value.add)
    except Exception as e:
        raise ConfigError(f"{value.line}: {_first_line(e)}") from e
    try:
        yield cfg
    finally:
        if before is _ABSENT:
            parent, _, leaf = value.key.rpartition(".")
            node = OmegaConf.select(cfg, parent) if parent else cfg
            with open_dict(node):
                del node[leaf]
        else:
            OmegaConf.update(cfg, value.key, before, merge=False)


_ABSENT = object()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def sweep(sweeper: Any, arguments: list[str]) -> list[Sequence[JobReturn]]:
    """Launch the grid, batch by batch (``max_batch_size``), less the trials already finished."""
    config = sweeper.config
    parsed = sweep_arguments(config.hydra.sweeper, arguments)
    (jobs,) = sweeper.split_arguments(parsed, None)
    repeats = int(OmegaConf.select(config, "sweep.repeats", default=1))
    if repeats > 1:  # every configuration once, then each again with the next seed
        jobs = [[*job, f"sweep.repeat={k}"] for k in range(repeats) for job in jobs]
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")
    exclude = list(config.hydra.job.config.override_dirname.exclude_keys)
    # any Hydra application can use the grid: one without sweeper's `sweep` node retries nothing
    retry = bool(OmegaConf.select(config, "sweep.retry_failed", default=False))
    write_plan(sweep_dir, len(jobs))
    name = config.hydra.job.config_name
    todo = [job for job in jobs if not _settled(folder(sweep_dir / "trials", job, exclude, name),
                                                retry)]
    if len(todo) < len(jobs):
        log.info("grid: %d of %d trials finished in an earlier run of the sweep; %d to run",
                 len(jobs) - len(todo), len(jobs), len(todo))
    size = sweeper.max_batch_size or max(1, len(todo))
    returns: list[Sequence[JobReturn]] = []
    for start in range(0, len(todo), size):
        batch = todo[start:start + size]
        results = sweeper.launcher.launch(batch, initial_job_idx=start)
        for ret in results:
            if ret.status == JobStatus.FAILED:  # as Hydra's basic sweeper does: the job raised
                _ = ret.return_value
        returns.append(results)
    return returns


def _settled(trial: Path, retry_failed: bool) -> bool:
    """Whether an earlier run finished this trial for good (the trial itself decides again
    when it runs: this only spares launching it)."""
    try:
        record = TrialRecord.load(trial)
    except FileNotFoundError:
        return False
    except (OSError, RecordError) as e:
        log.warning("trial %s: its record cannot be read (%s): it runs again, and its folder is "
                    "kept aside in %s/", trial.name, e, trial.parent.parent / UNREADABLE)
        return False
    return record.settled(retry_failed) is not None
