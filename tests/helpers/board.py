"""A real TensorBoard server and its HParams HTTP API."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


@contextmanager
def tensorboard(logdir: Path) -> Iterator[str]:
    """A real TensorBoard server on a free loopback port; yields its base URL."""
    exe = Path(sys.executable).with_name("tensorboard")
    proc = subprocess.Popen([str(exe), "--logdir", str(logdir), "--port", "0", "--host",
                             "127.0.0.1", "--load_fast=false"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 90
        assert proc.stderr is not None
        for line in proc.stderr:
            match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            if match:
                yield match.group(1)
                return
            assert time.time() < deadline, "TensorBoard did not start"
        raise AssertionError("TensorBoard exited before serving")
    finally:
        proc.kill()
        proc.wait(timeout=30)


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def session_ends(run: Path) -> list[int]:
    """The statuses of the HParams session ends in a trial's TensorBoard run."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    ends = []
    for path in run.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == metadata.SESSION_END_INFO_TAG:
                    content = value.metadata.plugin_data.content
                    ends.append(metadata.parse_session_end_info_plugin_data(content).status)
    return ends
