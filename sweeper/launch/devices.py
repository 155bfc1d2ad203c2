"""Accelerator discovery and slot planning, without importing TensorFlow or touching a GPU.

GPUs are listed by ``nvidia-smi`` (the driver's own tool, no CUDA context is created) and
filtered by an existing ``CUDA_VISIBLE_DEVICES``. A *slot* is one place a trial runs: a GPU (or
a group of GPUs for a multi-GPU trial), possibly shared by a few small trials, or a CPU worker.

GPUs are named by nvidia-smi's index, which counts in PCI bus order. CUDA counts fastest first
unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so on a machine with two kinds of GPU the same number
can mean another GPU; every GPU worker gets that setting, so its ``CUDA_VISIBLE_DEVICES`` means
the GPU nvidia-smi, the slot and the trial's record name.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sweeper.errors import DeviceError
from sweeper.launch import nvml

log = logging.getLogger(__name__)

# What a GPU worker is told beyond CUDA's own variables (sweeper/trial/gpu.py reads them).
GPUS_ENV = "SWEEPER_GPUS"  # the slot's GPUs as JSON: index, name, uuid
MEMORY_ENV = "SWEEPER_GPU_MEMORY_MIB"  # TensorFlow's memory limit on each of them, comma-separated
# Memory a TensorFlow process takes on a GPU outside its allocator's limit (the CUDA context,
# cuDNN and cuBLAS handles): memory_per_trial=auto leaves it free for each trial.
CONTEXT_MIB = 512


@dataclass(frozen=True)
class Gpu:
    """A GPU as nvidia-smi lists it."""

    index: str
    uuid: str = ""
    name: str = ""
    memory_total_mib: int | None = None
    memory_free_mib: int | None = None

    def describe(self) -> dict[str, str]:
        """What a trial's record says of the GPU: its index, model and UUID."""
        return {"index": self.index, "name": self.name, "uuid": self.uuid}


@dataclass(frozen=True)
class Slot:
    """One place a trial runs, and the environment its worker process starts with."""

    index: int
    gpus: tuple[str, ...] = ()  # physical GPU ids, as CUDA_VISIBLE_DEVICES names them
    share: int = 0  # which of the trials packed on these GPUs (0 .. trials_per_device - 1)
    threads: int = 0  # TensorFlow intra-op threads on CPU (0: TensorFlow's default)
    env: dict[str, str] = field(default_factory=dict, compare=False)
    info: tuple[Gpu, ...] = field(default=(), compare=False)  # what nvidia-smi says of them
    alone: bool = False  # the whole GPU for one trial that ran out of memory on a share of it

    @property
    def device(self) -> str:
        """``GPU:0``, ``GPU:0,1`` or ``CPU``."""
        return "GPU:" + ",".join(self.gpus) if self.gpus else "CPU"

    @property
    def name(self) -> str:
        """The device, and which share of it when several trials are packed on one GPU."""
        if self.alone:
            return f"{self.device} alone"
        return f"{self.device}#{self.share}" if self.gpus else f"CPU#{self.index}"

    @property
    def label(self) -> str:
        """The slot as the live table shows it: its name, and the GPUs' model and UUID."""
        return " ".join([self.name, gpu_label([g.describe() for g in self.info])]).strip()


def gpu_label(gpus: Sequence[dict[str, Any]]) -> str:
    """``NVIDIA H100 80GB HBM3 GPU-3f2a1c0d`` for each GPU (a trial record's ``gpus``)."""
    return ", ".join(" ".join(p for p in (str(g.get("name") or ""), str(g.get("uuid") or "")[:12])
                              if p) for g in gpus)


def list_gpus() -> list[Gpu]:
    """Every GPU of this machine, as nvidia-smi lists them ([] without nvidia-smi)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    query = "--query-gpu=index,uuid,name,memory.total,memory.free"
    try:
        out = subprocess.run([exe, query, "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as e:
        _nvidia_smi_failed(_why(e))
        return []
    return [_gpu(line) for line in out.splitlines() if line.strip()]


def _why(error: BaseException) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        said = (error.stderr or error.stdout or "").strip().splitlines()
        return f"exit {error.returncode}" + (f": {said[0]}" if said else "")
    return f"{type(error).__name__}: {error}"


@functools.cache  # said once per cause
def _nvidia_smi_failed(why: str) -> None:
    log.warning("nvidia-smi failed (%s): no GPU is visible to sweeper, trials run on CPU; "
                "fix the driver, or set hydra.launcher.devices=cpu to say so", why)


def _gpu(line: str) -> Gpu:
    parts = [p.strip() for p in line.split(",")]
    total, free = (_mib(p) for p in parts[-2:]) if len(parts) >= 5 else (None, None)
    name = ", ".join(parts[2:-2] if len(parts) >= 5 else parts[2:])
    return Gpu(parts[0], parts[1] if len(parts) > 1 else "", name, total, free)


def _mib(text: str) -> int | None:
    return int(float(text)) if text.replace(".", "", 1).isdigit() else None  # "[N/A]": unknown


def discover_gpus() -> list[str]:
    """Physical ids of the GPUs this process may use ([] when there are none)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return []
    if shutil.which("nvidia-smi") is None:
        return []
    present = [g.index for g in list_gpus()]
    if visible is None:
        return present
    wanted = [v.strip() for v in visible.split(",") if v.strip()]
    # Ids that are not indexes (GPU-UUIDs, MIG names) are passed through as the user gave them.
    return [v for v in wanted if v in present or not v.isdigit()]


