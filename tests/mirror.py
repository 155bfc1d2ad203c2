"""A mirror of the Keras datasets for the tests: tiny files in the real formats, served by a local
HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

# File names at the origin, in the order of the dataset's `files` list.
SERVED = {
    "mnist": ["mnist.npz"],
    "fashion_mnist": ["train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                      "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"],
    "cifar10": ["cifar-10-python.tar.gz"],
    "cifar100": ["cifar-100-python.tar.gz"],
}
TRAIN, TEST = 40, 10  # examples in each tiny dataset's train and test splits


def _pixels(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def write_mnist(folder: Path) -> None:
    np.savez(folder / "mnist.npz", x_train=_pixels(TRAIN, (28, 28), 0),
             y_train=np.arange(TRAIN, dtype=np.uint8) % 10,
             x_test=_pixels(TEST, (28, 28), 1), y_test=np.arange(TEST, dtype=np.uint8))


def write_fashion(folder: Path) -> None:
    for prefix, count in (("train", TRAIN), ("t10k", TEST)):
        labels = bytes(8) + bytes(np.arange(count, dtype=np.uint8) % 10)
        images = bytes(16) + _pixels(count, (28, 28), count).tobytes()
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels, mtime=0))
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images, mtime=0))


def _tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _batch(n: int, seed: int, label_key: bytes, classes: int) -> bytes:
    batch = {b"data": _pixels(n, (3 * 32 * 32,), seed),
             label_key: [i % classes for i in range(n)]}
    return pickle.dumps(batch)


def write_cifar10(folder: Path) -> None:
    per = TRAIN // 5
    members = {f"cifar-10-batches-py/data_batch_{i}": _batch(per, i, b"labels", 10)
               for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = _batch(TEST, 9, b"labels", 10)
    _tar(folder / "cifar-10-python.tar.gz", members)


def write_cifar100(folder: Path) -> None:
    names = [f"class{i:02d}".encode() for i in range(100)]
    _tar(folder / "cifar-100-python.tar.gz", {
        "cifar-100-python/train": _batch(TRAIN, 0, b"fine_labels", 100),
        "cifar-100-python/test": _batch(TEST, 1, b"fine_labels", 100),
        "cifar-100-python/meta": pickle.dumps({b"fine_label_names": names}),
    })


WRITERS = {"mnist": write_mnist, "fashion_mnist": write_fashion, "cifar10": write_cifar10,
           "cifar100": write_cifar100}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hash_overrides(name: str, folder: Path) -> list[str]:
    """The overrides that make dataset ``name`` expect the tiny files in ``folder``."""
    return [f"dataset.files.{i}.file_hash={sha256(folder / f)}"
            for i, f in enumerate(SERVED[name])]


@dataclass
class Mirror:
    """A folder of tiny dataset files and the URL it is served at."""

    folder: Path
    url: str
    requests: list[str] = field(default_factory=list)

    def overrides(self, name: str) -> list[str]:
        """``dataset=name`` from this mirror, expecting its files' hashes."""
        return [f"dataset={name}", f"dataset.origin={self.url}",
                *hash_overrides(name, self.folder)]


@contextmanager
def serve(folder: Path) -> Iterator[Mirror]:
    """Serve ``folder`` on 127.0.0.1 (a free port) while the block runs; the mirror records the
    files asked for."""
    for writer in WRITERS.values():
        writer(folder)
    mirror = Mirror(folder, "")

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            mirror.requests.append(self.path.lstrip("/"))
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
