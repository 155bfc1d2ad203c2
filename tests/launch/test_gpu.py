"""GPU workers on a machine without one: stand-in ``nvidia-smi`` and NVML, the real pool.

What these show (with tests/launch/test_pool.py, whose packing test checks each share's memory
limit):
the environment every worker starts with (device order, visible GPU, its model and UUID,
memory limit and growth) for mixed GPU models and for packing, the retry of a
trial out of memory with the GPU to itself, and the parent's utilisation samples reaching the
record, the log and the leaderboard. What they cannot show: that CUDA and TensorFlow honour that
environment on a real GPU (benchmarks/gpu_benchmark.py measures that on one).
"""

from __future__ import annotations

import json
import os
import re
import sys
from itertools import combinations
from pathlib import Path

import pytest
from conftest import records, run_cli
from helpers.gpus import fake_nvidia_smi, fake_uuid, overlap, probe_sweep
from helpers.paths import APPS
from helpers.records import trial_record, write_trial

from sweeper.errors import DeviceError
from sweeper.launch import devices
from sweeper.results import leaderboard

NVML = APPS / "nvml"
MODELS = ("NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3")


def trial_dirs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())


def fake_nvml(folder: Path, utilisation: tuple[int, ...], free_mib: int = 9000) -> dict[str, str]:
    """The stand-in NVML on PYTHONPATH, with one GPU per ``utilisation`` figure."""
    folder.mkdir()
    gpus = [{"uuid": fake_uuid(i), "total_mib": 16384, "free_mib": free_mib,
             "used_mib": 16384 - free_mib, "utilisation": u} for i, u in enumerate(utilisation)]
    (folder / "gpus.json").write_text(json.dumps(gpus))
    path = os.pathsep.join(p for p in (str(NVML), os.environ.get("PYTHONPATH")) if p)
    return {"FAKE_NVML": str(folder), "PYTHONPATH": path}


