"""The probe app run as a pool sweep, and a stand-in nvidia-smi: slot planning for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers.paths import PROBE


def probe_sweep(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                timeout: float = 240, live: bool = False
                ) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run the probe app as a pool sweep; return the process and every job's probe.json."""
    done = subprocess.run(
        [sys.executable, str(PROBE), "-m", "hydra/launcher=pool", f"hydra.launcher.live={live}",
         f"hydra.sweep.dir={tmp_path / 'sweep'}", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})})
    found = sorted((tmp_path / "sweep").glob("*/probe.json"))
    probes = [json.loads(p.read_text()) for p in found]
    return done, probes


def overlap(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def fake_nvidia_smi(folder: Path, gpus: int, models: tuple[str, ...] = ("Tesla T4",),
                    total_mib: int = 16384, free_mib: int = 15000) -> dict[str, str]:
    """A stand-in ``nvidia-smi`` on PATH listing ``gpus`` GPUs (index, uuid, model, total and
    free MiB, as ``--query-gpu`` prints them), of the ``models`` in turn: slot planning runs
    for real."""
    folder.mkdir()
    exe = folder / "nvidia-smi"
    exe.write_text("#!/bin/sh\n" + "".join(
        f"echo '{i}, {fake_uuid(i)}, {models[i % len(models)]}, {total_mib}, {free_mib}'\n"
        for i in range(gpus)))
    exe.chmod(0o755)
    return {"PATH": f"{folder}:{os.environ['PATH']}"}


def fake_uuid(index: int) -> str:
    return f"GPU-{index:08x}-1111-2222-3333-{index:012x}"
