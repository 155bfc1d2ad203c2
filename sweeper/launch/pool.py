"""The local worker pool behind ``hydra/launcher=pool``: one trial per slot, in worker processes.

Workers are spawned processes that set their slot's environment (``CUDA_VISIBLE_DEVICES``,
thread counts) before anything imports TensorFlow, then warm up (import TensorFlow, load the
dataset) while they wait for work. On CPU a worker runs trial after trial, so the import and the
data load are paid once per slot. On a GPU a worker runs one trial and exits, because TensorFlow
gives GPU memory back only when its process ends; a standby worker for the same slot warms up
while the trial trains and takes the next one at once.

The parent never imports TensorFlow. A worker that dies mid-trial (a signal, the OOM killer)
costs that trial one attempt: it is recorded as failed with the cause, retried up to
``max_retries`` times in a fresh worker, and the sweep goes on. A trial that runs out of memory
on a GPU shared with other trials is retried once with the GPU to itself: no new trial starts on
that GPU until the ones running there are done, then a worker without a memory share runs it.
While GPU trials run, the parent samples their GPUs through NVML (see :mod:`usage`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import cloudpickle
from hydra.core.utils import JobReturn

from sweeper.launch import usage
from sweeper.launch.devices import Slot, alone
from sweeper.launch.jobs import (
    Job,
    Outcome,
    died_return,
    out_of_memory,
    outcome,
    owe_retry,
    record_death,
)
from sweeper.launch.progress import Board
from sweeper.launch.worker import STOP_GRACE_S, Worker, start_worker

log = logging.getLogger(__name__)


class WorkerDied(RuntimeError):
    """A worker process ended while it ran a trial."""


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
        self._spawned = 0
        self.alone: deque[Job] = deque()  # out of memory on a shared GPU: owed a GPU to itself
        self.held: tuple[str, ...] | None = None  # the GPUs kept free for them meanwhile
        self.sampler = usage.Sampler.start() if any(s.gpus for s in self.slots) else None

    # -- process management -------------------------------------------------------------------

    def _spawn(self, slot: Slot) -> Worker:
        """A new worker for ``slot``, given the sweep to run."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        name = slot.name.replace(":", "").replace(" ", "-")
        log_path = str(self.log_dir / f"worker-{self._spawned:03d}-{name}.log")
        self._spawned += 1
        worker = start_worker(slot, log_path)
        worker.conn.send(("setup", self.payload, self.warmup, self.reuse))
        self.workers.append(worker)
        return worker

    def call(self, dotted: str, *args: Any) -> Worker:
        """Start the function ``dotted`` in an idle warm worker (:meth:`answer` waits for it);
        :class:`WorkerDied` when there is none."""
        worker = next((w for w in self.workers if w.ready and w.job is None), None)
        if worker is None:
            raise WorkerDied("no warm worker")
        worker.conn.send(("call", dotted, args))
        worker.job = Job(-1, [dotted])  # busy until it answers
        return worker

    def answer(self, worker: Worker) -> Any:
        """The value of the function ``worker`` runs (its exception is raised here);
        :class:`WorkerDied` when it dies first."""
        try:
            while True:
                ready = wait([worker.conn, worker.process.sentinel])
                if worker.conn in ready:
                    try:
                        kind, *rest = worker.conn.recv()
                    except (EOFError, OSError):  # the worker is gone: its sentinel says so
                        kind, rest = None, []
                    if kind == "result":
                        value = cloudpickle.loads(rest[0])
                        if isinstance(value, BaseException):  # the function's own error,
                            raise value  # an OSError included: raised, never swallowed
                        return value
                    if kind is not None:
                        continue
                if not worker.process.is_alive():
                    self._retire(worker)
                    raise WorkerDied(f"{worker.slot.name} worker died")
        finally:
            worker.job = None

    def _retire(self, worker: Worker) -> None:
        worker.stop()
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
            worker.stop(max(0.0, deadline - time.time()))
        self.workers.clear()
        if self.sampler is not None:
            self.sampler.close()

    # -- scheduling ---------------------------------------------------------------------------

    def run(self, jobs: list[Job], board: Board,
            feed: Callable[[int, JobReturn], list[Job]] | None = None) -> dict[int, JobReturn]:
        """Run ``jobs`` to completion, and the jobs ``feed`` gives as each one ends (queued at
        once: the next free slot takes them); returns each job's JobReturn by index."""
        pending = deque(jobs)
        results: dict[int, JobReturn] = {}
        expected, fed = len(jobs), 0
        while len(results) < expected or (feed is not None and fed < len(results)):
            self._staff(pending)
            self._make_room()
            busy = {w.slot for w in self.workers if w.job is not None}
            for worker in self.workers:
                if not worker.ready or worker.job is not None:
                    continue
                if worker.slot.alone and self.alone:
                    self._assign(worker, self.alone.popleft(), board)
                elif pending and worker.slot not in busy and not worker.slot.alone \
                        and worker.slot.gpus != self.held:
                    self._assign(worker, pending.popleft(), board)  # a standby waits its turn
                    busy.add(worker.slot)
            if feed is not None and fed < len(results):  # after the freed slots took work
                for idx in list(results)[fed:]:  # each new result, once, in the order it came
                    more = feed(idx, results[idx])
                    pending.extend(more)
                    expected += len(more)
                fed = len(results)
                continue  # what it added may start at once
            handles = [w.conn for w in self.workers] + [w.process.sentinel for w in self.workers]
            ready = wait(handles, timeout=0.5)
            for worker in list(self.workers):
                if worker.conn in ready:
                    self._receive(worker, results, board)
                if worker in self.workers and worker.process.sentinel in ready:
                    self._dead(worker, pending, results, board)
            if self.sampler is not None:
                for worker in self.workers:
                    if worker.job is not None:
                        board.usage(worker.job.idx, self.sampler.current(worker.job.idx))
            board.refresh()
        return results

    def _make_room(self) -> None:
        """For a trial owed a GPU of its own: hold a GPU (no new trial starts there), and once
        its trials are done, start a worker that has the GPU to itself."""
        if not self.alone:
            if not any(w.slot.alone for w in self.workers):
                self.held = None
            return
        if self.held is None:  # the GPU with the fewest running trials frees up first
            groups = list(dict.fromkeys(s.gpus for s in self.slots))
            self.held = min(groups, key=lambda g: sum(
                1 for w in self.workers if w.job is not None and w.slot.gpus == g))
        held = [w for w in self.workers if w.slot.gpus == self.held]
        if not any(w.slot.alone or w.job is not None for w in held):
            base = next(s for s in self.slots if s.gpus == self.held)
            self._spawn(alone(base, len(self.slots)))

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
        board.started(job.idx, worker.slot.label, attempt=job.attempts)
        if self.sampler is not None and worker.slot.gpus:
            self.sampler.watch(job.idx, worker.process.pid, worker.slot.gpus)

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
            job, end = worker.job, outcome(ret)
            figures = self.sampler.stop(job.idx) if self.sampler is not None else None
            if figures and job.output_dir:  # the worker wrote its last record before "done"
                usage.add_to_record(Path(job.output_dir), worker.process.pid, figures)
            if self._owed_a_gpu(worker, job, end):
                log.warning("trial #%d on %s: %s; retrying with the GPU to itself", job.idx,
                            worker.slot.name, end.error)
                owe_retry(job)
                job.alone = True
                self.alone.append(job)
                board.retrying(job.idx, end.error)
            else:
                results[job.idx] = ret
                board.finished(job.idx, end)
            worker.job = None
            worker.jobs_run += 1
            if not self.reuse or worker.slot.alone:
                self._retire(worker)  # it exits by itself, giving its GPU memory back

    def _owed_a_gpu(self, worker: Worker, job: Job, end: Outcome) -> bool:
        """Whether a trial out of memory on a shared GPU gets a retry with the GPU to itself."""
        shared = sum(1 for s in self.slots if s.gpus and s.gpus == worker.slot.gpus) > 1
        return shared and not job.alone and end.status == "failed" and out_of_memory(end.error)

    def _dead(self, worker: Worker, pending: deque[Job], results: dict[int, JobReturn],
              board: Board) -> None:
        worker.process.join(timeout=STOP_GRACE_S)  # reap it, so its exit code is known
        code = worker.process.exitcode
        cause = f"worker died: signal {-code}" if code is not None and code < 0 else \
            f"worker died: exit status {code}"
        job = worker.job
        self._retire(worker)
        if job is not None and self.sampler is not None:
            self.sampler.stop(job.idx)  # a dead attempt's figures would mislead
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
            (self.alone if job.alone else pending).appendleft(job)
        else:
            results[job.idx] = died_return(job, cause)
            board.finished(job.idx, Outcome("failed", None, cause))
