"""hydra/launcher=ray_cluster on a real two-node Ray cluster, both nodes on this machine.

The head and a second node each offer 1 CPU and one ``trial_slot``; every trial asks for a slot,
so no node runs two trials at once and a 4-trial sweep must use both nodes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import records, run_cli

pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="hydra-ray-launcher is missing")

RAY = str(Path(sys.executable).parent / "ray")
# A cluster of our own: no token from an earlier local Ray in ~/.ray, no usage reporting.
ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
NODE = ["--num-cpus=1", '--resources={"trial_slot": 1}', "--object-store-memory=100000000",
        "--node-ip-address=127.0.0.1", "--disable-usage-stats"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_processes(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (the cluster's session folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes().decode(
                    errors="replace"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, set[str]]]:
    """A Ray head and a second node on 127.0.0.1: their address and node ids. Stopped after the
    module's tests, whatever they did."""
    env = {**os.environ, **ENV}
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths are limited
    address = f"127.0.0.1:{free_port()}"
    try:
        subprocess.run([RAY, "start", "--head", f"--port={address.split(':')[1]}",
                        "--include-dashboard=false", f"--temp-dir={temp}", *NODE],
                       env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([RAY, "start", f"--address={address}", *NODE],
                       env=env, check=True, capture_output=True, timeout=120)
        alive = (f"import json, ray; ray.init(address={address!r}, logging_level='ERROR'); "
                 "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']]))")
        listed = subprocess.run([sys.executable, "-c", alive], env=env, check=True,
                                capture_output=True, text=True, timeout=120)
        nodes = set(json.loads(listed.stdout.strip().splitlines()[-1]))
        assert len(nodes) == 2
        yield address, nodes
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        deadline = time.time() + 30
        while ray_processes(temp) and time.time() < deadline:
            time.sleep(0.5)
        left = ray_processes(temp)
        subprocess.run(["rm", "-rf", temp], check=False)
        assert not left, f"Ray processes left running: {left}"


def sweep(address: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("-m", "hydra/launcher=ray_cluster", f"hydra.launcher.ray.init.address={address}",
                   "hydra.launcher.ray.remote.num_gpus=0",
                   "+hydra.launcher.ray.remote.resources={trial_slot:1}", *args,
                   cwd=cwd, env=ENV, timeout=400)


def test_a_sweep_uses_both_nodes_and_ends_as_a_local_one(cluster: tuple[str, set[str]],
                                                        tmp_path: Path) -> None:
    address, nodes = cluster
    args = ("optimizer=adam,sgd", "model.units=8,16", "train.epochs=1", "dataset.limit=200",
            "sweep.name=ray")
    done = sweep(address, tmp_path, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep_dir = tmp_path / "experiments" / "ray"  # relative paths land here, not on the nodes'
    trials = records(sweep_dir)
    assert len(trials) == 4 and {t["status"] for t in trials} == {"completed"}
    assert {t["node"] for t in trials} == nodes  # both nodes ran trials
    for t in trials:  # each trial's TensorBoard run, with its HParams session
        run = Path(t["tensorboard_run"])
        assert run.is_relative_to(tmp_path / "logs" / "ray")
        assert list(run.glob("events.out.tfevents.*"))
    board = pd.read_csv(sweep_dir / "leaderboard.csv")
    assert board["rank"].notna().sum() == 4 and set(board["node"]) == nodes
    best = json.loads((sweep_dir / "best" / "best.json").read_text())
    assert best["trial_id"] == board.loc[board["rank"] == 1, "trial_id"].item()
    assert list((sweep_dir / "best" / "saved_model").glob("*/saved_model.pb"))

    again = sweep(address, tmp_path, *args)  # resume: nothing left to run
    assert again.returncode == 0, again.stderr[-3000:]
    assert [t["finished_at"] for t in records(sweep_dir)] == [t["finished_at"] for t in trials]


def test_the_tuner_sweeper_fills_the_cluster(cluster: tuple[str, set[str]],
                                            tmp_path: Path) -> None:
    address, nodes = cluster
    done = sweep(address, tmp_path, "hydra/sweeper=tuner", "hydra.sweeper.max_trials=4",
                 "model.units=range(8,33,8)", "optimizer=choice(adam,sgd)", "train.epochs=1",
                 "dataset.limit=200", "sweep.name=tuned")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "random search of 2 dimensions, 2 trials at a time" in done.stdout + done.stderr
    trials = records(tmp_path / "experiments" / "tuned")
    assert len(trials) == 4 and {t["status"] for t in trials} == {"completed"}
    assert {t["node"] for t in trials} == nodes