def test_mixed_gpu_models_each_worker_sees_its_own_gpu_in_nvidia_smi_order(tmp_path: Path) -> None:
    env = fake_nvidia_smi(tmp_path / "bin", gpus=2, models=MODELS)
    done, probes = probe_sweep(tmp_path, "+i=0,1,2,3", "+sleep=1", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(probes) == 4 and {p["cuda"] for p in probes} == {"0", "1"}
    for p in probes:
        index = int(p["cuda"])
        assert p["order"] == "PCI_BUS_ID"  # CUDA counts as nvidia-smi does, not fastest first
        assert p["gpus"] == [{"index": p["cuda"], "name": MODELS[index], "uuid": fake_uuid(index)}]
        assert p["memory_limit"] is None and p["growth"] is None  # one trial per GPU: no share
    for a, b in combinations(probes, 2):
        assert not (overlap(a, b) and a["cuda"] == b["cuda"])
    for folder in trial_dirs(tmp_path / "sweep"):
        record = json.loads((folder / "trial.json").read_text())
        (gpu,) = record["gpus"]
        assert gpu["name"] == MODELS[int(gpu["index"])] and gpu["uuid"] == fake_uuid(
            int(gpu["index"]))
    # The log (the live table's plain form) names each trial's GPU by index, model and UUID.
    assert f"started on GPU:1#0 {MODELS[1]} {fake_uuid(1)[:12]}" in done.stdout + done.stderr


def test_auto_memory_share_is_free_memory_split_from_nvidia_smi(tmp_path: Path,
                                                                monkeypatch) -> None:
    monkeypatch.setenv("PATH", fake_nvidia_smi(tmp_path / "bin", 1, free_mib=15000)["PATH"])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # no nvidia-ml-py: nvidia-smi's figure
    devices.nvml.library.cache_clear()
    try:
        slots = devices.plan_slots("auto", trials_per_device=2, memory_per_trial="auto")
    finally:
        devices.nvml.library.cache_clear()
    assert [s.env[devices.MEMORY_ENV] for s in slots] == [str(15000 // 2 - 512)] * 2
    for bad, message in (("lots", "must be a whole number of MiB > 0, auto or null"),
                         (0, "must be a whole number"),
                         (9000, "2 trials x 9000 MiB do not fit GPU 0 (Tesla T4, 16384 MiB)")):
        with pytest.raises(DeviceError, match=re.escape(message)):
            devices.plan_slots("auto", trials_per_device=2, memory_per_trial=bad)


def test_a_packed_trial_out_of_gpu_memory_fails_alone_then_gets_the_gpu_to_itself(
        tmp_path: Path) -> None:
    env = fake_nvidia_smi(tmp_path / "bin", gpus=1)
    done, probes = probe_sweep(tmp_path, "hydra.launcher.trials_per_device=2",
                               "hydra.launcher.memory_per_trial=2000", "+i=0,1,2,3", "+sleep=2",
                               "+exceed_share=1", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "retrying with the GPU to itself" in done.stdout + done.stderr
    by_i = {}
    for folder in trial_dirs(tmp_path / "sweep"):
        overrides = (folder / ".hydra" / "overrides.yaml").read_text()
        by_i[next(i for i in range(4) if f"+i={i}" in overrides)] = folder
    # Its first attempt, on a share of the GPU, failed as out of GPU memory, and only it did.
    first = json.loads((by_i[1] / "previous.json").read_text())
    assert first["status"] == "failed"
    assert first["error"].startswith("out of GPU memory: OOM when allocating tensor")
    assert first["retry_pending"] is True
    oom = json.loads((by_i[1] / "oom.json").read_text())
    assert oom["memory_limit"] == "2000" and oom["slot"].startswith("GPU:0#")
    # The retry had the GPU to itself: no memory share, no other trial beside it.
    retry = json.loads((by_i[1] / "probe.json").read_text())
    assert retry["slot"] == "GPU:0 alone" and retry["memory_limit"] is None
    assert retry["cuda"] == "0" and retry["order"] == "PCI_BUS_ID"
    others = [json.loads((by_i[i] / "probe.json").read_text()) for i in (0, 2, 3)]
    assert not any(overlap(retry, other) for other in others)
    assert any(overlap(a, b) for a, b in combinations(others, 2))  # the rest ran packed
    for i in range(4):
        assert json.loads((by_i[i] / "trial.json").read_text())["status"] == "completed"


def test_parent_samples_each_trials_gpu_into_its_record_and_the_live_table(tmp_path: Path) -> None:
    env = {**fake_nvidia_smi(tmp_path / "bin", gpus=2, models=MODELS),
           **fake_nvml(tmp_path / "nvml", utilisation=(40, 80)), "COLUMNS": "200"}
    done, probes = probe_sweep(tmp_path, "hydra.launcher.memory_per_trial=auto", "+i=0,1",
                               "+sleep=3", "+gpu_mib=300", env=env, live=True)
    assert done.returncode == 0, done.stderr[-3000:]
    # auto: NVML's free memory (9000 MiB; nvidia-smi's figure is 15000) less CUDA's own share.
    assert [p["memory_limit"] for p in probes] == [str(9000 - 512)] * 2
    for folder in trial_dirs(tmp_path / "sweep"):
        record = json.loads((folder / "trial.json").read_text())
        index = int(record["gpus"][0]["index"])
        usage = record["gpu_usage"]
        assert usage["utilisation_mean"] == (40, 80)[index]
        assert usage["memory_peak_mib"] == 300 and usage["memory_of"] == "trial"
        assert usage["samples"] >= 2
    # The live table's last frame: a GPU use column, each trial with its own GPU's figures.
    assert "GPU use" in done.stdout
    rows = [line for line in done.stdout.splitlines() if "completed" in line and "MiB" in line]
    assert sorted(("GPU:0#0" in r, "40% 300 MiB" in r, "80% 300 MiB" in r) for r in rows) == [
        (False, False, True), (True, True, False)], done.stdout


def test_describe_names_the_gpu_another_launcher_gave_the_trial(tmp_path: Path,
                                                                monkeypatch) -> None:
    """Under Ray, CUDA_VISIBLE_DEVICES is all a trial is told: nvidia-smi says which GPU."""
    from sweeper.trial import gpu

    monkeypatch.setenv("PATH", fake_nvidia_smi(tmp_path / "bin", 2, models=MODELS)["PATH"])
    monkeypatch.delenv(devices.GPUS_ENV, raising=False)
    monkeypatch.delenv(devices.MEMORY_ENV, raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert gpu.describe() == [{"index": "1", "name": MODELS[1], "uuid": fake_uuid(1)}]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert gpu.describe() == []


def test_tensorflows_out_of_memory_error_is_named_as_such() -> None:
    import tensorflow as tf

    from sweeper.trial.gpu import failure

    with pytest.raises(tf.errors.ResourceExhaustedError) as caught:
        tf.zeros([64, 2**33])  # 2 TiB: the allocator refuses it, as a GPU's does past its limit
    assert failure(caught.value, on_gpu=True).startswith(
        "out of GPU memory: OOM when allocating tensor with shape[64,8589934592]")
    assert failure(caught.value, on_gpu=False).startswith("out of memory: OOM when allocating")
    assert failure(ValueError("bad"), on_gpu=True) == "ValueError: bad"


def test_leaderboard_has_gpu_columns_only_where_trials_ran_on_one(tmp_path: Path) -> None:
    gpu_trial = trial_record("a", value=0.9)
    gpu_trial.update(device="GPU:0", gpus=[{"index": "0", "name": MODELS[1], "uuid": "GPU-1"}],
                     gpu_usage={"utilisation_mean": 71.5, "memory_peak_mib": 2150,
                                "memory_of": "trial", "samples": 12})
    write_trial(tmp_path / "gpu", gpu_trial)
    write_trial(tmp_path / "gpu", trial_record("b", value=0.8))
    ranked, _ = leaderboard.leaderboard(tmp_path / "gpu")
    row = ranked.iloc[0]
    assert (row["gpu_model"], row["gpu_util"], row["gpu_mem_mib"]) == (MODELS[1], 71.5, 2150)
    assert "71.5" in (tmp_path / "gpu" / "leaderboard.md").read_text()
    write_trial(tmp_path / "cpu", trial_record("c"))
    cpu, _ = leaderboard.leaderboard(tmp_path / "cpu")
    assert not {"gpu_model", "gpu_util", "gpu_mem_mib"} & set(cpu.columns)


@pytest.mark.slow
def test_real_trial_out_of_memory_on_a_packed_gpu_fails_alone_and_the_sweep_completes(
        tmp_path: Path) -> None:
    """Real TensorFlow: a model too large for memory raises its ResourceExhaustedError. Without
    a GPU it runs on CPU (so its record says "out of memory"), is retried alone, fails again;
    the trial packed beside it completes, and the sweep ends with its leaderboard."""
    env = fake_nvidia_smi(tmp_path / "bin", gpus=1)
    done = run_cli("-m", "model.units=8,8589934592", "train.epochs=1", "sweep.name=oom",
                   "hydra.launcher.trials_per_device=2", "hydra.launcher.memory_per_trial=2000",
                   "hydra.launcher.live=false", cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 1, done.stderr[-3000:]  # it ends, saying a trial failed
    assert "sweeper: error: 1 trial failed (" in done.stderr
    found = {r["hparams"]["model.units"]: r for r in records(tmp_path / "experiments" / "oom")}
    assert found[8]["status"] == "completed"
    big = found[8589934592]
    assert big["status"] == "failed" and big["attempts"] == 2
    assert big["error"].startswith("out of memory: OOM when allocating tensor")
    assert "retrying with the GPU to itself" in done.stdout + done.stderr
    board = (tmp_path / "experiments" / "oom" / "leaderboard.csv").read_text()
    assert "out of memory" in board



def test_out_of_memory_is_found_behind_the_builders_wrapper() -> None:
    from hydra.errors import InstantiationException

    from sweeper.trial import gpu

    try:
        try:
            raise RuntimeError("{{function_node __wrapped__}} OOM when allocating tensor with "
                               "shape[8,9] [Op:AddV2]")
        except RuntimeError as inner:
            raise InstantiationException("Error in call to target 'nets.build'") from inner
    except InstantiationException as e:
        assert gpu.failure(e, on_gpu=True) == \
            "out of GPU memory: OOM when allocating tensor with shape[8,9]"
    assert gpu.failure(ValueError("no"), on_gpu=False) == "ValueError: no"


def test_an_nvidia_smi_that_fails_is_said_not_taken_for_no_gpu(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    exe = folder / "nvidia-smi"
    exe.write_text("#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't communicate "
                   "with the NVIDIA driver.\" >&2\nexit 9\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    caplog.set_level("WARNING")
    assert devices.discover_gpus() == []  # trials still run, on CPU
    assert [r.getMessage() for r in caplog.records] == [
        "nvidia-smi failed (exit 9: NVIDIA-SMI has failed because it couldn't communicate with "
        "the NVIDIA driver.): no GPU is visible to sweeper, trials run on CPU; fix the driver, "
        "or set hydra.launcher.devices=cpu to say so"]
