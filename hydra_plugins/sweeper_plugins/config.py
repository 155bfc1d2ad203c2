"""Configuration of sweeper's Hydra plugins, stored in Hydra's ConfigStore at discovery."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class PoolLauncherConf:
    _target_: str = "hydra_plugins.sweeper_plugins.pool_launcher.PoolLauncher"
    # GPUs to use: auto (every visible GPU, else CPU workers), cpu, or a list of ids like [0,1]
    devices: Any = "auto"
    # trials packed on each GPU at once (small models); 1 keeps trials from sharing a GPU
    trials_per_device: int = 1
    # GPUs per trial; more than 1 trains under tf.distribute.MirroredStrategy
    devices_per_trial: int = 1
    # GPU memory each trial may take, in MiB (TensorFlow's logical device memory limit, set in
    # the worker): a number, auto (the GPU's free memory / trials_per_device), or null (no limit)
    memory_per_trial: Any = None
    # CPU worker processes when there is no GPU (null: one per core); cores are split among them
    workers: Any = None
    # fresh attempts for a trial whose worker died (signal, out-of-memory kill)
    max_retries: int = 1
    # run several trials per worker process: auto = on CPU yes, on GPU no (frees GPU memory)
    reuse_workers: Any = "auto"
    # function a worker calls with the sweep's config while it waits for work (imports, data);
    # null: the task function's own `warm_up` attribute, if it has one
    warmup: Any = None
    # live table of trials: null = when stdout is a terminal, true/false to force it
    live: Any = None
    # keep the worker processes' own output (TensorFlow's logs) under the sweep folder
    log_dir: str = "${hydra.sweep.dir}/workers"
    env: dict[str, str] = field(default_factory=dict)  # extra environment for every worker


ConfigStore.instance().store(group="hydra/launcher", name="pool", node=PoolLauncherConf,
                             provider="sweeper")


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.sweeper_plugins.grid_sweeper.GridSweeper"
    # trials handed to the launcher at once (null: the whole grid; the pool runs it slot by slot)
    max_batch_size: int | None = None
    # the search space in Hydra's sweep syntax (a preset's; the command line adds and overrides)
    params: dict[str, str] | None = None


ConfigStore.instance().store(group="hydra/sweeper", name="grid", node=GridSweeperConf,
                             provider="sweeper")


@dataclass
class HyperbandConf:
    # epochs of the longest-trained trials (keras-tuner's max_epochs)
    max_epochs: int = 9
    # each round keeps 1/factor of the trials and trains them factor times longer
    factor: int = 3
    # passes over the whole Hyperband schedule
    iterations: int = 1


@dataclass
class BayesianConf:
    # random trials before the Gaussian process takes over (null: 3 per dimension)
    num_initial_points: int | None = None
    # noise assumed in the objective
    alpha: float = 1e-4
    # exploration: higher explores more
    beta: float = 2.6


@dataclass
class TunerSweeperConf:
    _target_: str = "hydra_plugins.sweeper_plugins.tuner_sweeper.TunerSweeper"
    # keras-tuner's oracle: random, bayesian, hyperband or grid; or Optuna's sampler (the optuna
    # extra): tpe, cmaes, gp, nsga2 or qmc
    algorithm: str = "random"
    # trials to run (null: 10 for random and bayesian; the whole grid; the Hyperband schedule)
    max_trials: int | None = None
    # seed of the oracle's sampling (0: a random seed)
    seed: int = 1
    # stop the search once more trials than this have failed
    max_failures: int = 3
    # trials running at once (null: the launcher's slots)
    batch_size: int | None = None
    # a slot freed by a trial that ended is given the next asked trial at once (the pool and Ray
    # launchers); false: ask, launch and wait for a whole batch, as every launcher can
    asynchronous: bool = True
    hyperband: HyperbandConf = field(default_factory=HyperbandConf)
    bayesian: BayesianConf = field(default_factory=BayesianConf)
    # options of Optuna's sampler, passed through (e.g. n_startup_trials for tpe)
    sampler: dict[str, Any] = field(default_factory=dict)
    # an earlier sweep folder whose finished trials that fit this space the search is told
    # before it asks (experiments/<earlier>)
    warm_start: str | None = None
    # the search space in Hydra's sweep syntax (a preset's; the command line adds and overrides)
    params: dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="tuner", node=TunerSweeperConf,
                             provider="sweeper")
