"""A trial's GPUs, on the worker's side: CUDA's device order and the memory limit applied before
TensorFlow touches a GPU, what the trial's record says of its GPUs, and running out of memory
named as such.

The pool launcher tells a worker its GPUs and their memory limit through the environment (see
:mod:`sweeper.launch.devices`); under other launchers (Ray, SLURM, Hydra's basic one) the record
asks nvidia-smi about the GPUs ``CUDA_VISIBLE_DEVICES`` names.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from sweeper.errors import TrialFailed, first_line
from sweeper.launch.devices import GPUS_ENV, MEMORY_ENV, discover_gpus, gpu_info
from sweeper.launch.jobs import OUT_OF_GPU_MEMORY, OUT_OF_MEMORY

log = logging.getLogger(__name__)


def memory_limits() -> list[int]:
    """TensorFlow's memory limit in MiB on each GPU of this worker, in CUDA's order ([]: none)."""
    raw = os.environ.get(MEMORY_ENV, "")
    return [int(v) for v in raw.split(",") if v.strip()]


def start_tensorflow() -> Any:
    """TensorFlow, imported with this worker's GPU settings in force. A logical device's memory
    limit holds only if it is set before TensorFlow first initialises the GPU, so every place
    that imports TensorFlow in a trial's process goes through here first."""
    # nvidia-smi's numbers (PCI bus order) where CUDA would count fastest first.
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    limits = memory_limits()
    if not limits:
        return tf
    for gpu, limit in zip(tf.config.list_physical_devices("GPU"), limits, strict=False):
        if tf.config.get_logical_device_configuration(gpu) is not None:
            continue  # set already, by this worker's warm-up
        try:
            tf.config.set_logical_device_configuration(
                gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit)])
        except RuntimeError as e:  # something ran on the GPU first: the share is not enforced
            raise TrialFailed(f"GPU memory limit of {limit} MiB could not be applied ({e}): "
                              "the trial would not keep to its share of the GPU") from e
    return tf


def describe() -> list[dict[str, Any]]:
    """The GPUs a trial in this process may use: index, model, UUID and memory limit."""
    given = os.environ.get(GPUS_ENV)
    if given:
        gpus: list[dict[str, Any]] = json.loads(given)
    else:
        gpus = [g.describe() for g in gpu_info(discover_gpus())]
    for gpu, limit in zip(gpus, memory_limits(), strict=False):
        gpu["memory_limit_mib"] = limit
    return gpus


def failure(e: BaseException, on_gpu: bool) -> str:
    """How a trial's record names the exception that failed it; TensorFlow's out-of-memory
    error becomes ``out of GPU memory: ...`` (``out of memory`` on CPU), so a launcher can
    tell it from other failures and give the trial more memory."""
    tf = sys.modules.get("tensorflow")

    def exhausted(error: BaseException) -> bool:
        return (tf is not None and isinstance(error, tf.errors.ResourceExhaustedError)) or \
            "OOM when allocating" in str(error)

    # A builder's error reaches the trial wrapped (Hydra's InstantiationException): its cause
    # says what happened.
    cause: BaseException | None = e
    while cause is not None and not exhausted(cause):
        cause = cause.__cause__
    if cause is None:
        return f"{type(e).__name__}: {e}"
    message = str(cause)
    # TensorFlow's message leads with the function's name and ends with the op: keep the middle.
    start = message.find("OOM when allocating")
    detail = message[start:] if start >= 0 else message
    detail = first_line(detail.split(" [Op:")[0])
    return f"{OUT_OF_GPU_MEMORY if on_gpu else OUT_OF_MEMORY}: {detail}".rstrip(": ")
