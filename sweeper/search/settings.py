"""The tuner sweeper's settings (``hydra.sweeper`` of ``hydra/sweeper=tuner``), checked, and
which sweeper a configuration names."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from hydra_plugins.sweeper_plugins.config import TunerSweeperConf
from sweeper.errors import SearchError

KERAS_TUNER = ("random", "bayesian", "hyperband", "grid")
OPTUNA = ("tpe", "cmaes", "gp", "nsga2", "qmc")  # the optuna extra
ALGORITHMS = (*KERAS_TUNER, *OPTUNA)
DEFAULT_MAX_TRIALS = 10  # random and Bayesian search without hydra.sweeper.max_trials
# Keys Hyperband sets on each of its trials.
HYPERBAND_KEYS = ("train.epochs", "train.initial_epoch", "train.warm_start")
TUNER = "hydra_plugins.sweeper_plugins.tuner_sweeper.TunerSweeper"
# Hydra's basic grid (the _target_ hydra/sweeper=basic sets, a class in hydra._internal:
# hydra-core<1.4), and sweeper's grid (the default: the same grid, at any size)
GRIDS = ("hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
         "hydra_plugins.sweeper_plugins.grid_sweeper.GridSweeper")


@dataclass
class Settings(TunerSweeperConf):
    """``hydra.sweeper`` of ``hydra/sweeper=tuner``, checked: the plugin's own fields and
    defaults."""

    @classmethod
    def of(cls, sweeper_cfg: DictConfig) -> Settings:
        raw = OmegaConf.to_container(sweeper_cfg, resolve=True)
        s = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), raw))
        assert isinstance(s, Settings)
        if s.algorithm not in ALGORITHMS:
            raise SearchError(f"hydra.sweeper.algorithm={s.algorithm}: choose one of "
                              f"{', '.join(ALGORITHMS)}")
        if s.algorithm in OPTUNA and importlib.util.find_spec("optuna") is None:
            raise SearchError(f'hydra.sweeper.algorithm={s.algorithm}: Optuna is not installed; '
                              'pip install -e ".[optuna]"')
        for key, value, least in (("max_trials", s.max_trials, 1),
                                  ("max_failures", s.max_failures, 0),
                                  ("batch_size", s.batch_size, 1),
                                  ("hyperband.max_epochs", s.hyperband.max_epochs, 1),
                                  ("hyperband.factor", s.hyperband.factor, 2),
                                  ("hyperband.iterations", s.hyperband.iterations, 1)):
            if value is not None and value < least:
                raise SearchError(f"hydra.sweeper.{key}={value}: must be an integer >= {least}")
        return s

    def hyperband_epochs(self) -> list[int]:
        """Every train.epochs a Hyperband trial can get (keras-tuner's schedule)."""
        top, factor = self.hyperband.max_epochs, self.hyperband.factor
        brackets = int(math.log(top, factor) + 1e-9) + 1
        return sorted({math.ceil(top / factor ** k) for k in range(brackets)})


def is_tuner(sweeper_cfg: DictConfig) -> bool:
    """Whether ``hydra.sweeper`` is sweeper's keras-tuner sweeper."""
    return str(sweeper_cfg.get("_target_", "")) == TUNER


def is_grid(sweeper_cfg: DictConfig) -> bool:
    """Whether ``hydra.sweeper`` sweeps Hydra's grid (``basic`` or sweeper's ``grid``)."""
    return str(sweeper_cfg.get("_target_", "")) in GRIDS
