"""The Hydra application: ``python -m sweeper [-m] [overrides]``."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from sweeper import record, schema

# conf/ sits beside the package in a source checkout (the supported, editable install).
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
CONFIG_NAME = "config"


def register() -> None:
    """Make the schema and the ``trial_id`` resolver known to Hydra (idempotent)."""
    schema.register()
    if not OmegaConf.has_resolver("trial_id"):
        OmegaConf.register_new_resolver("trial_id", record.trial_id)


register()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=CONFIG_NAME)
def main(cfg: DictConfig) -> float:
    """Run one trial with ``cfg``; its objective goes back to the sweeper."""
    from sweeper import trial  # TensorFlow comes in with the trial, not with --help

    return trial.run(cfg)


def cli(argv: list[str] | None = None) -> None:
    """Check the whole configuration, then hand over to Hydra."""
    from sweeper import preflight

    preflight.check(sys.argv[1:] if argv is None else argv)
    main()
