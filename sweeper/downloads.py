"""Files Keras downloads (datasets, pretrained weights), fetched once, before any trial starts.

The sweep process never imports TensorFlow, yet a sweep must download once rather than have N
workers race to write one file. So :func:`ensure` checks the Keras cache here, cheaply (the file
is there and its hash matches, with :mod:`hashlib`), and only when something must be fetched runs
Keras's own ``keras.utils.get_file`` in a short child process (``python -m
sweeper.downloads``), which shows Keras's progress bar on a terminal. A file whose hash
does not match is deleted and reported; a file that cannot be had is one line naming the URL and
where to place the file by hand. Nothing is left behind by a failed download.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sweeper.atomic import file_digest
from sweeper.errors import DownloadError, first_line

log = logging.getLogger(__name__)

# A download that stalls this long (no byte received) fails instead of hanging the sweep.
SOCKET_TIMEOUT_S = 60


@dataclass(frozen=True)
class Download:
    """One file as ``keras.utils.get_file`` takes it (its own argument names)."""

    origin: str
    fname: str
    file_hash: str | None = None
    cache_subdir: str = "datasets"
    extract: bool = False

    def target(self, cache_dir: Path) -> Path:
        """Where get_file keeps the downloaded file (for an archive: the archive itself)."""
        folder = cache_dir / self.cache_subdir
        if self.extract and "." not in self.fname:
            return folder / f"{self.fname}_archive"
        return folder / self.fname

    def extracted(self, cache_dir: Path) -> Path | None:
        """The folder get_file extracts an archive into (None: not an archive)."""
        if not self.extract:
            return None
        folder = cache_dir / self.cache_subdir
        if "." in self.fname:
            return folder / f"{self.fname[:self.fname.find('.')]}_extracted"
        return folder / self.fname

    def mirrored(self, origin: str | None) -> Download:
        """This file fetched from ``origin`` (a base URL or a folder) under its own file name."""
        if not origin:
            return self
        name = Path(urlsplit(self.origin).path).name
        base = origin if "://" in origin else Path(origin).expanduser().resolve().as_uri()
        return Download(f"{base.rstrip('/')}/{name}", self.fname, self.file_hash,
                        self.cache_subdir, self.extract)


def keras_home(cache_dir: str | None = None) -> Path:
    """The Keras cache folder: ``cache_dir``, else ``$KERAS_HOME``, else ``~/.keras``."""
    return Path(cache_dir or os.environ.get("KERAS_HOME") or "~/.keras").expanduser()


_verified: dict[tuple[str, int, int, str], bool] = {}


def matches(path: Path, file_hash: str) -> bool:
    """Whether ``path`` has ``file_hash`` (sha256, or md5 for a 32-digit hash), as Keras checks;
    remembered per size and modification time, so every trial of a sweep costs one hash."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, file_hash)
    if key not in _verified:
        algorithm = "md5" if len(file_hash) == 32 else "sha256"
        _verified[key] = file_digest(path, algorithm) == file_hash
    return _verified[key]


def missing(downloads: Iterable[Download], cache_dir: Path) -> list[Download]:
    """The downloads not yet usable in ``cache_dir``; a file there whose hash does not match is
    deleted (and logged), so that it is fetched again."""
    out = []
    for d in dict.fromkeys(downloads):  # each file once, in order
        target, extracted = d.target(cache_dir), d.extracted(cache_dir)
        if extracted is not None and extracted.is_dir():
            continue  # what the loaders read is there (the archive may be gone)
        if target.is_file() and d.file_hash and not matches(target, d.file_hash):
            log.warning("%s does not match its hash %s (corrupt or truncated): deleted, "
                        "fetching it again", target, d.file_hash)
            target.unlink()
        if not target.is_file() or extracted is not None:
            out.append(d)
    return out


