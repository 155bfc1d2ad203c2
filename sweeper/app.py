"""The Hydra application: the task function every launcher runs, once per trial."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from sweeper.config.schema import CONFIG_NAME, CONFIG_PATH, register

register()


def run_trial(cfg: DictConfig) -> float:
    """Run one trial with ``cfg``; its objective goes back to the sweeper."""
    from sweeper.trial import run  # TensorFlow comes in with the trial, not with --help

    return run.run(cfg)


# The pool launcher calls this in a worker while it waits for its first trial.
run_trial.warm_up = "sweeper.trial.host.warm_up"  # type: ignore[attr-defined]
main = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)(run_trial)
