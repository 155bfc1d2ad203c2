"""A Ray cluster's room for trials, checked before a sweep is planned on it.

Uses hydra-ray-launcher's ``start_ray`` (a private helper of its ``_launcher_util``; the version
is bounded in pyproject.toml) so the preflight connects exactly as the launcher will, and the
launcher then reuses that connection.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from sweeper.errors import DeviceError

log = logging.getLogger(__name__)


def ray_address(ray_cfg: Any) -> str | None:
    """The running cluster ``hydra.launcher.ray`` joins (as ``ray.init`` reads it), or None for
    a local cluster started by the sweep."""
    address = ray_cfg.init.get("address") or os.environ.get("RAY_ADDRESS")
    return str(address) if address else None


def ray_room(ray_cfg: Any) -> tuple[int, dict[str, float], list[dict[str, float]]]:
    """How many trials the Ray cluster of ``hydra/launcher=ray`` runs at once, what one trial
    asks for, and each live node's resources; ``ray_cfg`` is ``hydra.launcher.ray`` (``init``
    and ``remote``). A trial's resources must all be on one node, so the room is counted node by
    node. Starts or joins the cluster as the launcher does (the launcher then reuses the
    connection); a ``HOST:PORT`` nobody answers on is refused at once, where Ray would keep
    retrying."""
    address = ray_address(ray_cfg)
    if address and ":" in address and "://" not in address:
        host, port = address.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except (OSError, ValueError) as e:
            why = getattr(e, "strerror", None) or e
            raise DeviceError(f"hydra.launcher.ray.init.address={address}: no Ray cluster "
                              f"answers there ({why}); start one with `ray start --head "
                              f"--port={port}` or give its head's HOST:PORT") from e
    import ray
    from hydra_plugins.hydra_ray_launcher._launcher_util import start_ray  # private, bounded
    from omegaconf import OmegaConf

    start_ray(ray_cfg.init)
    remote: Any = OmegaConf.to_container(ray_cfg.remote, resolve=True) or {}
    asks = {"CPU": remote.get("num_cpus", 1), "GPU": remote.get("num_gpus", 0),
            **(remote.get("resources") or {})}
    need = {name: float(amount) for name, amount in asks.items() if amount}
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    room = sum(min((int(have.get(k, 0) // v) for k, v in need.items()), default=1)
               for have in nodes)
    return room, need, nodes


def check_ray_room(ray_cfg: Any) -> int:
    """The Ray cluster's room for trials; a cluster started here with no room for one trial is
    refused (it cannot grow), a running one only warned about (its autoscaler may add nodes)."""
    room, need, nodes = ray_room(ray_cfg)
    if room:
        return room
    most = {k: max((have.get(k, 0.0) for have in nodes), default=0.0) for k in need}
    short = [k for k in need if most[k] < need[k]]
    address = ray_address(ray_cfg)
    where = f"the Ray cluster at {address}" if address else "the local Ray cluster started here"
    message = (f"no node of {where} has room for one trial: a trial asks for "
               + ", ".join(f"{need[k]:g} {k}" for k in need) + "; its nodes have at most "
               + ", ".join(f"{most[k]:g} {k}" for k in short))
    if "GPU" in short and not most["GPU"]:
        message += " (no GPU: set hydra.launcher.ray.remote.num_gpus=0)"
    if not address:
        raise DeviceError(message)
    log.warning("%s; the trials wait until such a node joins", message)
    return room
