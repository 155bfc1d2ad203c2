"""hydra/launcher=ray_cluster on a real two-node Ray cluster, both nodes on this machine.

The head and a second node each offer 1 CPU and one ``trial_slot``; every trial asks for a slot,
so no node runs two trials at once and a 4-trial sweep must use both nodes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import records, run_cli
from helpers.paths import BENCHMARKS, CONF, PROBE

pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="hydra-ray-launcher is missing")

sys.path.insert(0, str(BENCHMARKS))
from local_ray import ENV, RAY, LocalRay, free_port, session_members  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, set[str]]]:
    """A Ray head and a second node on 127.0.0.1, 1 CPU and one ``trial_slot`` each: their
    address and node ids. Stopped after the module's tests, whatever they did; only this
    cluster's processes are stopped."""
    ray = LocalRay(nodes=2, cpus=1, node_args=('--resources={"trial_slot": 1}',))
    with ray as address:
        alive = (f"import json, ray; ray.init(address={address!r}, logging_level='ERROR'); "
                 "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']]))")
        listed = subprocess.run([sys.executable, "-c", alive], env=ray.env, check=True,
                                capture_output=True, text=True, timeout=120)
        nodes = set(json.loads(listed.stdout.strip().splitlines()[-1]))
        assert len(nodes) == 2
        yield address, nodes
    assert not ray.left, f"Ray processes left running: {ray.left}"


