"""``hydra/sweeper=grid`` (the default): Hydra's basic grid sweeper, for sweeps of any size.

It sweeps exactly as Hydra's ``basic`` sweeper (the same syntax, the same order, the same
``params`` and ``max_batch_size``), and changes two things that cost time per trial in the sweep
process: a batch is not composed again trial by trial before it is launched (the preflight has
checked every swept value and every combination of group options), and trials that finished in
an earlier run of the sweep are not launched at all.
"""

from __future__ import annotations

from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from hydra_plugins.sweeper_plugins.config import GridSweeperConf  # noqa: F401  (registers it)


class GridSweeper(BasicSweeper):  # a private Hydra class, bounded in pyproject.toml
    def validate_batch_is_legal(self, batch: Any) -> None:
        """The preflight has composed and checked the grid before anything ran."""

    def sweep(self, arguments: list[str]) -> Any:
        from sweeper.search import grid

        return grid.sweep(self, arguments)
