"""How busy a trial's GPUs were: sampled by the sweep process through NVML while the trial runs.

The sweep process never opens a CUDA context; NVML reads the driver's counters, as nvidia-smi
does. Each sample takes the GPU's utilisation (the share of time a kernel ran: with trials packed
on one GPU, they share the figure) and the memory the trial's worker process holds on it. Where
NVML cannot see the worker's process (inside a container, NVML names the host's process ids),
the GPU's whole used memory stands in, and the record says so. Without NVML nothing is sampled
and the record's ``gpu_usage`` stays empty, as it does on CPU.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.launch import nvml
from sweeper.record import TrialRecord

log = logging.getLogger(__name__)

INTERVAL_S = 1.0


@dataclass
class Watch:
    """The samples of one running trial."""

    pid: int
    handles: list[Any]
    utilisation: list[float] = field(default_factory=list)
    trial_mib: int | None = None  # peak memory of the worker's own process
    gpu_mib: int = 0  # peak memory used on its GPUs by anyone

    def summary(self) -> dict[str, Any] | None:
        if not self.utilisation:
            return None
        mine = self.trial_mib is not None
        return {"utilisation_mean": round(sum(self.utilisation) / len(self.utilisation), 1),
                "memory_peak_mib": self.trial_mib if mine else self.gpu_mib,
                "memory_of": "trial" if mine else "gpu", "samples": len(self.utilisation)}


class Sampler:
    """Samples the GPUs of the running trials once a second, on a thread of the sweep process."""

    def __init__(self, library: Any, interval_s: float = INTERVAL_S) -> None:
        self.nvml = library
        self.interval_s = interval_s
        self.watched: dict[int, Watch] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-usage", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls) -> Sampler | None:
        """A running sampler; None when NVML is not there (no nvidia-ml-py, no driver)."""
        library = nvml.library()
        if library is None:
            log.info("GPU utilisation is not recorded: NVML is not available "
                     "(pip install nvidia-ml-py)")
            return None
        return cls(library)

    def watch(self, key: int, pid: int, gpus: Sequence[str]) -> None:
        """Sample ``gpus`` for the trial ``key`` that runs in process ``pid``, from now on."""
        try:
            handles = [nvml.handle(self.nvml, g) for g in gpus]
        except (self.nvml.NVMLError, ValueError) as e:
            log.debug("NVML cannot watch GPU %s: %s", ",".join(gpus), e)
            return
        with self._lock:
            self.watched[key] = Watch(pid, handles)

    def current(self, key: int) -> dict[str, Any] | None:
        """The figures so far of a running trial."""
        with self._lock:
            watch = self.watched.get(key)
            return watch.summary() if watch else None

    def stop(self, key: int) -> dict[str, Any] | None:
        """Stop sampling a trial; its figures (None: not one sample)."""
        with self._lock:
            watch = self.watched.pop(key, None)
            if watch is not None and not watch.utilisation:  # shorter than one interval
                self._sample(watch)
        return watch.summary() if watch else None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * self.interval_s)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                for watch in self.watched.values():
                    self._sample(watch)

    def _sample(self, watch: Watch) -> None:
        n = self.nvml
        try:
            utilisation = [n.nvmlDeviceGetUtilizationRates(h).gpu for h in watch.handles]
            used = sum(n.nvmlDeviceGetMemoryInfo(h).used for h in watch.handles)
            mine = [p.usedGpuMemory for h in watch.handles
                    for p in n.nvmlDeviceGetComputeRunningProcesses(h) if p.pid == watch.pid]
        except n.NVMLError as e:  # a GPU gone, or a query this GPU does not support
            log.debug("NVML sample failed: %s", e)
            return
        watch.utilisation.append(sum(utilisation) / len(utilisation))
        watch.gpu_mib = max(watch.gpu_mib, int(used // nvml.MIB))
        if mine and all(m is not None for m in mine):
            watch.trial_mib = max(watch.trial_mib or 0, int(sum(mine) // nvml.MIB))


def add_to_record(trial_dir: Path, pid: int, usage: dict[str, Any]) -> None:
    """Write a finished trial's GPU figures into its record. Only the record this process wrote
    gets them: a trial skipped as done earlier keeps its record untouched."""
    record = TrialRecord.read(trial_dir)
    if record is None or record.pid != pid:
        return
    record.gpu_usage = usage
    record.write(trial_dir)


def usage_text(usage: dict[str, Any] | None) -> str:
    """``71% 2150 MiB`` (``gpu`` marks the GPU's memory standing in for the trial's)."""
    if not usage:
        return ""
    scope = "" if usage.get("memory_of") == "trial" else " (gpu)"
    return f"{usage['utilisation_mean']:.0f}% {usage['memory_peak_mib']} MiB{scope}"
