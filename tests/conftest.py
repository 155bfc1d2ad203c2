"""Shared fixtures: the real configuration composed once, and the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from sweeper.config.schema import CONFIG_MODULE, register

# Not sweeper.app: its @hydra.main sets Hydra's version base for the whole test process, which
# would change what Hydra's own launcher suites expect.
register()

# Quiet TensorFlow's C++ start-up chatter in the subprocesses the tests run.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def compose_config() -> Iterator[Callable[..., DictConfig]]:
    """Compose conf/config.yaml with overrides, as Hydra would for one trial (``hydra=True``:
    with Hydra's own node, which records the option chosen in each group)."""
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3",
                                  job_name="trial"):
        yield lambda *overrides, hydra=False: compose("config", overrides=list(overrides),
                                                      return_hydra_config=hydra)


def sigint_default() -> None:
    """``preexec_fn`` of a child a test interrupts: SIGINT back to its default action. A suite
    started in the background of a non-interactive shell (nohup, some CI runners) runs with
    SIGINT ignored, and its children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, cwd: Path, module: str = "sweeper",
            env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m <module> args`` in ``cwd`` and return the finished process."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def preflight_many(rows: list[tuple[Path, list[str]]]) -> list[dict]:
    """Each ``(folder, argv)`` through the command's preflight, all in one process
    (tests/helpers/preflight_rows.py): ``{"status", "stderr"}`` per row."""
    script = Path(__file__).parent / "helpers" / "preflight_rows.py"
    done = subprocess.run([sys.executable, str(script)],
                          input=json.dumps([[str(cwd), argv] for cwd, argv in rows]),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout))


def records(sweep_dir: Path) -> list[dict]:
    """Every trial.json of a sweep, sorted by trial id."""
    paths = sorted(sweep_dir.glob("trials/*/trial.json"))
    return [json.loads(p.read_text()) for p in paths]


@pytest.fixture(scope="session", autouse=True)
def _own_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What sweeper caches (targets' signatures) goes to this session's folder, for the tests
    and the commands they run, not to the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def grid_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real 4-trial grid sweep on digits (1 epoch each), shared by the tests that read it."""
    cwd = tmp_path_factory.mktemp("grid")
    done = run_cli("-m", "optimizer=adam,sgd", "model.units=8,16", "train.epochs=1",
                   "sweep.name=grid", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd


@pytest.fixture(autouse=True)
def _isolate_hydra(hydra_restore_singletons: None) -> Iterator[None]:
    """Undo what a test leaves in Hydra's singletons (version base, ConfigStore, resolvers)."""
    yield


def start(cwd: Path, *args: str) -> subprocess.Popen:
    """A sweep started in the background, SIGINT at its default, its output piped."""
    return subprocess.Popen([sys.executable, "-m", "sweeper", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                            preexec_fn=sigint_default)


def poll(sweep_dir: Path, proc: subprocess.Popen, condition, timeout: float = 180) -> dict:
    """The first record of ``sweep_dir`` that meets ``condition`` while ``proc`` runs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        for record in records(sweep_dir):
            if condition(record):
                return record
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the sweep")
