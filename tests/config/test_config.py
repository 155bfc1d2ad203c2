"""Every config option composes and validates; bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import preflight_many, run_cli
from helpers.paths import CONF
from omegaconf import OmegaConf

from sweeper.config import checks, schema

CONFIG_DIR = CONF
GROUPS = {g: sorted(p.stem for p in (CONFIG_DIR / g).glob("*.yaml"))
          for g in ("model", "optimizer", "schedule", "dataset", "augment", "train", "pruner")}


def test_every_dataset_pruner_and_augment_the_code_handles_is_an_option() -> None:
    assert GROUPS["dataset"] == sorted(schema.DATASETS)
    assert GROUPS["pruner"] == sorted(schema.PRUNERS)
    assert GROUPS["augment"] == sorted(schema.AUGMENTS)


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_option_composes_and_validates(compose_config, tmp_path, group, option) -> None:
    overrides = [f"{group}={option}"]
    if option == "directory":
        for cls in ("a", "b"):
            (tmp_path / cls).mkdir()
            (tmp_path / cls / "x.png").write_bytes(b"")
        overrides.append(f"dataset.path={tmp_path}")
    if option == "custom":  # the one option without a builder of its own
        overrides += ["model._target_=sweeper.trial.models.mlp", "+model.units=8",
                      "+model.dropout=0.0"]
    cfg = compose_config(*overrides, hydra=True)
    checks.validate(cfg)  # every key of a _target_ option is an argument of its target
    assert cfg.hydra.runtime.choices[group] == option


# One option per file, a comment on every key (what it is, and the value's meaning).
_KEY_LINE = re.compile(r"^(\w+):\s*(.*)$")


@pytest.mark.parametrize("group", ["model", "optimizer", "schedule", "train"])
def test_every_key_of_an_option_says_what_it_is(group) -> None:
    for option in GROUPS[group]:
        for line in (CONFIG_DIR / group / f"{option}.yaml").read_text().splitlines():
            match = _KEY_LINE.match(line)
            if match:
                assert "#" in match.group(2), f"{group}/{option}.yaml: {line}"


def test_sweepable_keys_exist(compose_config) -> None:
    cfg = compose_config("model.units=16", "model.dropout=0.3", "optimizer=sgd",
                         "optimizer.learning_rate=0.05", "train.epochs=2", "train.batch_size=64",
                         "train.seed=3", "sweep.metric=val_loss", "sweep.mode=min")
    assert (cfg.model.units, cfg.model.dropout, cfg.optimizer._target_) == \
        (16, 0.3, "keras.optimizers.SGD")
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.seed) == (2, 64, 3)
    assert cfg.optimizer.learning_rate == 0.05
    assert cfg.paths.experiments == "experiments" and cfg.paths.logs == "logs"


BAD = [
    (["model.dropout=1.5"], "model.dropout=1.5: must be a number in [0, 1)"),
    (["model.dropout=-0.1"], "model.dropout=-0.1"),
    (["model.units=0"], "model.units=0: must be an integer >= 1"),
    (["model.units=abc"], "model.units=abc: must be an integer >= 1"),
    (["train.epochs=0"], "train.epochs=0: must be an integer >= 1"),
    (["train.batch_size=0"], "train.batch_size=0"),
    (["optimizer.learning_rate=0"], "optimizer.learning_rate=0: must be a finite number > 0"),
    (["train.validation_split=1.0"], "train.validation_split=1.0: must be a number in (0, 1)"),
    (["model=resnet"], "model=resnet: unknown option; choose one of alexnet, cnn, custom, "
                       "efficientnet_b0, lenet5, mlp, mobilenet_v2, resnet50, vgg16"),
    (["-m", "optimizer=adam,adamax"], "optimizer=adamax: unknown option"),
    (["schedule=linear"], "schedule=linear: unknown option; choose one of constant, cosine"),
    (["dataset=imagenet"], "dataset=imagenet: unknown option"),
    (["model.unitz=3"], "model.unitz: Key 'unitz' is not in struct"),
    (["+model.unitz=3"], "model.unitz: not an argument of sweeper.trial.models.mlp (it takes "
                         "units, dropout)"),
    (["+optimizer.bta_1=0.8"], "optimizer.bta_1: not an argument of keras.optimizers.Adam"),
    (["optimizer=sgd", "optimizer.momentum=1.0"], "optimizer.momentum=1.0: must be a number in"),
    (["model=cnn", "model.width=wide"], "model.width=wide: must be a number > 0"),
    (["model=custom"], "model._target_: required; give the import path of your builder"),
    (["model=custom", "model._target_=mypkg.nets.build"],
     "model._target_=mypkg.nets.build: not found (no module named 'mypkg')"),
    (["model=custom", "model._target_=sweeper.trial.models.nope"],
     "model._target_=sweeper.trial.models.nope: not found (module sweeper.trial.models has no"),
    (["model=custom", "model._target_=sweeper.trial.models.mlp", "+model.units=8"],
     "model.dropout: required by sweeper.trial.models.mlp; set it with +model.dropout=VALUE"),
    (["+schedule.alpha=0.5"], "schedule.alpha: this schedule takes no keys"),
    (["schedule=cosine", "+schedule.decay_steps=5"],
     "schedule.decay_steps: not an argument of sweeper.trial.schedules.cosine"),
    (["schedule=cosine", "+schedule.epochs=5"], "schedule.epochs: set by sweeper for every trial"),
    (["schedule=exponential", "schedule.decay_rate=0"], "schedule.decay_rate=0: must be a number"),
    (["model=mobilenet_v2", "model.weights=null", "model.input_size=16"],
     "model.input_size=16: must be an integer >= 32"),
    (["model=resnet50", "model.weights=/no/such.h5"],
     "model.weights=/no/such.h5: must be imagenet"),
    (["model=mobilenet_v2", "model.fine_tune_at=100", "model.freeze_base=false"],
     "model.fine_tune_at=100: needs model.freeze_base=true"),
    # a grid: each value is valid alone, one combination of them is not
    (["-m", "model=mobilenet_v2", "model.freeze_base=true,false", "model.fine_tune_at=null,1"],
     "model.fine_tune_at=1: needs model.freeze_base=true"),
    (["-m", "train.epochs=5,2", "train.initial_epoch=0,3", "train.warm_start=t"],
     "train.initial_epoch=3: must be an integer in [0, train.epochs=2)"),
    (["model=mobilenet_v2", "model.freeze_base=maybe"], "model.freeze_base=maybe: must be true or"),
    (["model=mobilenet_v2", "model.units=wide"], "model.units=wide: must be an integer >= 1"),
    (["dataset=directory"], "dataset.path: required with dataset=directory"),
    (["dataset=directory", "dataset.path=/no/such"], "dataset.path=/no/such: no such folder"),
    (["-m", "hydra/launcher=nope"],
     "hydra/launcher=nope: unknown option; choose one of basic, pool, ray"),
    (["-m", "hydra/sweeper=nope"], "hydra/sweeper=nope: unknown option; choose one of basic, grid"),
    (["sweep.name=é"], "sweep.name=é: 'é' needs quotes; write sweep.name='é'"),
    (["dataset=directory", "dataset.path=/etc/passwd"],
     "dataset.path=/etc/passwd: a file, not a folder"),
    (["-m", "model.units=16,32", "model.dropout=0.1,1.2"], "model.dropout=1.2"),
    (["sweep.mode=maximize"], "sweep.mode=maximize: must be one of max, min"),
    (["sweep.name=../escape"], "sweep.name=../escape"),
    (["model.units=16,32"], "model.units=16,32: a list of values needs -m"),
    (["-m", "model.units=range("], "cannot parse overrides"),
    (["-m", "model.dropout=interval(0.1"], "cannot parse overrides"),
    (["model.dropout=abc"], "model.dropout=abc: must be a number in [0, 1)"),
    (["train.epochs=2.5"], "train.epochs: Value '2.5' of type 'float' could not be converted"),
    (["optimizer.learning_rate=fast"],
     "optimizer.learning_rate=fast: must be a finite number > 0"),
    (["sweep.metric=val_f1"], "sweep.metric=val_f1: must be one of val_accuracy, val_loss"),
    (["sweep.name=a/b"], "sweep.name=a/b: must be a folder name"),
    (["train.batch_size=5000"], "train.batch_size=5000: larger than the 1149 training examples"),
    (["paths.experiments=/proc/sweeps"], "paths.experiments=/proc/sweeps: not writable"),
    (["+search=nosuch"], "search=nosuch: unknown option; choose one of chest_xray, hyperband"),
    (["-m", "hydra.launcher.devices=[7]"], "hydra.launcher.devices: GPU 7 is not available"),
    (["-m", "hydra.launcher.workers=0"], "hydra.launcher.workers=0: must be >= 1"),
    (["-m", "hydra.launcher.memory_per_trial=lots"],
     "hydra.launcher.memory_per_trial=lots: must be a whole number of MiB > 0, auto or null"),
    (["-m", "model.units=range(5,5)"], "the sweep is empty"),
    (["-m", "model.units=choice()"], "empty choice is not legal"),
    (["dataset.limit=5"], "dataset.limit=5: must be null or an integer >= 10"),
    (["train.initial_epoch=2"], "train.initial_epoch=2: must be 0 without train.warm_start"),
    (["train.initial_epoch=20"],
     "train.initial_epoch=20: must be an integer in [0, train.epochs=20)"),
    (["train.warm_start=a/b"], "train.warm_start=a/b: must be null or the id of a trial"),
    (["-m", "hydra/sweeper=tuner", "model.units=glob(*)"],
     "model.units=glob(*): the tuner cannot search this"),
    (["-m", "hydra/sweeper=tuner", "model.dropout=interval(0.0,1.5)"],
     "model.dropout=1.5: must be a number in [0, 1)"),
    (["-m", "hydra/sweeper=tuner", "hydra.sweeper.algorithm=annealing", "model.units=8,16"],
     "hydra.sweeper.algorithm=annealing: choose one of random, bayesian, hyperband, grid"),
    (["-m", "hydra/sweeper=tuner", "hydra.sweeper.algorithm=hyperband", "model.units=8,16",
      "train.epochs=3"], "train.epochs: Hyperband sets it for each trial"),
    (["-m", "hydra/sweeper=tuner", "train.epochs=3"], "the search space is empty"),
    (["augment=xray", "augment.zoom=-0.2"], "augment.zoom=-0.2: must be a number in [0, 1)"),
    (["-m", "augment.shear=0.1,1.5"], "augment.shear=1.5: must be a fraction of the width"),
    (["augment=basic", "augment.flip=diagonal"], "augment.flip=diagonal: must be one of none"),
    (["augment=fancy"], "augment=fancy: unknown option; choose one of basic, none, randaugment"),
    (["dataset.resize=fit"], "dataset.resize=fit: must be one of stretch, crop, pad"),
    (["dataset.cache=gpu"], "dataset.cache=gpu: must be one of none, memory, disk"),
    (["dataset.bits_stored=20"], "dataset.bits_stored=20: must be null or an integer in [1, 16]"),
    (["dataset=mnist", "dataset.origin=no/such/mirror"],
     "dataset.origin=no/such/mirror: no such folder"),
    # Nothing answers on port 9 of this machine; the cache folder (relative: in the command's
    # folder) must not be left behind.
    (["dataset=mnist", "dataset.cache_dir=keras", "dataset.origin=http://127.0.0.1:9/"],
     "dataset=mnist: cannot download http://127.0.0.1:9/mnist.npz ([Errno 111] Connection "
     "refused); place that file at keras/datasets/mnist.npz (hash 731c5ac6"),
    (["+foo=bar"], "+foo=bar: foo is no key of sweeper's configuration"),
    (["+train.epoch=3"], "+train.epoch=3: train.epoch is no key of sweeper's configuration"),
    (["optimizer.learning_rate=inf"], "optimizer.learning_rate=inf: must be a finite number > 0"),
    (["-m", "model.units=16,"],
     "cannot parse overrides: model.units=16,: it ends where a value should follow"),
    (["-m", "pruner=none,asha"], "pruner=none,asha: pruner takes one value per sweep"),
    (["pruner=hyperband"], "pruner=hyperband: unknown option; choose one of asha, median, none"),
    (["pruner=asha", "pruner.reduction_factor=1"],
     "pruner.reduction_factor=1: must be an integer >= 2"),
    (["pruner=median", "pruner.min_epochs=0"], "pruner.min_epochs=0: must be an integer >= 1"),
    (["pruner=median", "pruner.grace_period=2"], "pruner.grace_period"),
    (["-m", "hydra/sweeper=tuner", "hydra.sweeper.algorithm=hyperband", "model.units=8,16",
      "pruner=asha"], "pruner=asha: Hyperband stops trials itself"),
    (["sweep.constraints=[params<=1e5,size<=2]"],
     "sweep.constraints: unknown 'size'; one of val_accuracy, val_loss"),
    (["sweep.constraints=[params=<100]"], "sweep.constraints: 'params=<100' is not NAME<=NUMBER"),
    (["sweep.constraints=[test_accuracy>=0.9]"],
     "sweep.constraints: test_accuracy is a test-split score; choosing on the test split leaks"),
    (["sweep.objectives=[val_accuracy:max,latency:min]"],
     "sweep.objectives: unknown 'latency'"),
    (["sweep.objectives=[val_accuracy:max,params:smallest]"],
     "sweep.objectives: 'params:smallest': the mode must be max or min"),
    (["sweep.objectives=[latency_ms:min,val_accuracy:max]"],
     "sweep.objectives: the first, latency_ms:min, is the objective the pruner and the search "
     "follow: set sweep.metric=latency_ms sweep.mode=min too (now val_accuracy:max)"),
    (["sweep.measure=[onnx]"], "sweep.measure: unknown 'onnx'; one of tflite"),
    (["sweep.promote=median"], "sweep.promote=median: one of first, knee"),
]


@pytest.fixture(scope="module")
def bad_outcomes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, dict]]:
    """Every BAD row through the preflight, each in its own empty folder, in one process."""
    folders = [tmp_path_factory.mktemp("bad") for _ in BAD]
    outcomes = preflight_many([(folder, args) for folder, (args, _) in
                               zip(folders, BAD, strict=True)])
    return list(zip(folders, outcomes, strict=True))


@pytest.mark.parametrize("row", range(len(BAD)), ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_writes_nothing(bad_outcomes, row) -> None:
    folder, outcome = bad_outcomes[row]
    assert outcome["status"] == 2, outcome["stderr"]
    lines = outcome["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweeper: error: "), outcome["stderr"]
    assert BAD[row][1] in lines[0]
    assert list(folder.iterdir()) == []


# The whole command for a few: a run, a sweep, a launcher setting, a download.
COMMAND_ROWS = (["+foo=bar"], ["-m", "model.units=16,32", "model.dropout=0.1,1.2"],
                ["-m", "hydra.launcher.devices=[7]"],
                ["dataset=mnist", "dataset.cache_dir=keras", "dataset.origin=http://127.0.0.1:9/"])


@pytest.mark.parametrize("args", COMMAND_ROWS, ids=" ".join)
def test_the_command_itself_refuses_bad_input_in_one_line(tmp_path, args) -> None:
    message = dict((tuple(a), m) for a, m in BAD)[tuple(args)]
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweeper: error: "), done.stderr
    assert message in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_directory_with_one_class_is_rejected(tmp_path) -> None:
    (tmp_path / "data" / "only").mkdir(parents=True)
    (tmp_path / "data" / "only" / "a.png").write_bytes(b"")
    done = run_cli("dataset=directory", "dataset.path=data", cwd=tmp_path)
    assert done.returncode == 2
    assert "1 class folder(s) with images; at least 2 are needed" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_empty_image_folder_is_rejected(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    done = run_cli("dataset=directory", "dataset.path=data", cwd=tmp_path)
    assert done.returncode == 2 and "0 class folder(s) with images" in done.stderr


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (and no pixels): what a
    decompression bomb looks like to a reader that checks the size before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data +
                zlib.crc32(kind + data).to_bytes(4, "big"))

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_corrupt_image_is_named_before_any_work_unless_skipped(tmp_path) -> None:
    from PIL import Image

    for name in ("cats", "dogs"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(12):
            Image.new("L", (12, 12), color=i * 20).save(tmp_path / "data" / name / f"{i}.png")
    (tmp_path / "data" / "dogs" / "broken.png").write_bytes(b"\x89PNG not really")
    done = run_cli("dataset=directory", "dataset.path=data", "train.epochs=1", cwd=tmp_path)
    assert done.returncode == 2
    broken = Path("data") / "dogs" / "broken.png"
    assert f"image {broken} is corrupt (" in done.stderr
    assert "dataset.skip_corrupt=true" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    (tmp_path / "data" / "cats" / "huge.png").write_bytes(png_header(20000, 20000))
    (tmp_path / "data" / "dogs" / "broken.png").unlink()
    done = run_cli("dataset=directory", "dataset.path=data", "train.epochs=1", cwd=tmp_path)
    assert done.returncode == 2  # a decompression bomb is named as one, not as corrupt
    assert f"image {Path('data') / 'cats' / 'huge.png'} is 20000x20000 pixels, too large to " \
           "decode safely" in done.stderr
    (tmp_path / "data" / "dogs" / "broken.png").write_bytes(b"\x89PNG not really")
    skipped = run_cli("dataset=directory", "dataset.path=data", "dataset.image_size=[12,12]",
                      "train.epochs=1", "train.batch_size=4", "dataset.skip_corrupt=true",
                      "sweep.name=skip", cwd=tmp_path)
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    said = skipped.stdout + skipped.stderr
    assert "dataset.skip_corrupt: 2 image(s) left out of every split: " in said
    assert f"{Path('data') / 'cats' / 'huge.png'} (20000x20000 pixels" in said
    assert f"{broken} (corrupt (" in said
    (trial,) = (tmp_path / "experiments" / "skip" / "trials").iterdir()
    # the files left out count in no epoch's steps: Keras never runs out of data
    assert "ran out of data" not in (trial / "trial.log").read_text()
    record = json.loads((trial / "trial.json").read_text())
    assert record["status"] == "completed"


def test_help_does_not_import_tensorflow(tmp_path) -> None:
    code = ("import sys, runpy; sys.argv = ['sweeper', '--help']\n"
            "try:\n    runpy.run_module('sweeper', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported by --help'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "== Config groups ==" in done.stdout and "model: alexnet, cnn" in done.stdout
    assert "schedule: constant, cosine, exponential, warmup_cosine" in done.stdout
    assert "optimizer: adagrad, adam, adamw, nadam, rmsprop, sgd" in done.stdout


def test_units_dropout_optimizer_epochs_batch_size_sweep_as_a_grid() -> None:
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    from sweeper.config.overrides import sweep_arguments
    from sweeper.preflight import trial_configs

    args = ["model.units=16,32", "model.dropout=0.1,0.2", "optimizer=adam,sgd",
            "train.epochs=2,3", "train.batch_size=32,64"]
    (jobs,) = BasicSweeper.split_arguments(sweep_arguments(None, args), None)
    assert len({tuple(sorted(job)) for job in jobs}) == 32  # every combination is a trial
    # The preflight checks every value of every key, and each optimizer's own configuration.
    configs = list(trial_configs(args, True, None, "config"))
    for key, values in (("model.units", {16, 32}), ("model.dropout", {0.1, 0.2}),
                        ("train.epochs", {2, 3}), ("train.batch_size", {32, 64})):
        assert {OmegaConf.select(c, key) for c in configs} == values
    assert {c.optimizer._target_ for c in configs} == {"keras.optimizers.Adam",
                                                       "keras.optimizers.SGD"}


def test_search_preset_is_a_whole_sweep() -> None:
    from sweeper.preflight import trial_configs

    configs = list(trial_configs(["+search=seed"], False, None, "config"))
    assert {c.train.epochs for c in configs} == {5}
    # The tutorial's 2 x 2 x 2 grid: each value, and each optimizer, checked before any work.
    assert {c.model.units for c in configs} == {16, 32}
    assert {c.model.dropout for c in configs} == {0.1, 0.2}
    assert {c.optimizer._target_ for c in configs} == {"keras.optimizers.Adam",
                                                       "keras.optimizers.SGD"}


def test_chest_xray_preset_sweeps_augmentation_on_a_folder(tmp_path) -> None:
    from sweeper.preflight import trial_configs

    configs = list(trial_configs(["+search=chest_xray", f"dataset.path={tmp_path}"], False, None,
                                 "config"))
    assert {c.augment.name for c in configs} == {"none", "xray"}
    assert {(c.dataset.name, c.dataset.color_mode, c.model._target_, c.optimizer._target_,
             c.train.batch_size, c.train.epochs) for c in configs} == {
        ("directory", "rgb", "sweeper.trial.models.cnn", "keras.optimizers.Adam", 8, 10)}
