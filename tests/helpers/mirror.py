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


def learnable(n: int, seed: int, classes: int = 10) -> np.ndarray:
    """``n`` 28x28 images whose class (``i % classes``) can be learnt: each class has its own
    pattern of soft blobs (the same for every seed), shifted by up to 5 pixels, dimmed by up to
    a third and drowned in noise, so a model must generalise, not memorise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    shapes = np.random.default_rng(1234)
    prototypes = []
    for _ in range(classes):
        image = np.zeros((28, 28))
        for _ in range(4):
            cy, cx = shapes.uniform(6, 22, 2)
            sy, sx = shapes.uniform(1.5, 5, 2)
            image += np.exp(-((yy - cy) ** 2 / (2 * sy ** 2) + (xx - cx) ** 2 / (2 * sx ** 2)))
        prototypes.append(image / image.max())
    out = np.empty((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        shifted = np.roll(prototypes[i % classes], tuple(rng.integers(-5, 6, 2)), axis=(0, 1))
        image = 255 * shifted * rng.uniform(0.67, 1.0) + rng.normal(0, 70, (28, 28))
        out[i] = np.clip(image, 0, 255).astype(np.uint8)
    return out


def write_fashion(folder: Path, train: int = TRAIN, test: int = TEST,
                  learn: bool = False) -> None:
    """Fashion-MNIST's four IDX files: random pixels, or (``learn``) :func:`learnable` images."""
    for prefix, count in (("train", train), ("t10k", test)):
        labels = bytes(8) + bytes((np.arange(count) % 10).astype(np.uint8))
        pixels = learnable(count, count) if learn else _pixels(count, (28, 28), count)
        images = bytes(16) + pixels.tobytes()
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
def serve(folder: Path, write: bool = True) -> Iterator[Mirror]:
    """Serve ``folder`` on 127.0.0.1 (a free port) while the block runs, after writing every
    tiny dataset into it (``write``); the mirror records the files asked for."""
    for writer in WRITERS.values() if write else ():
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
