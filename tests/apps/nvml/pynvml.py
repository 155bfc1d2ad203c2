"""A stand-in for nvidia-ml-py's ``pynvml`` (NVIDIA's C library behind it needs a GPU driver).

Put this folder on PYTHONPATH. The GPUs are those of ``$FAKE_NVML/gpus.json`` (a list of
``{"uuid", "total_mib", "free_mib", "used_mib", "utilisation"}``, indexed by position); a process
"holds" GPU memory while the file ``$FAKE_NVML/procs/<gpu index>/<pid>`` says how many MiB.
Only the functions sweeper calls are here.
"""

import json
import os
from pathlib import Path
from types import SimpleNamespace

MIB = 2**20


class NVMLError(Exception):
    pass


def _root() -> Path:
    return Path(os.environ["FAKE_NVML"])


def _gpus() -> list[dict]:
    return json.loads((_root() / "gpus.json").read_text())


def nvmlInit() -> None:
    if not (_root() / "gpus.json").exists():
        raise NVMLError("driver not loaded")


def nvmlShutdown() -> None:
    pass


def nvmlDeviceGetCount() -> int:
    return len(_gpus())


def nvmlDeviceGetHandleByIndex(index: int) -> int:
    if not 0 <= index < len(_gpus()):
        raise NVMLError(f"no GPU {index}")
    return index


def nvmlDeviceGetHandleByUUID(uuid) -> int:
    uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
    for i, gpu in enumerate(_gpus()):
        if gpu["uuid"] == uuid:
            return i
    raise NVMLError(f"no GPU {uuid}")


def nvmlDeviceGetUtilizationRates(handle: int) -> SimpleNamespace:
    return SimpleNamespace(gpu=_gpus()[handle]["utilisation"], memory=0)


def nvmlDeviceGetMemoryInfo(handle: int) -> SimpleNamespace:
    gpu = _gpus()[handle]
    return SimpleNamespace(total=gpu["total_mib"] * MIB, free=gpu["free_mib"] * MIB,
                           used=gpu["used_mib"] * MIB)


def nvmlDeviceGetComputeRunningProcesses(handle: int) -> list[SimpleNamespace]:
    folder = _root() / "procs" / str(handle)
    found = []
    for path in folder.glob("*") if folder.is_dir() else []:
        try:
            found.append(SimpleNamespace(pid=int(path.name),
                                         usedGpuMemory=int(path.read_text()) * MIB))
        except (OSError, ValueError):  # the process let go of it meanwhile
            continue
    return found
