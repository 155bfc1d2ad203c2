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
import os
import tempfile

from sweeper.config.keys import key_of
from sweeper.errors import DeviceError
from sweeper.launch.devices import Slot, plan_slots
from sweeper.launch.kinds import Kind, kind_of_option
from sweeper.launch.worker import Started, start_worker, worker_env

PRELOAD = "sweeper.trial.host.preload"  # what a worker imports before it knows its sweep

# Read and written here only. Hydra builds the launcher from the configuration alone, so these
# workers, started before Hydra, reach the pool through take() rather than as an argument.
_waiting: list[Started] = []


def prestart(argv: list[str]) -> None:
    """Start the CPU workers a pool sweep of ``argv`` will most likely need."""
    if not any(a in ("-m", "--multirun") for a in argv):
        return
    given = {key_of(a): a.split("=", 1)[1] for a in argv if "=" in a}
    if kind_of_option(given.get("hydra/launcher")) is not Kind.POOL \
            or given.get("hydra.launcher.devices", "auto") != "auto":
        return
    workers = given.get("hydra.launcher.workers")
    try:
        slots = plan_slots("auto", 1, 1, int(workers) if workers else None)
    except (DeviceError, ValueError):
        return  # the preflight says what is wrong
    if any(slot.gpus for slot in slots):
        return
    for slot in slots[:planned_trials(argv)]:
        fd, log_path = tempfile.mkstemp(prefix="sweeper-worker-", suffix=".log")
        os.close(fd)
        _waiting.append(start_worker(slot, log_path, PRELOAD))
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


def take(slot: Slot) -> Started | None:
    """A waiting worker started with exactly the environment ``slot`` needs, for the pool."""
    for started in _waiting:
        if started.env == worker_env(slot) and started.process.is_alive():
            _waiting.remove(started)
            return started
    return None


def dismiss() -> None:
    """Stop the workers no pool adopted (and remove their early logs)."""
    while _waiting:
        started = _waiting.pop()
        started.stop(wait_s=5)
        with contextlib.suppress(OSError):
            os.unlink(started.log_path)
