"""A worker process of the pool.

It sets its slot's environment before anything imports TensorFlow, receives the sweep (Hydra's
context, the configuration, the task function), warms up (imports, the dataset), and runs what
it is sent, one at a time: trials, or a function (the end of the sweep promotes its best trial
in a warm worker rather than in a new process). :func:`start_worker` starts one.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import cloudpickle
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, run_job, setup_globals
from omegaconf import DictConfig

from sweeper.launch.devices import Slot
from sweeper.launch.jobs import Job, job_config

STOP_GRACE_S = 10.0


@dataclass
class Worker:
    """A worker process as the sweep process holds it: its process, pipe, log and slot, and
    what it is doing."""

    process: Any
    conn: Connection
    log_path: str
    slot: Slot
    ready: bool = False
    job: Job | None = None
    jobs_run: int = 0

    def stop(self, wait_s: float = STOP_GRACE_S) -> None:
        """Close its pipe (an idle worker then ends), wait up to ``wait_s``, then kill it."""
        with contextlib.suppress(OSError):
            self.conn.close()
        self.process.join(timeout=wait_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=STOP_GRACE_S)


def start_worker(slot: Slot, log_path: str) -> Worker:
    """Spawn a worker for ``slot``, logging to ``log_path``; it waits for its sweep."""
    context = mp.get_context("spawn")
    parent_conn, child_conn = context.Pipe()
    process = context.Process(target=worker_main, name=f"sweeper-{slot.name}", daemon=True,
                              args=(child_conn, {**slot.env, "SWEEPER_SLOT": slot.name}, log_path,
                                    os.getpid()))
    process.start()
    child_conn.close()
    return Worker(process, parent_conn, log_path, slot)


def worker_main(conn: Connection, env: dict[str, str], log_path: str, parent_pid: int) -> None:
    """Entry point of a worker process: its slot's environment, then the sweep it is given (a
    ``setup`` message), its warm-up, and the jobs it is sent."""
    os.environ.update(env)  # before anything can import TensorFlow
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    redirect_output(log_path)
    _exit_with_parent(parent_pid)
    try:
        message = conn.recv()
    except EOFError:
        return
    if message[0] != "setup":
        return
    _, payload, warmup, reuse = message
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
        if message[0] == "call":  # a function of the sweep's own, run where TensorFlow is warm
            _, dotted, args = message
            conn.send(("result", cloudpickle.dumps(_answer(dotted, args))))
            continue
        _, idx, overrides = message
        conn.send(("done", idx, cloudpickle.dumps(
            _run_one(conn, idx, overrides, hydra_context, config, task_function))))
        if not reuse:
            return


def _run_one(conn: Connection, idx: int, overrides: list[str], hydra_context: Any,
             config: DictConfig, task_function: Callable[[DictConfig], Any]) -> JobReturn:
    sweep_config, output_dir = job_config(hydra_context, config, overrides, idx)
    conn.send(("started", idx, output_dir))
    return run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def _answer(dotted: str, args: tuple[Any, ...]) -> Any:
    """The function's value, or the exception it raised (the caller decides what it means)."""
    try:
        return _call(dotted, *args)
    except Exception as e:  # sent back whole: the sweep process reports it
        return e


def redirect_output(log_path: str) -> None:
    """Send this process's stdout/stderr (TensorFlow's C++ logs included) to ``log_path``."""
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


def _call(dotted: str, *args: Any) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)(*args)
