"""The Hydra application: ``python -m sweeper [-m] [overrides]``."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from sweeper.schema import CONFIG_DIR, CONFIG_NAME, register

register()


def run_trial(cfg: DictConfig) -> float:
    """Run one trial with ``cfg``; its objective goes back to the sweeper."""
    from sweeper import trial  # TensorFlow comes in with the trial, not with --help

    return trial.run(cfg)


# The pool launcher calls this in a worker while it waits for its first trial.
run_trial.warm_up = "sweeper.trial.warm_up"  # type: ignore[attr-defined]
main = hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=CONFIG_NAME)(run_trial)


def cli(argv: list[str] | None = None) -> None:
    """Check the whole configuration, then hand over to Hydra."""
    from sweeper import preflight

    if argv is not None:  # Hydra reads its arguments from sys.argv
        sys.argv = [sys.argv[0], *argv]
    sys.argv = [sys.argv[0], *preflight.check(sys.argv[1:])]
    try:
        main()
    except KeyboardInterrupt:
        # The launcher has already stopped its workers; completed records stay valid.
        print("sweeper: interrupted", file=sys.stderr)
        sys.exit(130)
    stopped = sys.modules.get("sweeper.search")
    if stopped is not None and stopped.STOPPED_BY_FAILURES:
        print("sweeper: error: the search stopped early: more trials failed than "
              "hydra.sweeper.max_failures allows", file=sys.stderr)
        sys.exit(1)
