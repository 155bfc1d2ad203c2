"""Where a trial runs: its device, the versions it ran with, and what a worker pays before its
first trial (imports, the dataset)."""

from __future__ import annotations

import logging
import os
import socket
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from omegaconf import DictConfig

from sweeper.trial import data, gpu

log = logging.getLogger(__name__)


def device(gpus: int | None = None) -> str:
    """Where this trial trains: ``GPU:<physical ids>`` or ``CPU``."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpus == 0 or visible in ("-1", ""):
        return "CPU"
    if visible:
        return "GPU:" + visible
    return "CPU" if gpus is None else "GPU:" + ",".join(map(str, range(gpus)))


def node_name() -> str:
    """The machine a trial runs on: the Ray node id inside a Ray worker, else the host name."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return str(ray.get_runtime_context().get_node_id())
    return socket.gethostname()


def where() -> dict[str, Any]:
    """The process a trial runs in: its pid, host, node and slot."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "node": node_name(),
            "slot": os.environ.get("SWEEPER_SLOT", "local")}


def versions() -> dict[str, str]:
    out = {}
    for name, dist in (("tensorflow", "tensorflow"), ("keras", "keras"),
                       ("sweeper", "keras-sweeper")):
        try:
            out[name] = version(dist)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def warm_up(cfg: DictConfig) -> None:
    """Pay a worker's start-up costs before its first trial: imports and the dataset."""
    gpu.start_tensorflow()
    import keras  # noqa: F401
    import matplotlib.figure  # noqa: F401
    import sklearn.metrics  # noqa: F401

    try:
        data.load(cfg.dataset, cfg.train.validation_split)
    except Exception as e:  # the trial that needs the data reports it properly
        log.warning("warm-up could not load the dataset: %s", e)
