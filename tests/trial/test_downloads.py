"""Keras datasets download once, before any trial, through Keras's own get_file, from a local
mirror (tiny files in the real formats on 127.0.0.1); a corrupt file or a wrong hash is refused."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import records, run_cli
from helpers.mirror import SERVED, TEST, TRAIN, Mirror, serve, sha256

from sweeper.downloads import Download
from sweeper.errors import DownloadError
from sweeper.trial import data


@pytest.fixture
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    with serve(tmp_path_factory.mktemp("mirror")) as m:
        yield m


@pytest.mark.parametrize("name", list(SERVED))
def test_dataset_files_are_what_keras_datasets_download(compose_config, tmp_path, monkeypatch,
                                                        name) -> None:
    """The origins, cache names and hashes in conf/dataset/ are Keras's own: load_data() is run
    with get_file recording its arguments and handing back the tiny files."""
    from helpers.mirror import WRITERS
    from keras.src.utils.file_utils import get_file

    WRITERS[name](tmp_path)
    module = importlib.import_module(f"keras.src.datasets.{name}")
    calls = []

    class Recorded(Exception):
        pass

    def recording(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        bound = inspect.signature(get_file).bind(*args, **kwargs)
        bound.apply_defaults()
        calls.append({k: bound.arguments[k] for k in
                      ("origin", "fname", "file_hash", "cache_subdir", "extract")})
        if name == "fashion_mnist":  # its reader takes any number of examples: let it read
            return str(tmp_path / bound.arguments["fname"])
        raise Recorded

    monkeypatch.setattr(module, "get_file", recording)
    try:
        module.load_data()
    except Recorded:
        pass
    ours = [dict(f) for f in compose_config(f"dataset={name}").dataset.files]
    if name == "fashion_mnist":  # Keras checks no hash here; ours are the publisher's sha256
        assert [c.pop("file_hash") for c in calls] == [None] * 4
        assert all(len(f.pop("file_hash")) == 64 for f in ours)
    assert ours == calls


def _cfg(compose_config, *overrides: str):
    return compose_config(*overrides).dataset


def test_downloads_once_then_reads_the_cache(compose_config, mirror, tmp_path,
                                             monkeypatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    datasets = [_cfg(compose_config, *mirror.overrides(n)) for n in SERVED]
    data.fetch(datasets)
    assert sorted(mirror.requests) == sorted(f for files in SERVED.values() for f in files)
    data.fetch(datasets)  # the second time nothing is fetched
    assert len(mirror.requests) == 7
    for d in datasets:  # each reads as its real counterpart would, in Keras's cache layout
        s = data.load(d, 0.2)
        assert len(s.x_train) + len(s.x_val) == TRAIN and len(s.x_test) == TEST
        assert s.input_shape == ((28, 28, 1) if "mnist" in d.name else (32, 32, 3))
        assert s.num_classes == (100 if d.name == "cifar100" else 10)
    assert (tmp_path / "keras" / "datasets" / "cifar-10-batches-py-target").is_dir()
    assert data.load(datasets[3], 0.2).class_names[:2] == ("class00", "class01")


def test_a_corrupt_file_in_the_cache_is_deleted_and_fetched_again(compose_config, mirror,
                                                                  tmp_path, monkeypatch,
                                                                  caplog) -> None:
    cache = tmp_path / "keras" / "datasets"
    cache.mkdir(parents=True)
    (cache / "mnist.npz").write_bytes((mirror.folder / "mnist.npz").read_bytes()[:100])
    d = _cfg(compose_config, *mirror.overrides("mnist"), f"dataset.cache_dir={tmp_path / 'keras'}")
    data.fetch([d])
    assert "does not match its hash" in caplog.text and "(corrupt or truncated)" in caplog.text
    assert mirror.requests == ["mnist.npz"]
    assert sha256(cache / "mnist.npz") == sha256(mirror.folder / "mnist.npz")


def test_a_wrong_hash_is_refused_and_the_download_deleted(compose_config, mirror,
                                                         tmp_path) -> None:
    d = _cfg(compose_config, "dataset=mnist", f"dataset.origin={mirror.url}",
             f"dataset.cache_dir={tmp_path / 'keras'}", "dataset.files.0.file_hash=" + "0" * 64)
    with pytest.raises(DownloadError, match=r"^dataset=mnist: http://127\.0\.0\.1:\d+/mnist\.npz "
                                           r"does not hold the expected file"):
        data.fetch([d])
    assert not (tmp_path / "keras" / "datasets" / "mnist.npz").exists()


def test_a_folder_serves_as_the_origin(compose_config, mirror, tmp_path) -> None:
    d = _cfg(compose_config, *mirror.overrides("cifar10"), f"dataset.origin={mirror.folder}",
             f"dataset.cache_dir={tmp_path}")
    data.fetch([d])
    assert mirror.requests == []  # read from the folder, not the server
    assert len(data.load(d, 0.2).x_test) == TEST


def test_cache_paths_are_where_keras_puts_them(tmp_path) -> None:
    archive = Download("https://x/y.tar.gz", "cifar-10-batches-py-target", extract=True)
    assert archive.target(tmp_path) == tmp_path / "datasets/cifar-10-batches-py-target_archive"
    assert archive.extracted(tmp_path) == tmp_path / "datasets/cifar-10-batches-py-target"
    named = Download("https://x/a.tar.gz", "a.tar.gz", extract=True, cache_subdir="w")
    assert named.extracted(tmp_path) == tmp_path / "w/a_extracted"
    assert Download("https://h/p/f.gz", "f.gz").mirrored("http://m/base").origin == \
        "http://m/base/f.gz"


def test_sweep_downloads_once_before_its_trials_and_a_second_run_nothing(mirror, tmp_path) -> None:
    keras_home = {"KERAS_HOME": str(tmp_path / "keras")}
    done = run_cli("-m", "model=cnn", "optimizer=adam,sgd", *mirror.overrides("fashion_mnist"),
                   "train.epochs=1", "train.batch_size=8", "sweep.name=fashion", cwd=tmp_path,
                   env=keras_home)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(mirror.requests) == sorted(SERVED["fashion_mnist"])  # each file once
    assert done.stderr.count("fetched into") == 4
    assert [r["status"] for r in records(tmp_path / "experiments" / "fashion")] == \
        ["completed"] * 2
    again = run_cli(*mirror.overrides("fashion_mnist"), "train.epochs=1", "train.batch_size=8",
                    "sweep.name=again", cwd=tmp_path, env=keras_home)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(mirror.requests) == 4 and "fetched" not in again.stderr
    (record,) = records(tmp_path / "experiments" / "again")
    assert record["status"] == "completed" and np.isfinite(record["metrics"]["test_accuracy"])


def test_a_wrong_hash_on_the_command_line_is_one_line_and_writes_nothing(mirror,
                                                                         tmp_path) -> None:
    keras_home = tmp_path / "keras"
    done = run_cli("dataset=fashion_mnist", f"dataset.origin={mirror.url}", cwd=tmp_path,
                   env={"KERAS_HOME": str(keras_home)})  # the real hashes: not the tiny files
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("sweeper: error: dataset=fashion_mnist: http://127.0.0.1:")
    assert "train-labels-idx1-ubyte.gz does not hold the expected file" in lines[0]
    assert list(tmp_path.iterdir()) == []  # not even the cache folder
    assert Path(mirror.folder).is_dir()
