"""The local worker pool behind ``hydra/launcher=pool``: one trial per slot, in worker processes.

Workers are spawned processes that set their slot's environment (``CUDA_VISIBLE_DEVICES``,
thread counts) before anything imports TensorFlow, then warm up (import TensorFlow, load the
dataset) while they wait for work. On CPU a worker runs trial after trial, so the import and the
data load are paid once per slot. On a GPU a worker runs one trial and exits, because TensorFlow
gives GPU memory back only when its process ends; a standby worker for the same slot warms up
while the trial trains and takes the next one at once.

The parent never imports TensorFlow. A worker that dies mid-trial (a signal, the OOM killer)
costs that trial one attempt: it is recorded as failed with the cause, retried up to
``max_retries`` times in a fresh worker, and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import cloudpickle
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, setup_globals

from sweeper.launch import kinds
from sweeper.launch.devices import Slot
from sweeper.launch.jobs import Job, Outcome, died_return, distinct, outcome, record_death
from sweeper.launch.progress import Board
from sweeper.launch.worker import worker_main

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0


class WorkerDied(RuntimeError):
    """A worker process ended while it ran a trial."""


@dataclass
class Worker:
    """A worker process bound to one slot."""

    slot: Slot
    process: Any
    conn: Connection
    ready: bool = False
    job: Job | None = None
    jobs_run: int = 0
    log_path: Path = field(default_factory=Path)


class Pool:
    """Runs Hydra jobs on slots; reusable across the batches of one sweep."""

    def __init__(self, slots: Sequence[Slot], payload: bytes, log_dir: Path, *,
                 reuse_workers: bool, max_retries: int, warmup: str | None) -> None:
        self.slots = list(slots)
        self.payload = payload
        self.log_dir = log_dir
        self.reuse = reuse_workers
        self.max_retries = max_retries
        self.warmup = warmup
        self.workers: list[Worker] = []
        self._ctx = mp.get_context("spawn")
        self._spawned = 0

    # -- process management -------------------------------------------------------------------

    def _spawn(self, slot: Slot) -> Worker:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"worker-{self._spawned:03d}-{slot.name.replace(':', '')}.log"
        self._spawned += 1
        parent_conn, child_conn = self._ctx.Pipe()
        env = {**slot.env, "SWEEPER_SLOT": slot.name}
        process = self._ctx.Process(
            target=worker_main, name=f"sweeper-{slot.name}", daemon=True,
            args=(child_conn, env, self.payload, str(log_path), self.warmup, self.reuse,
                  os.getpid()))
        process.start()
        child_conn.close()
        worker = Worker(slot, process, parent_conn, log_path=log_path)
        self.workers.append(worker)
        return worker

    def _retire(self, worker: Worker) -> None:
        with contextlib.suppress(OSError):
            worker.conn.close()
        worker.process.join(timeout=STOP_GRACE_S)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(timeout=STOP_GRACE_S)
        self.workers.remove(worker)

    def close(self) -> None:
        """Stop every worker; kill the ones that do not stop in time. Leaves no process behind."""
        for worker in self.workers:
            with contextlib.suppress(OSError, BrokenPipeError):
                worker.conn.send(("stop",))
        deadline = time.time() + STOP_GRACE_S
        for worker in list(self.workers):
            if worker.job is not None:  # interrupted mid-trial: end it now
                worker.process.terminate()
            worker.process.join(timeout=max(0.0, deadline - time.time()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=STOP_GRACE_S)
            with contextlib.suppress(OSError):
                worker.conn.close()
        self.workers.clear()

    # -- scheduling ---------------------------------------------------------------------------

    def run(self, jobs: list[Job], board: Board) -> dict[int, JobReturn]:
        """Run ``jobs`` to completion; returns each job's JobReturn by index."""
        pending = deque(jobs)
        results: dict[int, JobReturn] = {}
        while len(results) < len(jobs):
            self._staff(pending)
            busy = {w.slot for w in self.workers if w.job is not None}
            for worker in self.workers:
                if worker.ready and worker.job is None and pending and worker.slot not in busy:
                    self._assign(worker, pending.popleft(), board)  # a standby waits its turn
                    busy.add(worker.slot)
            handles = [w.conn for w in self.workers] + [w.process.sentinel for w in self.workers]
            ready = wait(handles, timeout=0.5)
            for worker in list(self.workers):
                if worker.conn in ready:
                    self._receive(worker, results, board)
                if worker in self.workers and worker.process.sentinel in ready:
                    self._dead(worker, pending, results, board)
            board.refresh()
        return results

    def _staff(self, pending: deque[Job]) -> None:
        """Keep each slot manned: a worker for its next trial, and on GPU a warm standby."""
        idle = sum(1 for w in self.workers if w.job is None)
        for slot in self.slots:
            if idle >= len(pending):  # enough workers up or warming for what is left
                return
            mine = [w for w in self.workers if w.slot == slot]
            waiting = [w for w in mine if w.job is None]
            busy = len(mine) - len(waiting)
            if not waiting and (busy == 0 or not self.reuse and busy == 1):
                self._spawn(slot)
                idle += 1

    def _assign(self, worker: Worker, job: Job, board: Board) -> None:
        job.attempts += 1
        job.started = time.time()
        worker.job = job
        worker.conn.send(("job", job.idx, job.overrides))
        board.started(job.idx, worker.slot.name, attempt=job.attempts)

    def _receive(self, worker: Worker, results: dict[int, JobReturn], board: Board) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            return  # the sentinel reports the death
        kind = message[0]
        if kind == "ready":
            worker.ready = True
        elif kind == "started" and worker.job is not None:
            worker.job.output_dir = message[2]
            board.output_dir(message[1], message[2])
        elif kind == "done" and worker.job is not None:
            ret: JobReturn = cloudpickle.loads(message[2])
            results[worker.job.idx] = ret
            board.finished(worker.job.idx, outcome(ret))
            worker.job = None
            worker.jobs_run += 1
            if not self.reuse:
                self._retire(worker)  # it exits by itself, giving its GPU memory back

    def _dead(self, worker: Worker, pending: deque[Job], results: dict[int, JobReturn],
              board: Board) -> None:
        worker.process.join(timeout=STOP_GRACE_S)  # reap it, so its exit code is known
        code = worker.process.exitcode
        cause = f"worker died: signal {-code}" if code is not None and code < 0 else \
            f"worker died: exit status {code}"
        job = worker.job
        self._retire(worker)
        if job is None:
            if not worker.ready:
                log.error("%s worker failed to start (%s); see %s", worker.slot.name, cause,
                          worker.log_path)
                if worker.jobs_run == 0 and not any(w.ready for w in self.workers):
                    raise WorkerDied(f"{cause} while starting; see {worker.log_path}")
            return
        will_retry = job.attempts <= self.max_retries
        record_death(job, cause, will_retry)
        log.warning("trial #%d on %s: %s (attempt %d of %d)", job.idx, worker.slot.name, cause,
                    job.attempts, self.max_retries + 1)
        if will_retry:
            board.retrying(job.idx, cause)
            pending.appendleft(job)
        else:
            results[job.idx] = died_return(job, cause)
            board.finished(job.idx, Outcome("failed", None, cause))


