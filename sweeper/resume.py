"""``python -m sweeper.resume SWEEP_DIR``: run a sweep's own command again to finish it.

The overrides come from the sweep's ``multirun.yaml`` (Hydra's record of the command). Completed
trials are skipped, interrupted ones continue from their last completed epoch, failed ones run
again only with ``sweep.retry_failed=true``. Extra overrides may follow the folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omegaconf import OmegaConf

from sweeper.cli import command
from sweeper.config.keys import Role, key_of, with_role
from sweeper.config.overrides import quoted
from sweeper.errors import ConfigError


def command_line(sweep_dir: Path, extra: list[str]) -> list[str]:
    """The arguments of ``python -m sweeper`` that continue the sweep in ``sweep_dir``."""
    saved = sweep_dir / "multirun.yaml"
    if not saved.is_file():
        raise ConfigError(f"{sweep_dir}: not a sweep folder (no multirun.yaml)")
    cfg = OmegaConf.load(saved)
    hydra_overrides = list(cfg.hydra.overrides.hydra)
    pinned_keys = with_role(Role.PINNED)
    task = [o for o in cfg.hydra.overrides.task if key_of(o) not in pinned_keys]
    logs = cfg.paths.logs if not OmegaConf.is_interpolation(cfg.paths, "logs") else "logs"
    where = {"sweep.name": sweep_dir.name, "paths.experiments": sweep_dir.parent,
             "paths.logs": logs}
    return ["-m", *hydra_overrides, *task,
            *(f"{k}={quoted(str(where[k]))}" for k in pinned_keys), *extra]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sweeper.resume", description=__doc__)
    parser.add_argument("sweep_dir", type=Path, help="experiments/<sweep name>")
    parser.add_argument("overrides", nargs="*", help="more overrides: sweep.retry_failed=true")
    args = parser.parse_args(argv)
    with command():
        arguments = command_line(args.sweep_dir, args.overrides)
    print("sweeper: resuming with: python -m sweeper " + " ".join(arguments))
    from sweeper.cli import main as sweep

    sweep(arguments)


if __name__ == "__main__":
    main()
