"""The trial record (``trial.json``, schema 1), stable trial ids, and atomic file writes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import tempfile
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

SCHEMA = 1
RECORD = "trial.json"
_UMASK = os.umask(0)
os.umask(_UMASK)


class Status(str, Enum):
    """Where a trial stands; the value is what trial.json and the leaderboard show."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


_TUNER_TRIAL = re.compile(r"(?:^|,)tuner\.trial=('?[0-9]+'?)(?=,|$)")


def trial_id(override_dirname: str) -> str:
    """Stable, readable id of a trial from its sorted overrides (Hydra's ``override_dirname``).

    The same overrides give the same id in every run of a sweep, so a re-run finds earlier work.
    The hash keeps ids distinct when the readable part is shortened or loses characters.
    """
    if not override_dirname:
        return "default"
    readable = override_dirname
    # A searched trial leads with the tuner's trial number, so its folders sort in search order.
    searched = _TUNER_TRIAL.search(override_dirname)
    if searched:
        rest = (override_dirname[:searched.start()] + override_dirname[searched.end():]).strip(",")
        readable = f"{searched.group(1).strip(chr(39))}_{rest}"
    readable = re.sub(r"[^A-Za-z0-9.=_-]+", "_", readable.replace(",", "_"))[:80]
    digest = hashlib.sha1(override_dirname.encode()).hexdigest()[:8]
    return f"{readable.strip('_')}-{digest}"


def node_name() -> str:
    """The machine a trial runs on: the Ray node id inside a Ray worker, else the host name."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return str(ray.get_runtime_context().get_node_id())
    return socket.gethostname()


def now_iso() -> str:
    """Current time, ISO-8601 with time zone."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide records from other readers
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically write ``data`` as indented JSON (NaN and infinities become null)."""
    write_atomic(path, json.dumps(_finite(data), indent=2) + "\n")


def read_record(trial_dir: Path) -> dict[str, Any] | None:
    """The trial's record, or None when there is none or it cannot be read."""
    try:
        data = json.loads((trial_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def config_yaml(cfg: Any) -> str:
    """The resolved configuration a trial runs with (what its ``config.yaml`` holds)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg, resolve=True)


# Keys that say where a trial's files go or how a re-run treats it, not what it computes.
BOOKKEEPING = ("paths.", "sweep.name", "sweep.retry_failed")


def config_difference(old_yaml: str, new_yaml: str) -> str | None:
    """The first key that changes what a trial computes, as ``key: old -> new`` (None: same)."""
    import yaml

    def flat(node: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                out.update(flat(value, f"{prefix}{key}."))
            return out
        return {} if prefix.startswith(BOOKKEEPING) else {prefix.rstrip("."): node}

    old, new = flat(yaml.safe_load(old_yaml)), flat(yaml.safe_load(new_yaml))
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) != new.get(key):
            return f"{key}: {old.get(key)} -> {new.get(key)}"
    return None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
