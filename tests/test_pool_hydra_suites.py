"""Hydra's own launcher test suites, run against ``hydra/launcher=pool``."""

from __future__ import annotations

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite

from hydra_plugins.sweeper_plugins.pool_launcher import PoolLauncher


def test_discovery() -> None:
    assert PoolLauncher.__name__ in [x.__name__ for x in Plugins.instance().discover(Launcher)]


@pytest.mark.parametrize("launcher_name, overrides",
                         [("pool", ["hydra.launcher.workers=1", "hydra.launcher.live=false"])])
class TestPoolLauncher(LauncherTestSuite):
    """Hydra's launcher contract: job dirs, overrides, configs, return values, resolvers."""


@pytest.mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [({"defaults": [{"override hydra/launcher": "pool"},
                    {"override hydra/hydra_logging": "hydra_debug"},
                    {"override hydra/job_logging": "disabled"}]},
      ["-m", "hydra.launcher.workers=2"])],
)
class TestPoolLauncherIntegration(IntegrationTestSuite):
    """Hydra's end-to-end checks of a launcher, through real application subprocesses."""
