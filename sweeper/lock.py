"""One sweep process per sweep folder: an OS file lock held for the sweep's life.

The lock lasts while its file is open, and the kernel releases it when the process ends, however
it ends (``kill -9`` included), so it is never stale. The file names the holder, so a second
command can say who has it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import IO

from sweeper.errors import SweepLocked

LOCK = ".sweep.lock"


def hold(sweep_dir: Path) -> IO[str]:
    """Take the lock of ``sweep_dir``: held until the file returned is closed (keep it open for
    the sweep's life); raise :class:`SweepLocked` naming the holder's pid and host when another
    process has it."""
    sweep_dir = sweep_dir.absolute()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    f = open(sweep_dir / LOCK, "a+")  # noqa: SIM115 (kept open: closing it would unlock)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise SweepLocked(f"sweep {sweep_dir.name} is running ({holder}); wait for it to end, "
                          "or use another sweep.name") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    return f


def holder(sweep_dir: Path) -> str | None:
    """Who runs the sweep in ``sweep_dir`` now (``pid N on HOST``), or None when no process
    holds its lock."""
    try:
        f = open(sweep_dir / LOCK)  # noqa: SIM115 (closed below, after the test)
    except OSError:
        return None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return f.read().strip() or "another process"
        fcntl.flock(f, fcntl.LOCK_UN)
    return None