def ensure(downloads: Sequence[Download], cache_dir: Path,
           what: str | Mapping[Download, str]) -> None:
    """Make every download usable in the Keras cache ``cache_dir``, fetching what is missing in
    one child process; raise :class:`DownloadError` (one line, naming what needs the file:
    ``what``, or ``what[download]``) when a file cannot be had, leaving nothing behind."""
    needed = missing(downloads, cache_dir)
    if not needed:
        return
    fresh = _new_folders(cache_dir, {d.cache_subdir for d in needed})
    failure = _run_child(needed, cache_dir)
    if failure is None:
        for d in needed:
            log.info("%s: %s fetched into %s", _name(what, d), d.origin,
                     d.target(cache_dir).parent)
        return
    for folder in reversed(fresh):  # the folders the attempt made, deepest first, if empty
        try:
            folder.rmdir()
        except OSError:
            pass
    d = needed[failure["index"]]
    name = _name(what, d)
    if failure.get("corrupt"):
        raise DownloadError(f"{name}: {d.origin} does not hold the expected file ({d.fname} "
                           f"should have hash {d.file_hash}); the download was deleted")
    hashed = f" (hash {d.file_hash})" if d.file_hash else ""
    mirror = ", or set dataset.origin to a mirror" if d.cache_subdir == "datasets" else ""
    raise DownloadError(f"{name}: cannot download {d.origin} ({failure['error']}); place that "
                        f"file at {d.target(cache_dir)}{hashed}{mirror}")


def _name(what: str | Mapping[Download, str], download: Download) -> str:
    return what if isinstance(what, str) else what[download]


def _new_folders(cache_dir: Path, subdirs: Iterable[str]) -> list[Path]:
    """The folders from ``cache_dir`` down to each subdir that do not exist yet, outermost first."""
    out: list[Path] = []
    for sub in sorted(subdirs):
        path = cache_dir / sub
        chain = [path, *path.parents]
        for folder in reversed(chain):
            if not folder.exists() and folder not in out:
                out.append(folder)
    return out


def _run_child(needed: Sequence[Download], cache_dir: Path) -> dict | None:
    """Run Keras's get_file for ``needed`` in a child process; None on success, else the
    failure the child reports: ``{"index", "error", "corrupt"}``."""
    request = {"cache_dir": str(cache_dir), "downloads": [asdict(d) for d in needed]}
    # On a terminal the user sees Keras's own progress bar; elsewhere its output would only
    # clutter logs (each fetched file is logged instead).
    terminal = sys.stderr.isatty()
    # Importing Keras writes keras.json into $KERAS_HOME: the child's is a scratch folder, so
    # a failed download leaves nothing (get_file is told the cache folder).
    with tempfile.TemporaryDirectory(prefix="sweeper-keras-") as scratch:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_HOME": scratch}
        done = subprocess.run([sys.executable, "-m", __name__], input=json.dumps(request),
                              stdout=None if terminal else subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=env)
    if done.returncode == 0:
        return None
    for line in reversed(done.stderr.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else \
        f"exit status {done.returncode}"
    return {"index": 0, "error": reason, "corrupt": False}


def _fetch(request: dict) -> None:
    """The child: keras.utils.get_file for each download; the first failure is reported as one
    JSON line on stderr, after deleting a file that did not match its hash."""
    import socket

    socket.setdefaulttimeout(SOCKET_TIMEOUT_S)
    cache_dir = Path(request["cache_dir"])
    # get_file falls back to /tmp/.keras when the cache folder is not there or not writable:
    # sweeper's loaders would then not find the file.
    cache_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(cache_dir, os.W_OK):
        _report(0, f"{cache_dir} is not writable", False)
    from keras.utils import get_file

    for index, fields in enumerate(request["downloads"]):
        d = Download(**fields)
        try:
            get_file(d.fname, d.origin, file_hash=d.file_hash, cache_subdir=d.cache_subdir,
                     extract=d.extract, cache_dir=str(cache_dir))
        except Exception as e:  # Keras raises plain Exception for fetch failures
            target = d.target(cache_dir)
            corrupt = target.is_file() and bool(d.file_hash) and \
                not matches(target, str(d.file_hash))
            if corrupt:
                target.unlink()
            _report(index, _reason(e), corrupt)


def _reason(error: Exception) -> str:
    """Keras's fetch failure without the URL the message will name anyway."""
    text = first_line(str(error)) or type(error).__name__
    if text.startswith("URL fetch failure on ") and " -- " in text:
        head, reason = text.split(" -- ", 1)
        code = head.rsplit(": ", 1)[-1]
        return reason if code == "None" else f"HTTP {code} {reason}"
    return text


def _report(index: int, error: str, corrupt: bool) -> None:
    print(json.dumps({"index": index, "error": error, "corrupt": corrupt}), file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    _fetch(json.loads(sys.stdin.read()))
