"""The command line: ``sweeper`` (``python -m sweeper``), and the error path of every command.

Library code raises :class:`~sweeper.errors.SweeperError` and logs; only here is an error
printed, as one line ``sweeper: error: ...``, and turned into the error's exit status.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator

from sweeper.errors import SweeperError

EXIT_INTERRUPTED = 130


class _OneLine(logging.Formatter):
    """``sweeper: warning: ...``, ``sweeper: error: ...``, or ``sweeper: ...`` for the rest."""

    def format(self, record: logging.LogRecord) -> str:
        level = record.levelname.lower()
        prefix = f"{level}: " if record.levelno >= logging.WARNING else ""
        return f"sweeper: {prefix}{record.getMessage()}"


@contextlib.contextmanager
def command(log_to_stderr: bool = True) -> Iterator[None]:
    """Run a command: sweeper's log lines on stderr, one line and an exit status for an error,
    130 for Ctrl-C (whatever was already written stays valid)."""
    logger = logging.getLogger("sweeper")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    if log_to_stderr:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        yield
    except SweeperError as e:
        sys.stdout.flush()
        print(f"sweeper: error: {e}", file=sys.stderr)
        sys.exit(e.status)
    except KeyboardInterrupt:
        print("sweeper: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        if log_to_stderr:
            logger.removeHandler(handler)
            logger.propagate = True


def main(argv: list[str] | None = None) -> None:
    """``sweeper [-m] [overrides]``: check the whole configuration, then hand over to Hydra; a
    sweep that ran but lacks part of what it leaves behind exits 1, saying what."""
    from sweeper import lock, preflight

    started = time.time()
    argv = sys.argv[1:] if argv is None else list(argv)
    with command():
        plan = preflight.check(argv)
        # One sweep per folder: the lock lasts while this file is open, until the sweep ends.
        held = lock.hold(plan.sweep_dir) if plan.sweep_dir is not None else None
    # Hydra reads its arguments from sys.argv. Its own error report would print a traceback
    # and exit 1: sweeper's errors come through to this function instead.
    sys.argv = [sys.argv[0], *plan.argv]
    os.environ["HYDRA_FULL_ERROR"] = "1"
    with command(log_to_stderr=False), held or contextlib.nullcontext():  # Hydra sets up logging
        from sweeper.app import main as hydra_main

        hydra_main()
        if plan.sweep_dir is not None and plan.multirun:
            from sweeper.results.finish import check_outcome

            check_outcome(plan.sweep_dir, started)


if __name__ == "__main__":
    main()
