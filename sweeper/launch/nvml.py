"""NVIDIA's management library (NVML, from the nvidia-ml-py package), for the sweep process.

NVML is the driver's own monitoring interface, the one ``nvidia-smi`` is built on: it reads a
GPU's memory and utilisation without creating a CUDA context, so the sweep process can watch the
GPUs its workers train on without touching them. Without the package or a driver, every answer
here is "unknown" (None) and callers fall back or leave the figure out.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

log = logging.getLogger(__name__)

MIB = 2**20


@functools.cache
def library() -> Any | None:
    """The initialised ``pynvml`` module; None without nvidia-ml-py or a working driver."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        log.debug("NVML unavailable: %s", e)
        return None
    return pynvml


def handle(nvml: Any, gpu_id: str) -> Any:
    """NVML's handle of a GPU named as nvidia-smi names it: its index or its UUID."""
    if gpu_id.isdigit():
        return nvml.nvmlDeviceGetHandleByIndex(int(gpu_id))
    return nvml.nvmlDeviceGetHandleByUUID(gpu_id)


def free_mib(gpu_id: str) -> int | None:
    """Free memory of a GPU in MiB, as NVML reports it now (None: unknown)."""
    nvml = library()
    if nvml is None:
        return None
    try:
        return int(nvml.nvmlDeviceGetMemoryInfo(handle(nvml, gpu_id)).free // MIB)
    except (nvml.NVMLError, ValueError) as e:
        log.debug("NVML: no free memory for GPU %s: %s", gpu_id, e)
        return None
