"""A throwaway Ray cluster on this machine, for the Ray test and the Ray benchmark.

Every node is started by ``ray start`` in a session of its own, and stopping the cluster signals
the processes of those sessions (GCS, raylets, agents, workers) and nothing else: a Ray cluster
that is already running on the machine is left alone, where ``ray stop`` would stop it too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

RAY = str(Path(sys.executable).parent / "ray")
# A cluster of our own: no token from an earlier local Ray in ~/.ray, no usage reporting.
ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_members(sessions: set[int]) -> list[int]:
    """Live (non-zombie) processes whose session id is one of ``sessions``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) in sessions:
            found.append(int(proc.name))
    return found


class LocalRay:
    """``with LocalRay(nodes=2, cpus=1) as address:`` a head and ``nodes - 1`` nodes joining it,
    all on 127.0.0.1, each with ``cpus`` CPUs, no GPU and the extra ``node_args``."""

    def __init__(self, nodes: int = 1, cpus: int = 1, node_args: tuple[str, ...] = ()) -> None:
        self.nodes, self.cpus, self.node_args = nodes, cpus, node_args
        self.address = f"127.0.0.1:{free_port()}"
        self.env = {**os.environ, **ENV}
        self.sessions: set[int] = set()
        self.left: list[int] = []  # processes that outlived stop(): none, unless it failed
        self.temp = ""

    def _start(self, *args: str) -> None:
        common = [f"--num-cpus={self.cpus}", "--num-gpus=0", "--object-store-memory=100000000",
                  "--node-ip-address=127.0.0.1", "--disable-usage-stats", *self.node_args]
        proc = subprocess.Popen([RAY, "start", *args, *common], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        self.sessions.add(proc.pid)  # a new session's id is its leader's pid
        out, _ = proc.communicate(timeout=120)
        if proc.returncode:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{out[-2000:]}")

    def __enter__(self) -> str:
        self.temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: socket paths are limited
        try:
            self._start("--head", f"--port={self.address.split(':')[1]}",
                        "--include-dashboard=false", f"--temp-dir={self.temp}")
            for _ in range(self.nodes - 1):
                self._start(f"--address={self.address}")
        except BaseException:
            self.stop()
            raise
        return self.address

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> list[int]:
        """Kill this cluster's processes, as ``ray stop --force`` would (Ray's own processes take
        many seconds over a SIGTERM); returns those alive after 30 s, kept in ``self.left``."""
        deadline = time.time() + 30
        while (members := session_members(self.sessions)) and time.time() < deadline:
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        self.left = session_members(self.sessions)
        shutil.rmtree(self.temp, ignore_errors=True)
        return self.left
