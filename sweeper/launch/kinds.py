"""The Hydra launchers sweeper knows, by ``_target_``: what each can run at once, whether its
trials start away from this directory, and what must be true before a sweep is planned on it.

The one place a launcher is recognised; everything else asks :func:`kind_of`.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from omegaconf import DictConfig


class Kind(str, Enum):
    POOL = "pool"  # sweeper's local worker pool
    RAY = "ray"  # Hydra's Ray launcher and sweeper's ray_cluster preset of it
    SLURM = "slurm"  # Hydra's submitit launcher on SLURM
    OTHER = "other"  # Hydra's basic launcher, joblib, or anything else


TARGETS: dict[str, Kind] = {
    "hydra_plugins.sweeper_plugins.pool_launcher.PoolLauncher": Kind.POOL,
    "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher": Kind.RAY,
    "hydra_plugins.sweeper_plugins.ray_cluster_launcher.RayClusterLauncher": Kind.RAY,
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher": Kind.SLURM,
}
# The same by a command line's ``hydra/launcher=NAME``, read before Hydra composes (none: the pool)
OPTIONS = {None: Kind.POOL, "pool": Kind.POOL, "ray": Kind.RAY, "ray_cluster": Kind.RAY,
           "submitit_slurm": Kind.SLURM}
# Launchers whose trials start in another working directory (a Ray worker's, a SLURM job's).
REMOTE = (Kind.RAY, Kind.SLURM)


def kind_of(launcher_cfg: Any) -> Kind:
    """The kind of the launcher ``hydra.launcher`` configures."""
    return TARGETS.get(str(launcher_cfg.get("_target_", "")), Kind.OTHER)


def kind_of_option(option: str | None) -> Kind:
    """The kind of the launcher a command line's ``hydra/launcher=NAME`` option names."""
    return OPTIONS.get(option, Kind.OTHER)


def is_remote(launcher_cfg: Any) -> bool:
    return kind_of(launcher_cfg) in REMOTE


def check(launcher_cfg: DictConfig) -> None:
    """The pool launcher's devices must exist before a sweep is planned on them; a Ray cluster
    must answer, and have room for a trial."""
    kind = kind_of(launcher_cfg)
    if kind is Kind.RAY:
        from sweeper.launch.ray_cluster import check_ray_room

        check_ray_room(launcher_cfg.ray)
    elif kind is Kind.POOL:
        pool_slots(launcher_cfg)


def pool_slots(launcher_cfg: Any) -> list[Any]:
    """The slots ``hydra/launcher=pool`` runs trials on (see :func:`devices.plan_slots`)."""
    from sweeper.launch.devices import plan_slots

    return plan_slots(launcher_cfg.get("devices", "auto"),
                      launcher_cfg.get("trials_per_device", 1),
                      launcher_cfg.get("devices_per_trial", 1), launcher_cfg.get("workers"),
                      launcher_cfg.get("memory_per_trial"))


def capacity(launcher_cfg: Any) -> int:
    """How many trials the launcher runs at once: the pool's slots, what a Ray cluster has room
    for, else the launcher's own parallelism setting (n_jobs, array_parallelism), else 1."""
    kind = kind_of(launcher_cfg)
    if kind is Kind.RAY:
        from sweeper.launch.ray_cluster import ray_room

        return max(1, ray_room(launcher_cfg.ray)[0])
    if kind is Kind.POOL:
        return len(pool_slots(launcher_cfg))
    for key in ("n_jobs", "array_parallelism"):
        value = launcher_cfg.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return 1
