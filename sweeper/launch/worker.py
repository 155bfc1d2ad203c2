"""A worker process of the pool: it sets its slot's environment before anything imports
TensorFlow, warms up (imports, the dataset), then runs the trials it is sent, one at a time."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import cloudpickle
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, run_job, setup_globals
from omegaconf import DictConfig, open_dict


def worker_main(conn: Connection, env: dict[str, str], payload: bytes, log_path: str,
                warmup: str | None, reuse: bool, parent_pid: int) -> None:
    """Entry point of a worker process: set up its slot, warm up, then run jobs it is sent."""
    os.environ.update(env)  # before anything can import TensorFlow
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    _redirect_output(log_path)
    _exit_with_parent(parent_pid)
    hydra_context, config, task_function, singleton_state = cloudpickle.loads(payload)
    setup_globals()
    Singleton.set_state(singleton_state)
    if warmup:
        _call(warmup, config)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "stop":
            return
        _, idx, overrides = message
        conn.send(("done", idx, cloudpickle.dumps(
            _run_one(conn, idx, overrides, hydra_context, config, task_function))))
        if not reuse:
            return


def _run_one(conn: Connection, idx: int, overrides: list[str], hydra_context: Any,
             config: DictConfig, task_function: Callable[[DictConfig], Any]) -> JobReturn:
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    output_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
    conn.send(("started", idx, str(output_dir)))
    return run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def _redirect_output(log_path: str) -> None:
    """Send the worker's stdout/stderr (TensorFlow's C++ logs included) to its log file."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker if the sweep process goes away, even by ``kill -9``: no orphans."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _call(dotted: str, config: DictConfig) -> None:
    module, _, name = dotted.rpartition(".")
    getattr(importlib.import_module(module), name)(config)
