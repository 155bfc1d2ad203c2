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