def gpu_info(ids: Sequence[str], listed: Sequence[Gpu] | None = None) -> tuple[Gpu, ...]:
    """What nvidia-smi says of the GPUs named by ``ids`` (indexes or UUIDs)."""
    listed = list_gpus() if listed is None else listed
    found = []
    for gpu_id in ids:
        match = [g for g in listed if gpu_id in (g.index, g.uuid)
                 or (gpu_id.startswith("GPU-") and g.uuid.startswith(gpu_id))]
        found.append(match[0] if match else Gpu(gpu_id))
    return tuple(found)


def plan_slots(devices: str | Sequence[int | str], trials_per_device: int = 1,
               devices_per_trial: int = 1, workers: int | None = None,
               memory_per_trial: int | str | None = None) -> list[Slot]:
    """The slots of a sweep: GPU slots when there are GPUs, otherwise ``workers`` CPU slots."""
    if trials_per_device < 1 or devices_per_trial < 1:
        raise DeviceError("hydra.launcher.trials_per_device and devices_per_trial must be >= 1")
    _check_memory(memory_per_trial)
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
    listed = list_gpus()
    info = {group: gpu_info(group, listed) for group in groups}
    limits = {group: memory_limits(info[group], memory_per_trial, trials_per_device)
              for group in groups}
    slots: list[Slot] = []
    for share in range(trials_per_device):
        for group in groups:
            env = gpu_env(info[group], limits[group])
            if trials_per_device > 1:  # packed trials must not each take the whole GPU
                env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
            slots.append(Slot(len(slots), group, share, 0, env, info[group]))
    return slots


def gpu_env(info: Sequence[Gpu], limits: Sequence[int] = ()) -> dict[str, str]:
    """The environment of a worker on these GPUs, set before it imports TensorFlow."""
    env = {"CUDA_VISIBLE_DEVICES": ",".join(g.index for g in info),
           "CUDA_DEVICE_ORDER": "PCI_BUS_ID",  # CUDA's numbers are nvidia-smi's
           GPUS_ENV: json.dumps([g.describe() for g in info])}
    if limits:
        env[MEMORY_ENV] = ",".join(map(str, limits))
    return env


def alone(slot: Slot, index: int) -> Slot:
    """A slot with the GPUs of ``slot`` to itself: no share of the memory, no neighbours."""
    env = {k: v for k, v in slot.env.items() if k not in (MEMORY_ENV, "TF_FORCE_GPU_ALLOW_GROWTH")}
    return replace(slot, index=index, share=0, env=env, alone=True)


def _check_memory(memory_per_trial: Any) -> None:
    if memory_per_trial is None or memory_per_trial == "auto" or (
            isinstance(memory_per_trial, int) and not isinstance(memory_per_trial, bool)
            and memory_per_trial > 0):
        return
    raise DeviceError(f"hydra.launcher.memory_per_trial={memory_per_trial}: must be a whole "
                      f"number of MiB > 0, auto or null")


def memory_limits(info: Sequence[Gpu], memory_per_trial: int | str | None,
                  trials_per_device: int) -> list[int]:
    """TensorFlow's memory limit in MiB on each GPU of a slot ([]: none): ``memory_per_trial``,
    or with ``auto`` the GPU's free memory shared out, less what each process needs outside
    TensorFlow's allocator. Raises :class:`DeviceError` when the trials cannot fit."""
    if memory_per_trial is None:
        return []
    limits = []
    for gpu in info:
        if memory_per_trial == "auto":
            free = nvml.free_mib(gpu.uuid or gpu.index)
            free = gpu.memory_free_mib if free is None else free
            if free is None:
                raise DeviceError(f"hydra.launcher.memory_per_trial=auto: the free memory of "
                                  f"GPU {gpu.index} is unknown; give a number of MiB")
            limit = free // trials_per_device - CONTEXT_MIB
            if limit < CONTEXT_MIB:
                raise DeviceError(f"hydra.launcher.memory_per_trial=auto: GPU {gpu.index} has "
                                  f"{free} MiB free, too little for {trials_per_device} trials")
        else:
            limit = int(memory_per_trial)
            total = gpu.memory_total_mib
            if total is not None and limit * trials_per_device > total:
                raise DeviceError(f"hydra.launcher.memory_per_trial={limit}: "
                                  f"{trials_per_device} trials x {limit} MiB do not fit GPU "
                                  f"{gpu.index} ({gpu.name or 'GPU'}, {total} MiB)")
        limits.append(limit)
    return limits


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def cpu_slots(workers: int | None) -> list[Slot]:
    """``workers`` CPU slots (default: one per core) that split the cores between them."""
    cores = cpu_cores()
    count = cores if workers is None else int(workers)
    if count < 1:
        raise DeviceError(f"hydra.launcher.workers={count}: must be >= 1")
    threads = max(1, cores // count)
    # TensorFlow's runtime reads these when it starts, so a worker needs no TensorFlow call.
    env = {"CUDA_VISIBLE_DEVICES": "-1", "OMP_NUM_THREADS": str(threads),
           "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1"}
    return [Slot(i, (), 0, threads, dict(env)) for i in range(count)]
