"""Your own model and optimizer: `_target_` options, their signatures checked before any work,
keras.applications backbones, schedules, the two training phases, the GPU speed switches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import records, run_cli
from helpers.paths import APPS

USER = {"PYTHONPATH": str(APPS)}
TINY = ("train.epochs=1", "dataset.limit=200")


@pytest.fixture
def user_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(APPS))


def test_your_own_builder_is_swept_with_its_own_arguments(tmp_path: Path) -> None:
    done = run_cli("-m", "model=custom", "model._target_=nets.build", "+model.depth=2,4",
                   "schedule=warmup_cosine", "optimizer=sgd", "optimizer.momentum=0.9", *TINY,
                   "sweep.name=mine", cwd=tmp_path, env=USER)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "experiments" / "mine"
    found = records(sweep)
    assert [r["status"] for r in found] == ["completed"] * 2
    assert {r["hparams"]["model.depth"] for r in found} == {2, 4}
    assert {r["hparams"]["model"] for r in found} == {"custom"}
    assert {r["hparams"]["model._target_"] for r in found} == {"nets.build"}
    assert {(r["hparams"]["schedule"], r["hparams"]["schedule.warmup_epochs"],
             r["hparams"]["optimizer.momentum"]) for r in found} == {("warmup_cosine", 1, 0.9)}
    board = pd.read_csv(sweep / "leaderboard.csv")
    assert sorted(board["hp.model.depth"]) == [2, 4]
    # the builder got its argument: as many hidden layers as model.depth
    import keras

    for record in found:
        trial_dir = sweep / "trials" / record["trial_id"]
        model = keras.models.load_model(trial_dir / record["checkpoint"])
        hidden = [layer for layer in model.get_layer("nets").layers
                  if layer.name.startswith("hidden_")]
        assert len(hidden) == record["hparams"]["model.depth"]
    # TensorBoard's HParams experiment declares the builder's argument with the swept values
    domains = _experiment_domains(tmp_path / "logs" / "mine")
    assert domains["model.depth"] == [2.0, 4.0] and domains["model"] == ["custom"]
    assert domains["schedule.warmup_epochs"] == [1.0] and domains["optimizer.momentum"] == [0.9]


def _experiment_domains(logdir: Path) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    (path,) = logdir.glob("events.out.tfevents.*.hparams")
    for event in EventFileLoader(str(path)).Load():
        for value in event.summary.value:
            if value.tag == metadata.EXPERIMENT_TAG:
                data = metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)
                return {h.name: [getattr(v, v.WhichOneof("kind")) for v in h.domain_discrete.values]
                        for h in data.hparam_infos}
    raise AssertionError("no HParams experiment")


@pytest.mark.parametrize("args,message", [
    (["+model.dept=2"], "model.dept: not an argument of nets.build (it takes depth, units)"),
    ([], "model.depth: required by nets.build; set it with +model.depth=VALUE"),
    (["+model.depth=two"], "model.depth=two: must be an integer (argument of nets.build)"),
    (["model._target_=nets.nope", "+model.depth=2"],
     "model._target_=nets.nope: not found (module nets has no 'nope')"),
])
def test_a_wrong_builder_argument_is_refused_before_any_work(tmp_path: Path, args: list[str],
                                                             message: str) -> None:
    done = run_cli("-m", "model=custom", "model._target_=nets.build", *args, "train.epochs=1",
                   cwd=tmp_path, env=USER)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"sweeper: error: {message}", done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_sweep_process_reads_signatures_without_importing_them(tmp_path: Path) -> None:
    # nets imports Keras at its top, and keras.optimizers is Keras itself: neither may run in
    # the sweep process, whose preflight checks every option against its target.
    code = ("import sys\n"
            "from sweeper import preflight\n"
            "preflight.check(['-m', 'model=custom', 'model._target_=nets.build',\n"
            "                 '+model.depth=2,4', 'optimizer=adam,sgd,adamw,nadam',\n"
            "                 'schedule=cosine,warmup_cosine', 'train.epochs=1'])\n"
            "heavy = [m for m in ('nets', 'keras', 'tensorflow') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **USER})
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_target_made_at_import_time_is_read_in_a_child_process(user_modules: None) -> None:
    from sweeper.config.signatures import signature

    sig = signature("nets.deep")  # functools.partial(build, depth=3): only running it tells
    assert sig.names() == ["input_shape", "num_classes", "depth", "units"]
    assert not sig.get("depth").required and "nets" not in sys.modules


def test_keras_optimizers_take_what_keras_takes_with_their_base_class() -> None:
    import inspect

    import keras
    from keras.src.optimizers.base_optimizer import BaseOptimizer

    from sweeper.config.signatures import signature, signatures

    names = ("Adam", "SGD", "RMSprop", "Adagrad", "AdamW", "Nadam")
    signatures(f"keras.optimizers.{name}" for name in names)  # one child for them all
    for name in names:
        read = set(signature(f"keras.optimizers.{name}").names())
        cls = getattr(keras.optimizers, name)
        own = {p for p in inspect.signature(cls).parameters if p != "kwargs"}
        base = set(inspect.signature(BaseOptimizer.__init__).parameters)
        assert own <= read and (base - {"self", "kwargs"}) <= read, name
        assert "bta_1" not in read


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of the test's own, and a process that has read no signature yet."""
    from sweeper.config import signatures

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(signatures, "_known", {})
    return tmp_path / "cache" / "sweeper" / "signatures.json"


