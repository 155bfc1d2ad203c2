"""``hydra/sweeper=tuner``: keras-tuner's random, Bayesian, Hyperband and grid search.

The search itself is in :mod:`sweeper.search.loop`, imported only when a sweep starts, so Hydra's
plugin discovery stays light and never imports keras-tuner or TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.sweeper_plugins.config import TunerSweeperConf  # noqa: F401  (registers it)


class TunerSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None
        self.search: Any = None  # sweeper.search.loop.Search of the running sweep

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from sweeper.search.loop import Search

        assert self.config is not None and self.hydra_context is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        groups = self.hydra_context.config_loader.list_groups("")
        self.search = Search(self.config, arguments, groups, self.launcher,
                                    validate=self.validate_batch_is_legal)
        return self.search.run()