def sweep(address: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("-m", "hydra/launcher=ray_cluster", f"hydra.launcher.ray.init.address={address}",
                   "hydra.launcher.ray.remote.num_gpus=0",
                   "+hydra.launcher.ray.remote.resources={trial_slot:1}", *args,
                   cwd=cwd, env=ENV, timeout=400)


def test_stopping_a_test_cluster_leaves_other_ray_clusters_running(
        cluster: tuple[str, set[str]]) -> None:
    address, nodes = cluster
    other = LocalRay()
    with other as other_address:
        assert other_address != address
    assert not other.left and not session_members(other.sessions)
    status = subprocess.run([RAY, "status", f"--address={address}"], env={**os.environ, **ENV},
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("node_") >= len(nodes)  # both nodes still up


@pytest.mark.slow  # a long sweep; `pytest -m slow` runs it
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
    # TensorFlow's C++ log lines stay in each trial's output.log, off the sweep's console
    console = done.stdout + done.stderr
    assert "absl::InitializeLog" not in console and "cuda" not in console.lower(), console[-3000:]
    outputs = [(sweep_dir / "trials" / t["trial_id"] / "output.log").read_text() for t in trials]
    assert any("absl::InitializeLog" in text for text in outputs)
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
    said = done.stdout + done.stderr
    assert "random search of 2 dimensions, 2 trials at a time, each freed slot given the next " \
        "at once" in said  # asynchronous on Ray too
    # two running and one asked ahead, submitted as Ray tasks; more as each ends
    assert "Ray: 3 trial(s) on the cluster" in said and "more as each ends" in said
    trials = records(tmp_path / "experiments" / "tuned")
    assert len(trials) == 4 and {t["status"] for t in trials} == {"completed"}
    assert {t["node"] for t in trials} == nodes



@pytest.mark.slow  # a long sweep; `pytest -m slow` runs it
def test_trials_on_either_node_are_pruned_against_every_record_of_the_sweep(
        cluster: tuple[str, set[str]], tmp_path: Path) -> None:
    address, nodes = cluster
    common = ("pruner=asha", "train.epochs=3", "dataset.limit=200", "sweep.name=pruned")
    first = sweep(address, tmp_path, "optimizer.learning_rate=0.01", *common)
    assert first.returncode == 0, first.stderr[-3000:]
    # The same sweep again with two hopeless trials, one on each node at once: each is judged
    # at its first rung against the good trial's record, written by another Ray worker earlier.
    done = sweep(address, tmp_path, "optimizer.learning_rate=1.0", "train.seed=0,1", *common)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = records(tmp_path / "experiments" / "pruned")
    (good,) = [t for t in trials if t["hparams"]["optimizer.learning_rate"] == 0.01]
    hopeless = [t for t in trials if t is not good]
    assert good["status"] == "completed" and len(hopeless) == 2
    assert [(t["status"], t["epochs_completed"], t["pruned"]["rung"]) for t in hopeless] == \
        [("pruned", 1, 1)] * 2
    assert {t["node"] for t in hopeless} == nodes
    board = pd.read_csv(tmp_path / "experiments" / "pruned" / "leaderboard.csv")
    assert board["status"].tolist() == ["completed", "pruned", "pruned"]


def test_an_address_where_no_cluster_answers_is_refused_at_once(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    done = run_cli("-m", "hydra/launcher=ray_cluster",
                   f"hydra.launcher.ray.init.address=127.0.0.1:{port}", "optimizer=adam,sgd",
                   cwd=tmp_path, env=ENV, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"sweeper: error: hydra.launcher.ray.init.address=127.0.0.1:{port}: no Ray cluster "
        f"answers there (Connection refused); start one with `ray start --head --port={port}` "
        "or give its head's HOST:PORT"]
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_local_cluster_without_a_gpu_is_refused_before_any_trial(tmp_path: Path) -> None:
    # The preset asks for one GPU per trial; a local cluster of a GPU-less machine has none.
    done = run_cli("-m", "hydra/launcher=ray_cluster", "+hydra.launcher.ray.init.num_gpus=0",
                   "+hydra.launcher.ray.init.include_dashboard=false", "optimizer=adam,sgd",
                   cwd=tmp_path, env=ENV, timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == (
        "sweeper: error: no node of the local Ray cluster started here has room for one trial: "
        "a trial asks for 1 CPU, 1 GPU; its nodes have at most 0 GPU "
        "(no GPU: set hydra.launcher.ray.remote.num_gpus=0)")
    assert not (tmp_path / "experiments").exists()


def test_room_on_a_running_cluster_is_counted_node_by_node(cluster: tuple[str, set[str]]) -> None:
    address, _ = cluster
    probe = ("import sys\nfrom omegaconf import OmegaConf\n"
             "from sweeper.cli import command\n"
             "from sweeper.launch.ray_cluster import check_ray_room\n"
             f"cfg = OmegaConf.create({{'init': {{'address': {address!r}}}, "
             "'remote': {'num_gpus': 0, 'resources': {'trial_slot': int(sys.argv[1])}}})\n"
             "with command():\n    print('room', check_ray_room(cfg))\n")
    rooms = {}
    for slots in (1, 2):
        done = subprocess.run([sys.executable, "-c", probe, str(slots)], capture_output=True,
                              text=True, timeout=120, env={**os.environ, **ENV})
        assert done.returncode == 0, done.stderr[-3000:]
        rooms[slots] = (done.stdout.split("room ")[-1].strip(), done.stderr)
    assert rooms[1][0] == "2"  # one trial on each node
    # Two slots are in the cluster, but on no single node: the trials would wait, so say so.
    assert rooms[2][0] == "0"
    assert (f"sweeper: warning: no node of the Ray cluster at {address} has room for one trial: "
            "a trial asks for 1 CPU, 2 trial_slot; its nodes have at most 1 trial_slot; the "
            "trials wait until such a node joins") in rooms[2][1]


def test_a_trial_whose_worker_dies_fails_alone_and_the_sweep_goes_on(
        cluster: tuple[str, set[str]], tmp_path: Path) -> None:
    address, _ = cluster
    sweep_dir = tmp_path / "sweep"
    done = subprocess.run(
        [sys.executable, str(PROBE), "-m", f"--config-dir={CONF}", "hydra/launcher=ray_cluster",
         f"hydra.launcher.ray.init.address={address}", "hydra.launcher.ray.remote.num_gpus=0",
         "+hydra.launcher.ray.remote.max_retries=0", f"hydra.sweep.dir={sweep_dir}",
         "+die_once=true,false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, **ENV})
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = {}
    for trial in sweep_dir.iterdir():
        if (trial / "trial.json").exists():
            record = json.loads((trial / "trial.json").read_text())
            outcome[trial.name] = (record["status"], record.get("error"),
                                   (trial / "probe.json").exists())
    assert sorted(outcome.values()) == [("completed", None, True),
                                        ("failed", "worker died: WorkerCrashedError", False)]
    log = done.stdout + done.stderr
    assert "trial #0 failed" in log and "trial #1 completed" in log, log[-3000:]