# -- the launcher's entry point ---------------------------------------------------------------


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]],
           initial_job_idx: int) -> list[JobReturn]:
    """Run one batch of Hydra jobs for ``PoolLauncher``; results in the batch's order."""
    from hydra.core.utils import configure_log

    setup_globals()
    config = launcher.config
    assert config is not None and launcher.hydra_context is not None
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    s = launcher.settings
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if launcher.pool is None:
        slots = kinds.pool_slots(s)
        extra = {str(k): str(v) for k, v in (s.get("env") or {}).items()}
        slots = [replace(slot, env={**slot.env, **extra}) for slot in slots]
        reuse = s.get("reuse_workers", "auto")
        payload = cloudpickle.dumps((launcher.hydra_context, config, launcher.task_function,
                                     Singleton.get_state()))
        launcher.pool = Pool(slots, payload, Path(str(s.get("log_dir") or sweep_dir / "workers")),
                             reuse_workers=not slots[0].gpus if reuse == "auto" else bool(reuse),
                             max_retries=int(s.get("max_retries", 1)),
                             warmup=s.get("warmup") or getattr(launcher.task_function, "warm_up",
                                                               None))
    pool: Pool = launcher.pool
    log.info("pool: %d trial(s) on %d slot(s): %s", len(job_overrides), len(pool.slots),
             ", ".join(slot.name for slot in pool.slots))
    runs, index = distinct(job_overrides)
    if len(runs) < len(job_overrides):
        log.info("pool: %d configuration(s) given more than once run once",
                 len(job_overrides) - len(runs))
    jobs = [Job(initial_job_idx + i, o) for i, o in enumerate(runs)]
    board = Board([(j.idx, j.overrides) for j in jobs], len(pool.slots), s.get("live"))
    board.log_plan()
    try:
        with board:
            results = pool.run(jobs, board)
    except BaseException:
        pool.close()  # Ctrl-C or a broken pool: no worker outlives the sweep
        launcher.pool = None
        raise
    return [results[jobs[i].idx] for i in index]
