"""``python -m sweeper.resume SWEEP_DIR``: run a sweep's own command again to finish it.

The overrides come from the sweep's ``multirun.yaml`` (Hydra's record of the command). Completed
trials are skipped, interrupted ones continue from their last completed epoch, failed ones run
again only with ``sweep.retry_failed=true``. Extra overrides may follow the folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omegaconf import OmegaConf

from sweeper.preflight import fail

PINNED = ("sweep.name=", "paths.experiments=", "paths.logs=")


def command(sweep_dir: Path, extra: list[str]) -> list[str]:
    """The arguments of ``python -m sweeper`` that continue the sweep in ``sweep_dir``."""
    saved = sweep_dir / "multirun.yaml"
    if not saved.is_file():
        fail(f"{sweep_dir}: not a sweep folder (no multirun.yaml)")
    cfg = OmegaConf.load(saved)
    hydra_overrides = list(cfg.hydra.overrides.hydra)
    task = [o for o in cfg.hydra.overrides.task if not o.startswith(PINNED)]
    logs = cfg.paths.logs if not OmegaConf.is_interpolation(cfg.paths, "logs") else "logs"
    pinned = [f"sweep.name={sweep_dir.name}", f"paths.experiments={sweep_dir.parent}",
              f"paths.logs={logs}"]
    return ["-m", *hydra_overrides, *task, *pinned, *extra]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sweeper.resume", description=__doc__)
    parser.add_argument("sweep_dir", type=Path, help="experiments/<sweep name>")
    parser.add_argument("overrides", nargs="*", help="more overrides: sweep.retry_failed=true")
    args = parser.parse_args(argv)
    from sweeper.app import cli

    args_out = command(args.sweep_dir, args.overrides)
    print("sweeper: resuming with: python -m sweeper " + " ".join(args_out))
    cli(args_out)


if __name__ == "__main__":
    main()
