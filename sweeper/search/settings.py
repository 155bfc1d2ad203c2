"""The tuner sweeper's settings (``hydra.sweeper`` of ``hydra/sweeper=tuner``), checked, and
which sweeper a configuration names."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeper.errors import SearchError

ALGORITHMS = ("random", "bayesian", "hyperband", "grid")
DEFAULT_MAX_TRIALS = 10  # random and Bayesian search without hydra.sweeper.max_trials
# Keys Hyperband sets on each of its trials.
HYPERBAND_KEYS = ("train.epochs", "train.initial_epoch", "train.warm_start")
TUNER = "hydra_plugins.sweeper_plugins.tuner_sweeper.TunerSweeper"
# Hydra's basic grid, and sweeper's grid (the default: the same grid, at any size)
GRIDS = ("hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
         "hydra_plugins.sweeper_plugins.grid_sweeper.GridSweeper")


@dataclass
class Settings:
    """``hydra.sweeper`` of ``hydra/sweeper=tuner``, checked."""

    algorithm: str = "random"
    max_trials: int | None = None
    seed: int = 0
    max_failures: int = 3
    batch_size: int | None = None
    hyperband: dict[str, Any] = field(default_factory=dict)
    bayesian: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, sweeper_cfg: DictConfig) -> Settings:
        raw: Any = OmegaConf.to_container(sweeper_cfg, resolve=True)
        s = cls(**{k: raw[k] for k in ("algorithm", "max_trials", "seed", "max_failures",
                                       "batch_size", "hyperband", "bayesian") if k in raw})
        if s.algorithm not in ALGORITHMS:
            raise SearchError(f"hydra.sweeper.algorithm={s.algorithm}: choose one of "
                              f"{', '.join(ALGORITHMS)}")
        for key, value, least in (("max_trials", s.max_trials, 1),
                                  ("max_failures", s.max_failures, 0),
                                  ("batch_size", s.batch_size, 1),
                                  ("hyperband.max_epochs", s.hyperband.get("max_epochs"), 1),
                                  ("hyperband.factor", s.hyperband.get("factor"), 2),
                                  ("hyperband.iterations", s.hyperband.get("iterations"), 1)):
            if value is not None and (not isinstance(value, int) or value < least):
                raise SearchError(f"hydra.sweeper.{key}={value}: must be an integer >= {least}")
        return s

    def hyperband_epochs(self) -> list[int]:
        """Every train.epochs a Hyperband trial can get (keras-tuner's schedule)."""
        top, factor = int(self.hyperband["max_epochs"]), int(self.hyperband["factor"])
        brackets = int(math.log(top, factor) + 1e-9) + 1
        return sorted({math.ceil(top / factor ** k) for k in range(brackets)})


def is_tuner(sweeper_cfg: DictConfig) -> bool:
    """Whether ``hydra.sweeper`` is sweeper's keras-tuner sweeper."""
    return str(sweeper_cfg.get("_target_", "")) == TUNER


def is_grid(sweeper_cfg: DictConfig) -> bool:
    """Whether ``hydra.sweeper`` sweeps Hydra's grid (``basic`` or sweeper's ``grid``)."""
    return str(sweeper_cfg.get("_target_", "")) in GRIDS