def _children(monkeypatch: pytest.MonkeyPatch, allowed: bool = True) -> list[list[str]]:
    """The targets each child process started from now on is asked for."""
    asked: list[list[str]] = []
    run = subprocess.run

    def counted(args: list[str], **kwargs):
        assert allowed, f"a child process was started for {args[2:]}"
        asked.append(args[2:])
        return run(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counted)
    return asked


def test_signatures_are_kept_for_the_next_command(own_cache: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from sweeper.config import signatures

    asked = _children(monkeypatch)
    first = signatures.signatures(["tabulate.tabulate", "yaml.safe_load"])
    assert asked == [["tabulate.tabulate", "yaml.safe_load"]]  # one child for both
    assert "headers" in first["tabulate.tabulate"].names()
    assert own_cache.is_file()
    monkeypatch.setattr(signatures, "_known", {})  # the next command: no child at all
    _children(monkeypatch, allowed=False)
    assert signatures.signatures(["tabulate.tabulate", "yaml.safe_load"]) == first


def test_a_new_version_of_a_package_is_read_anew(own_cache: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from sweeper.config import signatures

    signatures.signature("tabulate.tabulate")
    version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "99.0" if name == "tabulate" else version(name))
    monkeypatch.setattr(signatures, "_known", {})  # the next command, after an upgrade
    asked = _children(monkeypatch)
    assert "headers" in signatures.signature("tabulate.tabulate").names()
    assert asked == [["tabulate.tabulate"]]
    assert list(json.loads(own_cache.read_text())) == ["tabulate.tabulate tabulate==99.0"]


def test_a_plain_def_of_your_own_is_read_without_a_child(own_cache: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from sweeper.config.signatures import TargetNotFound, signature

    (tmp_path / "mine.py").write_text(
        "import not_installed_anywhere\n\n"
        "def build(input_shape, num_classes, *, depth: int, units: int | None = 8, **more):\n"
        "    return not_installed_anywhere.Model(depth, units, **more)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _children(monkeypatch, allowed=False)
    sig = signature("mine.build")
    assert sig.names() == ["input_shape", "num_classes", "depth", "units"] and sig.open
    assert sig.get("depth").required and not sig.get("units").required
    assert sig.get("units").annotation == "int | None"
    with pytest.raises(TargetNotFound, match="module mine has no 'nope'"):
        signature("mine.nope")
    assert not own_cache.exists()  # your own module changes between commands: never kept


@pytest.mark.parametrize("option,keras_name", [("adam", "adam"), ("sgd", "sgd"),
                                               ("rmsprop", "rmsprop"), ("adagrad", "adagrad"),
                                               ("adamw", "adamw"), ("nadam", "nadam")])
def test_optimizer_options_are_keras_own_defaults(compose_config, tmp_path: Path, option: str,
                                                  keras_name: str) -> None:
    import keras

    from sweeper.trial import training

    cfg = compose_config(f"optimizer={option}")
    (phase,) = training.phases(cfg, tmp_path)
    built = training.optimizer(cfg, 10, phase).get_config()
    default = keras.optimizers.get(keras_name).get_config()
    assert type(training.optimizer(cfg, 10, phase)) is type(keras.optimizers.get(keras_name))
    for key, value in built.items():
        if key != "name":
            assert value == pytest.approx(default[key]) if isinstance(value, float) \
                else value == default[key], key


def test_seed_preset_is_the_tutorials_experiment_with_keras_own_optimizers() -> None:
    from omegaconf import OmegaConf

    from sweeper.preflight import trial_configs

    # every configuration the preflight checks, as it was when checked
    seen = [OmegaConf.to_container(c) for c in trial_configs(["+search=seed"], False, None,
                                                             "config")]
    assert {c["model"]["_target_"] for c in seen} == {"sweeper.trial.models.mlp"}
    assert {(c["train"]["epochs"], c["train"]["batch_size"]) for c in seen} == {(5, 32)}
    assert all(c["schedule"] == {} for c in seen)
    # the tutorial compiles with "adam" and "sgd": Keras's defaults, SGD without momentum
    assert {(c["optimizer"]["_target_"], c["optimizer"]["learning_rate"],
             c["optimizer"].get("momentum")) for c in seen} == {
        ("keras.optimizers.Adam", 0.001, None), ("keras.optimizers.SGD", 0.01, 0.0)}


@pytest.mark.parametrize("schedule,points", [
    # (step, learning rate) with learning_rate 0.1, 10 steps an epoch, 4 epochs
    ("constant", [(0, 0.1), (39, 0.1)]),
    ("cosine", [(0, 0.1), (20, 0.05), (40, 0.0)]),
    ("exponential", [(0, 0.1), (10, 0.08), (20, 0.064)]),
    ("warmup_cosine", [(0, 0.0), (5, 0.05), (10, 0.1), (25, 0.05), (40, 0.0)]),
])
def test_schedules_span_the_trial_in_epochs(compose_config, tmp_path: Path, schedule: str,
                                            points: list[tuple[int, float]]) -> None:
    from sweeper.trial import training

    cfg = compose_config(f"schedule={schedule}", "optimizer.learning_rate=0.1", "train.epochs=4")
    (phase,) = training.phases(cfg, tmp_path)
    rate = training.optimizer(cfg, 10, phase).learning_rate
    assert hasattr(rate, "numpy")
    optimizer = training.optimizer(cfg, 10, phase)
    for step, expected in points:
        optimizer.iterations.assign(step)
        assert float(optimizer.learning_rate) == pytest.approx(expected, abs=1e-6), step


def test_group_sweeps_declare_every_option_key(compose_config) -> None:
    from omegaconf import open_dict

    from sweeper.search.domains import sweep_domains

    cfg = compose_config("optimizer=sgd", hydra=True)  # the sweep's configuration
    with open_dict(cfg):
        cfg.hydra.overrides.task = ["model=mlp,cnn", "optimizer=sgd"]
    domains = sweep_domains(cfg)
    assert domains["model"] == ["mlp", "cnn"] and domains["optimizer"] == ["sgd"]
    assert domains["model.width"] == [1.0] and domains["model.units"] == [128]
    assert domains["optimizer.momentum"] == [0.0] and domains["optimizer.learning_rate"] == [0.01]


@pytest.mark.parametrize("name,preprocess", [
    ("mobilenet_v2", "keras.applications.mobilenet_v2.preprocess_input"),
    ("efficientnet_b0", "keras.applications.efficientnet.preprocess_input"),
    ("resnet50", "keras.applications.resnet50.preprocess_input"),
])
def test_backbones_take_raw_pixels_and_preprocess_as_keras_does(compose_config, tmp_path: Path,
                                                                name: str, preprocess: str) -> None:
    import keras
    from hydra.utils import get_method

    from sweeper.trial import models

    cfg = compose_config(f"model={name}", "model.weights=null", "model.input_size=32")
    model = models.build(cfg.model, (8, 8, 1), 10, 16.0)
    assert [layer.name for layer in model.layers[:3]] == ["pixels", "rescale", "resize"]
    pixels = np.random.default_rng(0).integers(0, 17, (2, 8, 8, 1)).astype("float32")
    probabilities = model.predict(pixels, verbose=0)
    assert probabilities.shape == (2, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert models.base_of(model) is model.get_layer(name).get_layer("base")
    # it saves and loads like every checkpoint (no Lambda layer, the renamed base)
    model.save(tmp_path / "model.keras")
    again = keras.models.load_model(tmp_path / "model.keras")
    assert np.allclose(again.predict(pixels, verbose=0), probabilities, atol=1e-6)
    # what reaches the backbone is what keras.applications' preprocess_input makes of 0..255
    body = get_method(str(cfg.model._target_))((32, 32, 3), 10, weights=None, units=None,
                                               dropout=0.0)
    rgb = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3)).astype("float32")
    seen = keras.Model(body.inputs, body.get_layer("preprocess").output)(rgb / 255.0)
    if name == "efficientnet_b0":  # its preprocessing is inside the model: it takes 0..255
        expected = rgb
    else:
        expected = get_method(preprocess)(rgb.copy())
    assert np.allclose(np.asarray(seen), expected, atol=1e-3)


def test_backbone_weights_are_where_keras_fetches_them() -> None:
    from keras.src.applications import efficientnet, mobilenet_v2, resnet
    from omegaconf import OmegaConf

    from sweeper.trial import backbones

    def option(name: str, size: int = 96) -> object:
        return OmegaConf.create({"_target_": f"sweeper.trial.backbones.{name}",
                                 "weights": "imagenet", "input_size": size})

    mobile = backbones.weights_download(option("mobilenet_v2", 128))
    assert mobile.origin == mobilenet_v2.BASE_WEIGHT_PATH + mobile.fname
    assert mobile.fname == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5"
    assert backbones.weights_download(option("mobilenet_v2", 40)).fname.endswith("_224_no_top.h5")
    eff = backbones.weights_download(option("efficientnet_b0"))
    assert eff.origin == efficientnet.BASE_WEIGHTS_PATH + "efficientnetb0_notop.h5"
    assert eff.file_hash == efficientnet.WEIGHTS_HASHES["b0"][1]
    res = backbones.weights_download(option("resnet50"))
    assert res.origin == resnet.BASE_WEIGHTS_PATH + res.fname
    assert res.file_hash == resnet.WEIGHTS_HASHES["resnet50"][1]
    other = OmegaConf.create({"_target_": "x.y", "weights": "imagenet"})
    assert backbones.weights_download(other) is None


def test_offline_without_cached_weights_names_the_url_and_the_file(tmp_path: Path) -> None:
    from keras.src.applications import resnet

    # A proxy on a closed loopback port: every fetch fails at once, and nothing leaves the machine.
    offline = {"KERAS_HOME": str(tmp_path / "keras"), "https_proxy": "http://127.0.0.1:9",
               "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}
    (tmp_path / "work").mkdir()
    done = run_cli("-m", "model=resnet50", "model.freeze_base=true,false", "train.epochs=1",
                   cwd=tmp_path / "work", env=offline)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    file = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    url = f"https://storage.googleapis.com/tensorflow/keras-applications/resnet/{file}"
    assert lines[0].startswith(f"sweeper: error: model.weights: cannot download {url} (")
    assert lines[0].endswith(f"place that file at {tmp_path / 'keras' / 'models' / file} "
                             f"(hash {resnet.WEIGHTS_HASHES['resnet50'][1]})")
    assert list((tmp_path / "work").iterdir()) == []
    assert not list((tmp_path / "keras").rglob("*.h5"))


def test_cached_weights_are_checked_not_fetched_again(tmp_path: Path) -> None:
    import hashlib

    from sweeper.downloads import Download, ensure, missing

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "w.h5").write_bytes(b"weights")
    md5 = hashlib.md5(b"weights").hexdigest()
    good = Download("http://127.0.0.1:9/w.h5", "w.h5", md5, "models")
    assert good.target(tmp_path) == tmp_path / "models" / "w.h5" and missing([good], tmp_path) == []
    ensure([good], tmp_path, "model.weights")  # nothing to fetch: no process, no dead-origin error
    assert missing([Download(good.origin, "v.h5", cache_subdir="models")], tmp_path)
    assert missing([Download(good.origin, "w.h5", "0" * 32, "models")], tmp_path)  # fetched again
    assert not (tmp_path / "models" / "w.h5").exists()  # the file that did not match is deleted


def test_freeze_base_then_fine_tune_the_base_from_a_layer(compose_config, tmp_path: Path,
                                                          user_modules: None) -> None:
    from sweeper.trial import models, training

    cfg = compose_config("model=custom", "model._target_=nets.with_base", "+model.units=4",
                         "+model.freeze_base=true", "+model.fine_tune_at=3", "train.epochs=5")
    first, second = training.phases(cfg, tmp_path)
    assert (first.start, first.end, second.start, second.end) == (0, 3, 3, 5)
    assert second.learning_rate_scale == 0.1 and second.backup == tmp_path / "fine_tune"
    model = models.build(cfg.model, (8, 8, 1), 10, 16.0)
    base = models.base_of(model)
    training.set_trainable(model, cfg.model, first)
    assert not base.trainable and len(model.trainable_weights) == 2  # the classifier only
    training.set_trainable(model, cfg.model, second)
    trainable = {layer.name for layer in base.layers if layer.trainable and layer.weights}
    assert trainable == {"late"}  # layers from index 3 on (input, flatten, early | late)
    assert float(training.optimizer(cfg, 10, second).learning_rate) == pytest.approx(1e-4)


@pytest.mark.slow  # a long sweep; `pytest -m slow` runs it
def test_a_fine_tuned_mixed_precision_xla_trial_trains_both_phases(tmp_path: Path) -> None:
    done = run_cli("model=custom", "model._target_=nets.with_base", "+model.units=8",
                   "+model.freeze_base=true", "+model.fine_tune_at=0", "train.mixed_precision=true",
                   "train.jit_compile=true", "train.epochs=2", "dataset.limit=200",
                   "sweep.name=ft", cwd=tmp_path, env=USER)
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = records(tmp_path / "experiments" / "ft")
    assert record["status"] == "completed" and record["epochs_completed"] == 2
    assert "fine-tuning: 4 of the base's 4 layers train from here on" in done.stderr + done.stdout
    assert record["hparams"]["model.fine_tune_at"] == 0
    # the GPU switches work on CPU too, and the record says they were on
    assert record["mixed_precision"] is True and record["jit_compile"] is True
    assert record["hparams"]["train.mixed_precision"] is True
    import keras

    model = keras.models.load_model(tmp_path / "experiments" / "ft" / "trials" /
                                    record["trial_id"] / record["checkpoint"])
    body = model.get_layer("with_base")
    assert body.get_layer("base").get_layer("late").dtype_policy.name == "mixed_float16"
    assert model.get_layer("probabilities").dtype_policy.name == "float32"
    assert model.output.dtype == "float32"
    pixels = np.random.default_rng(0).integers(0, 17, (3, 8, 8, 1)).astype("float32")
    assert np.allclose(model.predict(pixels, verbose=0).sum(axis=1), 1, atol=1e-3)


@pytest.mark.slow
def test_a_backbone_sweep_exports_what_saved_model_cli_serves(tmp_path: Path) -> None:
    done = run_cli("-m", "model=mobilenet_v2", "model.weights=null", "model.input_size=32",
                   "model.freeze_base=true,false", "schedule=cosine", "optimizer=adamw",
                   "train.epochs=1", "dataset.limit=100", "sweep.name=mobile", cwd=tmp_path,
                   timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "experiments" / "mobile"
    found = records(sweep)
    assert sorted(r["hparams"]["model.freeze_base"] for r in found) == [False, True]
    assert all(r["status"] == "completed" for r in found)
    best = json.loads((sweep / "best" / "best.json").read_text())
    import keras

    pixels = np.random.default_rng(0).integers(0, 17, (3, 8, 8, 1)).astype("float32")
    np.save(tmp_path / "pixels.npy", pixels)
    expected = keras.models.load_model(sweep / "best" / "model.keras").predict(pixels, verbose=0)
    cli = Path(sys.executable).with_name("saved_model_cli")
    served = subprocess.run(
        [str(cli), "run", "--dir", str(sweep / "best" / "saved_model" / str(best["version"])),
         "--tag_set", "serve", "--signature_def", "serving_default",
         "--inputs", f"pixels={tmp_path / 'pixels.npy'}", "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300)
    assert served.returncode == 0, served.stderr[-2000:]
    (output,) = (tmp_path / "out").glob("*.npy")
    assert np.allclose(np.load(output), expected, atol=1e-5)


def test_every_from_scratch_model_learns_digits_in_inference_mode_from_epoch_one(
        tmp_path: Path) -> None:
    # The validation accuracy a judge reads (pruners, tuners, the leaderboard) is the model in
    # inference mode: batch normalisation's moving statistics must already follow the weights
    # after one epoch of 36 steps, and the deep ReLU stacks must train from scratch at all.
    done = run_cli("-m", "model=mlp,cnn,lenet5,alexnet,vgg16", "train.epochs=2",
                   "sweep.name=zoo", cwd=tmp_path, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    found = {r["hparams"]["model"]: r for r in records(tmp_path / "experiments" / "zoo")}
    assert set(found) == {"mlp", "cnn", "lenet5", "alexnet", "vgg16"}
    chance = 0.1
    for name, record in found.items():
        first, second = (epoch["val_accuracy"] for epoch in record["history"])
        assert first >= chance + 0.2, (name, first)  # far above chance after one epoch
        assert second >= 0.6, (name, second)
        assert record["metrics"]["test_accuracy"] >= 0.6, (name, record["metrics"])
        assert "mismatch" not in record, (name, record["mismatch"])  # the tripwire stays quiet


def test_the_tripwire_fires_on_a_builder_that_differs_in_inference(tmp_path: Path) -> None:
    # nets.mismatched learns in training mode and answers one class in inference mode.
    done = run_cli("model=custom", "model._target_=nets.mismatched", "train.epochs=3",
                   "sweep.name=trip", cwd=tmp_path, env=USER)
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = records(tmp_path / "experiments" / "trip")
    history = record["history"]
    assert history[-1]["accuracy"] >= 0.6 and history[-1]["val_accuracy"] <= 0.2  # it learned
    mismatch = record["mismatch"]
    assert mismatch["first_epoch"] <= 2 and mismatch["last_epoch"] == 3
    assert mismatch["message"].startswith("train/inference mismatch: validation accuracy ")
    trial_log = (tmp_path / "experiments" / "trip" / "trials" / record["trial_id"] / "trial.log")
    warned = [line for line in trial_log.read_text().splitlines()
              if "train/inference mismatch" in line]
    assert len(warned) == 1 and "WARNING" in warned[0], warned  # said once, when it fires
