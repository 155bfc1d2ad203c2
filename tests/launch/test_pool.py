"""The pool launcher: parallel slots, device isolation, dead workers, Ctrl-C, the live table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from itertools import combinations
from pathlib import Path

import pytest
from conftest import records, run_cli, sigint_default
from helpers.gpus import PROBE, fake_nvidia_smi, overlap, probe_sweep

from sweeper.errors import DeviceError
from sweeper.launch import devices


def test_two_cpu_slots_run_trials_side_by_side(tmp_path: Path) -> None:
    done, probes = probe_sweep(tmp_path, "hydra.launcher.workers=2", "+i=0,1,2,3", "+sleep=1.5")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(probes) == 4
    assert any(overlap(a, b) for a, b in combinations(probes, 2))
    assert {p["cuda"] for p in probes} == {"-1"}
    assert {p["slot"] for p in probes} == {"CPU#0", "CPU#1"}
    for a, b in combinations(probes, 2):  # a slot runs one trial at a time
        assert not (overlap(a, b) and a["slot"] == b["slot"])
    assert len({p["pid"] for p in probes}) == 2  # CPU workers stay warm across trials


def test_two_gpus_two_trials_each_run_four_at_once(tmp_path: Path) -> None:
    models = ("NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3")
    env = fake_nvidia_smi(tmp_path / "bin", gpus=2, models=models)
    done, probes = probe_sweep(tmp_path, "hydra.launcher.devices=[0,1]",
                               "hydra.launcher.trials_per_device=2",
                               "hydra.launcher.memory_per_trial=4000", "+i=0,1,2,3", "+sleep=4",
                               env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(probes) == 4
    assert all(overlap(a, b) for a, b in combinations(probes, 2)), "not all four at once"
    assert sorted(p["slot"] for p in probes) == ["GPU:0#0", "GPU:0#1", "GPU:1#0", "GPU:1#1"]
    assert sorted(p["cuda"] for p in probes) == ["0", "0", "1", "1"]
    assert len({p["pid"] for p in probes}) == 4  # on GPU every trial gets a fresh process
    for p in probes:  # each with its share of its own GPU, numbered as nvidia-smi numbers it
        assert p["order"] == "PCI_BUS_ID" and p["memory_limit"] == "4000"
        assert p["growth"] == "true" and p["gpus"][0]["name"] == models[int(p["cuda"])]
    for record in (tmp_path / "sweep").glob("*/trial.json"):
        (gpu,) = json.loads(record.read_text())["gpus"]
        assert gpu["memory_limit_mib"] == 4000 and gpu["name"] == models[int(gpu["index"])]


def test_gpu_slots_without_packing_never_share_a_device(tmp_path: Path) -> None:
    env = fake_nvidia_smi(tmp_path / "bin", gpus=2)
    done, probes = probe_sweep(tmp_path, "+i=0,1,2,3,4", "+sleep=1", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    for a, b in combinations(probes, 2):
        assert not (overlap(a, b) and a["cuda"] == b["cuda"]), (a, b)
    assert {p["cuda"] for p in probes} == {"0", "1"}


def test_a_killed_worker_fails_its_trial_once_then_the_retry_completes(tmp_path: Path) -> None:
    done, probes = probe_sweep(tmp_path, "hydra.launcher.workers=2", "+i=0,1,2",
                               "+die_once=true")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "worker died: signal 9" in done.stdout + done.stderr
    assert len(probes) == 3
    for trial in (tmp_path / "sweep").iterdir():
        if trial.name == "workers" or not trial.is_dir():
            continue
        previous = json.loads((trial / "previous.json").read_text())
        assert previous["status"] == "failed" and previous["error"] == "worker died: signal 9"
        assert json.loads((trial / "trial.json").read_text())["status"] == "completed"


def test_retries_exhausted_fails_the_trial_not_the_sweep(tmp_path: Path) -> None:
    done, probes = probe_sweep(tmp_path, "hydra.launcher.workers=1",
                               "hydra.launcher.max_retries=0", "+i=0", "+die_once=true")
    assert done.returncode == 0, done.stderr[-3000:]
    assert probes == []
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*/trial.json")]
    assert record["status"] == "failed" and record["error"] == "worker died: signal 9"


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_ctrl_c_stops_the_sweep_and_leaves_no_child_process(tmp_path: Path) -> None:
    marker = f"SWEEPER_TEST_MARK={uuid.uuid4().hex}"
    key, value = marker.split("=")
    proc = subprocess.Popen(
        [sys.executable, str(PROBE), "-m", "hydra/launcher=pool", "hydra.launcher.live=false",
         "hydra.launcher.workers=2", f"hydra.sweep.dir={tmp_path / 'sweep'}", "+i=0,1,2,3",
         "+sleep=60"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, key: value}, preexec_fn=sigint_default)
    try:
        deadline = time.time() + 120
        while len(list((tmp_path / "sweep").glob("*/.hydra"))) < 2:  # two trials under way
            assert time.time() < deadline and proc.poll() is None, "sweep did not start"
            time.sleep(0.2)
        assert len(_processes_with(marker)) >= 3  # the sweep and its two workers
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    time.sleep(0.5)
    assert _processes_with(marker) == [], out[-2000:]


def test_slot_planning_honours_cuda_visible_devices(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", fake_nvidia_smi(tmp_path / "bin", gpus=4)["PATH"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert devices.discover_gpus() == ["2", "3"]
    slots = devices.plan_slots("auto", devices_per_trial=2)
    assert [(s.device, s.env["CUDA_VISIBLE_DEVICES"]) for s in slots] == [("GPU:2,3", "2,3")]
    with pytest.raises(DeviceError, match="GPU 0 is not available"):
        devices.plan_slots([0])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert [s.device for s in devices.plan_slots("auto", workers=3)] == ["CPU"] * 3


def test_real_sweep_on_two_workers_records_distinct_slots(grid_sweep: Path) -> None:
    found = records(grid_sweep / "experiments" / "grid")
    assert {r["device"] for r in found} == {"CPU"}
    assert {r["slot"] for r in found} == {"CPU#0", "CPU#1"}
    assert all(r["timings"]["fit_s"] > 0 for r in found)
    assert all(r["gpus"] == [] and "gpu_usage" not in r for r in found)  # no GPU, no figures


@pytest.mark.slow  # a long sweep; `pytest -m slow` runs it
def test_more_workers_than_trials_start_only_one_per_trial(tmp_path: Path) -> None:
    done = run_cli("-m", "model.units=8,16", "hydra.launcher.workers=6", "train.epochs=1",
                   "dataset.limit=200", "sweep.name=few", "hydra.launcher.live=false",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # each worker the pool ran has its log here: one per trial, not one per worker asked for
    assert len(list((tmp_path / "experiments" / "few" / "workers").glob("*.log"))) == 2
    cores = len(os.sched_getaffinity(0))
    warned = f"pool: 6 workers on {cores} CPU cores: trials will compete for the cores"
    assert (warned in done.stdout + done.stderr) is (cores < 6)
