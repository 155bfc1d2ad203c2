"""Hydra's own plugin test suites, run against sweeper's plugins: the ``pool`` and ``ray_cluster``
launchers, the ``grid`` sweeper (Hydra's batched-sweeper contract, and the launcher contract
through it) and the ``tuner`` sweeper (as Hydra's Optuna and Nevergrad sweepers are tested)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.paths import BENCHMARKS, CONF
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.test_utils.launcher_common_tests import (
    BatchedSweeperTestSuite,
    IntegrationTestSuite,
    LauncherTestSuite,
)
from hydra.test_utils.test_utils import TSweepRunner
from omegaconf import DictConfig

from hydra_plugins.sweeper_plugins import ray_cluster_launcher
from hydra_plugins.sweeper_plugins.grid_sweeper import GridSweeper
from hydra_plugins.sweeper_plugins.pool_launcher import PoolLauncher
from hydra_plugins.sweeper_plugins.tuner_sweeper import TunerSweeper
from sweeper.config.schema import CONFIG_NAME, CONFIG_PATH

POOL = ["hydra.launcher.workers=1", "hydra.launcher.live=false"]

if ray_cluster_launcher.HAVE_RAY:
    # Hydra's Ray launcher's options in the ConfigStore now, as at discovery: each test of the
    # suites restores the store as it was when the tests started.
    import hydra_plugins.hydra_ray_launcher._config  # noqa: F401


@pytest.mark.parametrize("kind, plugin", [(Launcher, PoolLauncher), (Sweeper, GridSweeper),
                                          (Sweeper, TunerSweeper)])
def test_discovery(kind: type, plugin: type) -> None:
    assert plugin.__name__ in [x.__name__ for x in Plugins.instance().discover(kind)]


def test_ray_cluster_discovery() -> None:
    if not ray_cluster_launcher.HAVE_RAY:
        pytest.skip("hydra-ray-launcher is not installed (pip install -e '.[ray]')")
    assert "RayClusterLauncher" in [x.__name__ for x in Plugins.instance().discover(Launcher)]


@pytest.mark.parametrize("launcher_name, overrides", [("pool", POOL)])
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


@pytest.mark.parametrize("launcher_name, overrides",
                         [("basic", ["hydra/sweeper=grid", "hydra.sweeper.max_batch_size=2"]),
                          ("pool", ["hydra/sweeper=grid", "hydra.sweeper.max_batch_size=2",
                                    *POOL])])
class TestGridSweeper(BatchedSweeperTestSuite):
    """Hydra's batched-sweeper contract: the grid's order, its batches, one folder per job."""


@pytest.mark.parametrize("launcher_name, overrides", [("basic", ["hydra/sweeper=grid"])])
class TestGridSweeperLaunches(LauncherTestSuite):
    """Hydra's launcher contract again, each sweep going through the grid sweeper."""


def objective(cfg: DictConfig) -> float:
    """A trial without training: its objective a known function of its hyperparameters."""
    return float(cfg.model.units) / 100 - abs(float(cfg.optimizer.learning_rate) - 0.01)


@pytest.mark.parametrize("algorithm", ["random", "bayesian", "grid"])
def test_tuner_sweeper_launches_every_asked_trial(hydra_sweep_runner: TSweepRunner,
                                                  algorithm: str, tmp_path: Path) -> None:
    """As Hydra's own sweeper plugins are tested: a sweep through the plugin with Hydra's basic
    launcher, each job composed with the values the oracle asked for."""
    sweep = hydra_sweep_runner(
        calling_file=None, calling_module="sweeper.app", task_function=objective,
        config_path=CONFIG_PATH, config_name=CONFIG_NAME, temp_dir=str(tmp_path),
        overrides=["hydra/sweeper=tuner", "hydra/launcher=basic",
                   f"hydra.sweeper.algorithm={algorithm}", "hydra.sweeper.max_trials=4",
                   "model.units=choice(8,16,32)", "optimizer.learning_rate=choice(0.001,0.01)",
                   f"paths.experiments={tmp_path}/experiments", f"paths.logs={tmp_path}/logs"])
    with sweep:
        assert sweep.returns is not None
        rets = [r for batch in sweep.returns for r in batch]
        assert len(rets) == 4
        seen = {(r.cfg.model.units, r.cfg.optimizer.learning_rate) for r in rets}
        assert len(seen) == 4  # no configuration asked twice
        for r in rets:
            assert r.return_value == objective(r.cfg)
            assert f"model.units={r.cfg.model.units}" in r.overrides


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A one-node Ray cluster on 127.0.0.1 for the ``ray_cluster`` suites, stopped after them."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    sys.path.insert(0, str(BENCHMARKS))
    from local_ray import LocalRay

    with LocalRay(nodes=1, cpus=2) as address:
        yield address
        # The launcher suites ran in this process, which joined the cluster as a Ray driver: it
        # leaves first, or Ray ends the process when the cluster goes away.
        import ray

        ray.shutdown()


def ray_flags(address: str) -> list[str]:
    """``hydra/launcher=ray_cluster`` (an option of sweeper's conf/, found through Hydra's search
    path) on the test cluster, with no GPU asked of it."""
    return [f"hydra.searchpath=[file://{CONF}]", f"hydra.launcher.ray.init.address={address}",
            "hydra.launcher.ray.remote.num_gpus=0"]


@pytest.fixture
def overrides(ray_address: str) -> list[str]:
    return ray_flags(ray_address)


@pytest.mark.parametrize("launcher_name", ["ray_cluster"])
class TestRayClusterLauncher(LauncherTestSuite):
    """Hydra's launcher contract, on a real Ray cluster."""


@pytest.fixture
def task_launcher_cfg() -> dict:
    return {"defaults": [{"override hydra/launcher": "ray_cluster"},
                         {"override hydra/hydra_logging": "hydra_debug"},
                         {"override hydra/job_logging": "disabled"}]}


@pytest.fixture
def extra_flags(ray_address: str) -> list[str]:
    return ["-m", *ray_flags(ray_address)]


class TestRayClusterLauncherIntegration(IntegrationTestSuite):
    """Hydra's end-to-end checks of a launcher, applications joining a real Ray cluster."""
