"""Many command lines through sweeper's preflight in ONE process, for tests of bad input.

Each row is the argument list of a ``sweeper`` command and the folder it runs in. The row goes
through what the command does before anything starts (``sweeper.cli.command`` around
``sweeper.preflight.check``), in that folder, and its exit status and stderr are kept. One
process for all rows saves a Python, Hydra and worker start per row; the real command line is
still run for a few rows (tests/config/test_config.py).

    python tests/helpers/preflight_rows.py < rows.json > outcomes.json
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys


def main() -> None:
    from sweeper import preflight
    from sweeper.cli import command

    outcomes = []
    for cwd, argv in json.loads(sys.stdin.read()):
        os.chdir(cwd)
        err = io.StringIO()
        status: object = 0
        with contextlib.redirect_stderr(err):
            try:
                with command():
                    preflight.check(argv)
            except SystemExit as e:
                status = e.code
        outcomes.append({"status": status, "stderr": err.getvalue()})
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main()
