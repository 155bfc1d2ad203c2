"""Workers started at the first line of a sweep, so that their TensorFlow import (seconds of CPU)
overlaps the sweep process's own start: Hydra, composing and checking the configuration.

Only what can be known from the command line alone is started this early: the pool's CPU workers
(one per core, or ``hydra.launcher.workers``), never more than the trials the command line asks
for when it tells (:func:`planned_trials`). When the pool is set up it adopts the workers
whose environment is the one its slots need, and the rest are stopped; a sweep that turns out
to need none of them (another launcher, bad input) stops them all. GPU workers wait for the
whole configuration (their memory shares come from it).
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp
import os
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from sweeper.config.keys import key_of
from sweeper.errors import DeviceError
from sweeper.launch.devices import plan_slots
from sweeper.launch.worker import worker_main

PRELOAD = "sweeper.trial.run.preload"  # what a worker imports before it knows its sweep


@dataclass
class Started:
    """A worker started before its sweep: its environment, process, pipe and first log."""

    env: dict[str, str]
    process: Any
    conn: Connection
    log_path: str


_waiting: list[Started] = []


def prestart(argv: list[str]) -> None:
    """Start the CPU workers a pool sweep of ``argv`` will most likely need."""
    if not any(a in ("-m", "--multirun") for a in argv):
        return
    given = {key_of(a): a.split("=", 1)[1] for a in argv if "=" in a}
    launcher = given.get("hydra/launcher")
    if launcher not in (None, "pool") or given.get("hydra.launcher.devices", "auto") != "auto":
        return
    workers = given.get("hydra.launcher.workers")
    try:
        slots = plan_slots("auto", 1, 1, int(workers) if workers else None)
    except (DeviceError, ValueError):
        return  # the preflight says what is wrong
    if any(slot.gpus for slot in slots):
        return
    trials = planned_trials(argv)
    context = mp.get_context("spawn")
    for slot in slots[:trials]:
        env = {**slot.env, "SWEEPER_SLOT": slot.name}
        fd, log_path = tempfile.mkstemp(prefix="sweeper-worker-", suffix=".log")
        os.close(fd)
        parent_conn, child_conn = context.Pipe()
        process = context.Process(target=worker_main, name=f"sweeper-{slot.name}", daemon=True,
                                  args=(child_conn, env, log_path, PRELOAD, os.getpid()))
        process.start()
        child_conn.close()
        _waiting.append(Started(env, process, parent_conn, log_path))
    atexit.register(dismiss)


def planned_trials(argv: list[str]) -> int | None:
    """How many trials a sweep's command line asks for, when it alone tells: the product of a
    grid's swept values, or the random and Bayesian tuner's ``max_trials``; None when it cannot
    (a preset, Hyperband, a value of ``interval`` or a glob, an override Hydra cannot parse)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    lines = [a for a in argv if not a.startswith("-")]
    given = {key_of(a): a.split("=", 1)[1] for a in lines if "=" in a}
    if "search" in given:
        return None
    if given.get("hydra/sweeper", "grid") != "grid":
        value = given.get("hydra.sweeper.max_trials", "")
        algorithm = given.get("hydra.sweeper.algorithm", "random")
        return int(value) if value.isdigit() and algorithm in ("random", "bayesian") else None
    count = 1
    try:
        for override in OverridesParser.create().parse_overrides(lines):
            if override.is_sweep_override():
                if not override.is_discrete_sweep():
                    return None
                count *= len(list(override.sweep_string_iterator()))
    except (HydraException, ValueError):
        return None
    return count


def take(env: dict[str, str]) -> Started | None:
    """A waiting worker started with exactly ``env``, for the pool to adopt."""
    for started in _waiting:
        if started.env == env and started.process.is_alive():
            _waiting.remove(started)
            return started
    return None


def dismiss() -> None:
    """Stop the workers no pool adopted (and remove their early logs)."""
    while _waiting:
        started = _waiting.pop()
        with contextlib.suppress(OSError):
            started.conn.close()  # it ends when its pipe closes
        started.process.join(timeout=5)
        if started.process.is_alive():
            started.process.kill()
            started.process.join(timeout=5)
        with contextlib.suppress(OSError):
            os.unlink(started.log_path)
