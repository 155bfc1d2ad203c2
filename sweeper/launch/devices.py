"""Accelerator discovery and slot planning, without importing TensorFlow or touching a GPU.

GPUs are listed by ``nvidia-smi`` (the driver's own tool, no CUDA context is created) and
filtered by an existing ``CUDA_VISIBLE_DEVICES``. A *slot* is one place a trial runs: a GPU (or
a group of GPUs for a multi-GPU trial), possibly shared by a few small trials, or a CPU worker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from sweeper.errors import DeviceError


@dataclass(frozen=True)
class Slot:
    """One place a trial runs, and the environment its worker process starts with."""

    index: int
    gpus: tuple[str, ...] = ()  # physical GPU ids, as CUDA_VISIBLE_DEVICES names them
    share: int = 0  # which of the trials packed on these GPUs (0 .. trials_per_device - 1)
    threads: int = 0  # TensorFlow intra-op threads on CPU (0: TensorFlow's default)
    env: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def device(self) -> str:
        """``GPU:0``, ``GPU:0,1`` or ``CPU``."""
        return "GPU:" + ",".join(self.gpus) if self.gpus else "CPU"

    @property
    def name(self) -> str:
        """The device, and which share of it when several trials are packed on one GPU."""
        return f"{self.device}#{self.share}" if self.gpus else f"CPU#{self.index}"


def discover_gpus() -> list[str]:
    """Physical ids of the GPUs this process may use ([] when there are none)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return []
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    present = [line.strip() for line in out.splitlines() if line.strip()]
    if visible is None:
        return present
    wanted = [v.strip() for v in visible.split(",") if v.strip()]
    # Ids that are not indexes (GPU-UUIDs, MIG names) are passed through as the user gave them.
    return [v for v in wanted if v in present or not v.isdigit()]


def plan_slots(devices: str | Sequence[int | str], trials_per_device: int = 1,
               devices_per_trial: int = 1, workers: int | None = None) -> list[Slot]:
    """The slots of a sweep: GPU slots when there are GPUs, otherwise ``workers`` CPU slots."""
    if trials_per_device < 1 or devices_per_trial < 1:
        raise DeviceError("hydra.launcher.trials_per_device and devices_per_trial must be >= 1")
    present = discover_gpus()
    if devices == "auto":
        gpus = present
    elif devices == "cpu":
        gpus = []
    else:
        gpus = [str(d) for d in devices]
        missing = [g for g in gpus if g not in present]
        if missing:
            have = ", ".join(present) or "none"
            raise DeviceError(f"hydra.launcher.devices: GPU {missing[0]} is not available "
                              f"(visible GPUs: {have})")
    if not gpus:
        return cpu_slots(workers)
    if devices_per_trial > len(gpus):
        raise DeviceError(f"hydra.launcher.devices_per_trial={devices_per_trial}: only "
                          f"{len(gpus)} GPU(s) available")
    groups = [tuple(gpus[i:i + devices_per_trial])
              for i in range(0, len(gpus) - devices_per_trial + 1, devices_per_trial)]
    slots: list[Slot] = []
    for share in range(trials_per_device):
        for group in groups:
            env = {"CUDA_VISIBLE_DEVICES": ",".join(group)}
            if trials_per_device > 1:  # packed trials must not each take the whole GPU
                env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
            slots.append(Slot(len(slots), group, share, 0, env))
    return slots


def cpu_slots(workers: int | None) -> list[Slot]:
    """``workers`` CPU slots (default: one per core) that split the cores between them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    count = cores if workers is None else int(workers)
    if count < 1:
        raise DeviceError(f"hydra.launcher.workers={count}: must be >= 1")
    threads = max(1, cores // count)
    # TensorFlow's runtime reads these when it starts, so a worker needs no TensorFlow call.
    env = {"CUDA_VISIBLE_DEVICES": "-1", "OMP_NUM_THREADS": str(threads),
           "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1"}
    return [Slot(i, (), 0, threads, dict(env)) for i in range(count)]
