"""Files a sweep fetches from the internet, fetched once, before any trial, into Keras's cache.

The sweep process checks the cache itself (``$KERAS_HOME``, default ``~/.keras``, as Keras
does) and verifies each file's hash; what is missing is fetched by Keras's own
``keras.utils.get_file`` in one short child process, so that TensorFlow stays out of the sweep
process and N workers never race for the same file. A file that cannot be fetched stops the
command with one line naming its URL and where to place it by hand.

``python -m sweeper.downloads REQUEST RESULT`` is that child.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from sweeper.errors import DownloadError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Download:
    """One file, as ``keras.utils.get_file`` takes it."""

    origin: str  # its URL
    fname: str  # its name in the cache folder
    cache_subdir: str  # the cache's sub-folder: "models", "datasets"
    file_hash: str | None = None  # md5 (32 hex digits) or sha256 (64), as Keras checks it
    key: str = ""  # the configuration key that asks for it, for messages

    def path(self) -> Path:
        """Where Keras keeps it."""
        home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
        return Path(home).expanduser() / self.cache_subdir / self.fname

    def cached(self) -> bool:
        path = self.path()
        if not path.is_file():
            return False
        if self.file_hash is None:
            return True
        digest = hashlib.sha256() if len(self.file_hash) == 64 else hashlib.md5()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest() == self.file_hash


def ensure(downloads: Iterable[Download | None]) -> None:
    """Fetch every file not yet in the cache (or whose hash is wrong); raise
    :class:`DownloadError` naming the first that cannot be fetched."""
    missing = [d for d in dict.fromkeys(d for d in downloads if d is not None) if not d.cached()]
    if not missing:
        return
    with tempfile.TemporaryDirectory(prefix="sweeper-downloads-") as tmp:
        request, result = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request.write_text(json.dumps([asdict(d) for d in missing]))
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run([sys.executable, "-m", "sweeper.downloads", str(request),
                               str(result)], env=env, capture_output=True, text=True)
        try:
            failures = json.loads(result.read_text())
        except (OSError, ValueError):
            tail = " | ".join(done.stderr.strip().splitlines()[-2:])
            failures = [{"fname": missing[0].fname, "error": tail or f"exit {done.returncode}"}]
    for failure in failures:
        d = next(m for m in missing if m.fname == failure["fname"])
        raise DownloadError(f"{d.key or d.fname}: cannot download {d.origin} ({failure['error']});"
                            f" place that file at {d.path()}")
    for d in missing:
        log.info("downloaded %s into %s", d.origin, d.path().parent)


def _fetch(request: Path, result: Path) -> None:
    """The child: fetch each requested file with Keras; write the failures to ``result``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    failures = []
    for item in json.loads(request.read_text()):
        d = Download(**item)
        try:
            keras.utils.get_file(d.fname, d.origin, cache_subdir=d.cache_subdir,
                                 file_hash=d.file_hash)
        except Exception as e:  # Keras raises plain Exception for a failed fetch
            failures.append({"fname": d.fname, "error": _reason(e)})
    result.write_text(json.dumps(failures))


def _reason(e: BaseException) -> str:
    root: BaseException = e
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    text = str(getattr(root, "reason", None) or root).strip().splitlines() or [type(root).__name__]
    return text[0][:200]


if __name__ == "__main__":
    _fetch(Path(sys.argv[1]), Path(sys.argv[2]))
