"""``python -m sweeper.promote SWEEP_DIR``: promote the sweep's best completed trial to ``best/``.

``best/`` holds ``model.keras``, ``saved_model/<version>/`` (TF Serving's versioned layout) and
``best.json``; it is replaced only by a strictly better trial, with the next version number.
With ``--json`` the answer is one JSON object on stdout (the promotion, or its error), for
programs; the sweep's end reads it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path

from sweeper.cli import command
from sweeper.errors import ExportError, SweepIncomplete
from sweeper.results.finish import describe_promotion
from sweeper.results.promotion import answer, promote

log = logging.getLogger("sweeper.promote")  # not __main__ under -m: sweeper's own lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sweeper.promote", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--json", action="store_true", help="answer in JSON on stdout")
    args = parser.parse_args(argv)
    # This process may import TensorFlow: keep it off the accelerators unless told otherwise.
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    if args.json:
        said = answer(args.sweep_dir)
        json.dump(said, sys.stdout)
        sys.exit(said.get("status", 0))
    with command():
        try:
            result = promote(args.sweep_dir)
        except (ExportError, OSError) as e:
            raise SweepIncomplete(f"not promoted, best/ left as it was: {e}") from e
        for line in result.skipped:
            log.warning("%s", line)
        print(f"sweeper: {describe_promotion(asdict(result), args.sweep_dir)}")


if __name__ == "__main__":
    main()
