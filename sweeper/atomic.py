"""Crash-safe writes: beside the target, flushed to disk, renamed into place; and the digest
that tells a file is the one that was written.

Readers see the old file or the new one, never a part: a kill, a full disk or a lost machine at
any moment leaves every record, config and leaderboard valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide records from other readers
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of the file at ``path`` (``algorithm``: a :mod:`hashlib` name)."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:  # hashlib.file_digest would do, from Python 3.11 on
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON (NaN and infinities become null)."""
    write_atomic(path, json.dumps(finite(data), indent=2) + "\n")


def finite(value: Any) -> Any:
    """``value`` with every NaN and infinity replaced by None (JSON has no such numbers)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
