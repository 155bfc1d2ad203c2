"""A Hydra app without TensorFlow that reports where and when each job ran (launcher tests).

Each job writes probe.json into its output folder: pid, slot, CUDA_VISIBLE_DEVICES, start and
end times. ``+sleep=S`` makes it last S seconds; ``+die_once=true`` makes its first attempt
kill its own worker with SIGKILL (after writing a running trial.json, as a real trial would).
"""

import json
import os
import signal
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sweeper.record import Objective, Status, TrialRecord


def _record(out: Path, status: Status) -> None:
    TrialRecord(sweep="probe", trial_id=out.name, objective=Objective("score", "max"),
                status=status).write(out)


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
    time.sleep(float(cfg.get("sleep", 0)))
    probe = {"pid": os.getpid(), "slot": os.environ.get("SWEEPER_SLOT"),
             "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time()}
    (out / "probe.json").write_text(json.dumps(probe))
    _record(out, Status.COMPLETED)
    return 1.0


if __name__ == "__main__":
    main()
