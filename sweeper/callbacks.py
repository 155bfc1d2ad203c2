"""Hydra callbacks around a sweep (configured under ``hydra.callbacks`` in conf/config.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sweeper import hparams
from sweeper.overrides import lines, sweep_arguments


class SweepCallback(Callback):
    """Writes the sweep's HParams experiment config before the first trial starts."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        logdir = Path(config.paths.logs) / config.sweep.name
        hparams.write_experiment(logdir, sweep_domains(config))


def sweep_domains(config: DictConfig) -> dict[str, list[Any]]:
    """Every hyperparameter a trial of this sweep records, with the values the sweep gives it.

    Values come from the sweep's overrides (``hydra.sweeper.params`` and the command line); a
    hyperparameter no override sweeps has the one value of the composed configuration. Sweep
    syntax the basic grid does not enumerate (intervals) is left to its own sweeper.
    """
    parsed = sweep_arguments(config.hydra.sweeper, list(config.hydra.overrides.task))
    domains: dict[str, list[Any]] = {
        k: [v] for k, v in hparams.trial_hparams(config, lines(parsed)).items()}
    for o in parsed:
        if o.is_sweep_override() and not o.is_interval_sweep():
            domains[o.key_or_group] = list(o.sweep_iterator())
    return domains
