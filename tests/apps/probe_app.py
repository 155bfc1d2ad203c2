"""A Hydra app without TensorFlow that reports where and when each job ran (launcher tests).

Each job writes probe.json into its output folder: pid, slot, its GPU environment
(CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER, the slot's GPUs, memory limit, memory growth), start
and end times, and a trial.json through sweeper's own record, as a trial would. ``+sleep=S``
makes it last S seconds; ``+die_once=true`` makes its first attempt kill its own worker with
SIGKILL (after writing a running trial.json, as a real trial would). ``+gpu_mib=N`` holds N MiB
on its GPU in the stand-in NVML (tests/apps/nvml) while it runs. ``+exceed_share=I`` makes job
``+i=I`` need more than a memory share: wherever it runs under a memory limit it fails at once,
as a trial out of GPU memory does.
"""

import json
import math
import os
import signal
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sweeper.record import Objective, Status, TrialRecord
from sweeper.trial.gpu import describe, failure
from sweeper.trial.host import where


def _record(out: Path, status: Status, error: str | None = None) -> None:
    TrialRecord(sweep="probe", trial_id=out.name, objective=Objective("score", "max"),
                status=status, error=error, gpus=describe(), **where()).write(out)


def _hold_gpu_memory(mib: int) -> Path | None:
    """Take ``mib`` of the GPU in the stand-in NVML (as TensorFlow would in the real one)."""
    if not os.environ.get("FAKE_NVML") or not mib:
        return None
    folder = Path(os.environ["FAKE_NVML"]) / "procs" / os.environ["CUDA_VISIBLE_DEVICES"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(os.getpid())).write_text(str(mib))
    return folder / str(os.getpid())


@hydra.main(version_base="1.3", config_path=None)
def main(cfg: DictConfig) -> float:
    out = Path(HydraConfig.get().runtime.output_dir)
    start = time.time()
    record = out / "trial.json"
    if cfg.get("die_once") and not (out / "attempted").exists():
        (out / "attempted").touch()
        _record(out, Status.RUNNING)
        os.kill(os.getpid(), signal.SIGKILL)
    if record.exists():
        (out / "previous.json").write_text(record.read_text())
    held = _hold_gpu_memory(int(cfg.get("gpu_mib", 0)))
    limited = os.environ.get("SWEEPER_GPU_MEMORY_MIB")
    exceeds = limited and cfg.get("exceed_share") is not None and cfg.get("i") == cfg.exceed_share
    time.sleep(0 if exceeds else float(cfg.get("sleep", 0)))
    probe = {"pid": os.getpid(), "slot": os.environ.get("SWEEPER_SLOT"),
             "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
             "order": os.environ.get("CUDA_DEVICE_ORDER"),
             "gpus": json.loads(os.environ.get("SWEEPER_GPUS", "null")),
             "memory_limit": limited, "growth": os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH"),
             "start": start, "end": time.time()}
    if held is not None:
        held.unlink()  # a process's GPU memory goes back when it ends
    if exceeds:
        (out / "oom.json").write_text(json.dumps(probe))
        oom = RuntimeError("OOM when allocating tensor with shape[4096,65536] and type float on "
                           "/job:localhost/replica:0/task:0/device:GPU:0 by allocator GPU_0_bfc")
        _record(out, Status.FAILED, failure(oom, on_gpu=True))
        return math.nan
    (out / "probe.json").write_text(json.dumps(probe))
    _record(out, Status.COMPLETED)
    return 1.0


if __name__ == "__main__":
    main()
