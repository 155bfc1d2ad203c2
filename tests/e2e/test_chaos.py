"""The chaos run (benchmarks/chaos.py) as a slow test: random kills and Ctrl-C, then resume."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.paths import BENCHMARKS

CHAOS = BENCHMARKS / "chaos.py"


@pytest.mark.slow
def test_interrupted_sweep_resumes_with_nothing_lost(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(CHAOS), "--rounds", "3", "--seed", "3",
                           "--out", str(tmp_path), "train.backup_every_s=0"],
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    pairs = (line.rsplit(None, 1) for line in done.stdout.splitlines()[-8:])
    figures = {key.strip(): value for key, value in pairs}
    assert figures["trials completed"] == "12"
    assert figures["trials re-run needlessly"] == "0"
    assert figures["invalid files"] == "0"
    # A backup after every epoch: an interruption costs at most the epoch it cut short (the
    # default budget's bound, the epochs since the last backup, is tests/e2e/test_resume.py's).
    assert int(figures["of them, per interrupted trial at most"]) <= 1
