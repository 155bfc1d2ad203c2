"""Augmentation is a hyperparameter: Keras's random layers inside the model, active only while it
trains, swept like any key, and gone from what a client sees (exports take raw pixels)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import records, run_cli
from PIL import Image

from sweeper import hparams
from sweeper.trial import augment, data, models


def _layers(compose_config, *overrides: str) -> list[str]:
    layer = augment.augmentation(compose_config(*overrides).augment)
    return [] if layer is None else [type(x).__name__ for x in layer.layers]


def test_presets_are_stacks_of_keras_layers(compose_config) -> None:
    assert _layers(compose_config) == []
    assert _layers(compose_config, "augment=basic") == ["RandomFlip", "RandomRotation",
                                                         "RandomZoom"]
    assert _layers(compose_config, "augment=xray") == ["RandomFlip", "RandomZoom", "RandomShear"]
    assert _layers(compose_config, "augment=randaugment") == ["RandAugment"]
    assert _layers(compose_config, "augment=xray", "augment.shear=0") == ["RandomFlip",
                                                                           "RandomZoom"]
    xray = augment.augmentation(compose_config("augment=xray").augment)
    zoom, shear = xray.layers[1], xray.layers[2]
    assert zoom.height_factor == 0.2 and list(shear.x_factor) == [0.0, 0.2]


@pytest.mark.parametrize("preset", ["basic", "xray", "randaugment"])
def test_augmentation_acts_only_in_training(compose_config, preset) -> None:
    import keras

    cfg = compose_config("model=cnn", f"augment={preset}")
    keras.utils.set_random_seed(0)
    plain = models.build(cfg.model, (16, 16, 3), 2, 255.0)
    augmented = models.build(cfg.model, (16, 16, 3), 2, 255.0, cfg.augment)
    augmented.set_weights(plain.get_weights())  # the random layers have no weights
    x = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)).astype("float32")
    expected = plain.predict(x, verbose=0)
    assert np.allclose(augmented.predict(x, verbose=0), expected, atol=1e-6)
    assert np.allclose(augmented(x), expected, atol=1e-6)  # a call that does not say: exports
    assert not np.allclose(augmented(x, training=True), plain(x, training=True), atol=1e-4)


def test_strengths_sweep_and_are_hyperparameters() -> None:
    from sweeper.preflight import trial_configs

    args = ["augment=xray", "augment.zoom=0.1,0.2"]
    configs = list(trial_configs(args, True, None, "config"))
    assert sorted(c.augment.zoom for c in configs) == [0.1, 0.2]
    values = hparams.trial_hparams(configs[0], args, {"augment": "xray"})
    assert values["augment"] == "xray" and values["augment.zoom"] in (0.1, 0.2)


def _mixed_folder(root: Path) -> None:
    """train/ and test/ of two classes, in every colour mode a folder of photos may hold."""
    rng = np.random.default_rng(0)
    modes = ("RGB", "RGBA", "L", "P")
    for split, count in (("train", 16), ("test", 6)):
        for label, name in enumerate(("NORMAL", "PNEUMONIA")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                base = 60 + 120 * label
                pixels = rng.normal(base, 30, (20 + i % 3, 18, 3)).clip(0, 255).astype(np.uint8)
                mode = modes[i % 4]
                suffix = "jpg" if mode in ("RGB", "L") and i % 2 else "png"
                Image.fromarray(pixels).convert(mode).save(folder / f"{i}.{suffix}")


def _saved_model_cli(model_dir: Path, x: np.ndarray, out: Path) -> np.ndarray:
    np.save(out.with_suffix(".npy"), x)
    cli = Path(sys.executable).with_name("saved_model_cli")
    done = subprocess.run([str(cli), "run", "--dir", str(model_dir), "--tag_set", "serve",
                           "--signature_def", "serving_default", "--inputs",
                           f"pixels={out.with_suffix('.npy')}", "--outdir", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (result,) = out.glob("*.npy")
    return np.load(result)


@pytest.mark.slow  # two trials, two exports and saved_model_cli twice: about two minutes
def test_image_folder_sweeps_augmentation_and_exports_take_raw_pixels(tmp_path) -> None:
    import keras
    from omegaconf import OmegaConf

    _mixed_folder(tmp_path / "xrays")
    done = run_cli("-m", "augment=none,xray", "model=cnn", "dataset=directory",
                   f"dataset.path={tmp_path / 'xrays'}", "dataset.color_mode=rgb",
                   "dataset.image_size=[16,16]", "train.epochs=1", "train.batch_size=4",
                   "sweep.name=aug", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "experiments" / "aug"
    trials = records(sweep)
    assert [r["status"] for r in trials] == ["completed"] * 2
    assert sorted(r["hparams"]["augment"] for r in trials) == ["none", "xray"]
    assert sorted(pd.read_csv(sweep / "leaderboard.csv")["hp.augment"]) == ["none", "xray"]

    # The test split's score is what the checkpoint scores on the folder's test/ images.
    xray = next(r for r in trials if r["hparams"]["augment"] == "xray")
    cfg = OmegaConf.load(sweep / "trials" / xray["trial_id"] / "config.yaml")
    splits = data.load(cfg.dataset, cfg.train.validation_split)
    model = keras.models.load_model(sweep / "trials" / xray["trial_id"] / "checkpoints" /
                                    "best.keras")
    batches = list(splits.test_batches(64))
    x, y = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    assert len(y) == 12 and x.shape[1:] == (16, 16, 3)
    accuracy = float(np.float32(np.mean(np.argmax(model.predict(x, verbose=0), 1) == y)))
    assert accuracy == xray["metrics"]["test_accuracy"]

    # Served models take raw pixels, without augmentation: the promoted one and the xray one.
    best = json.loads((sweep / "best" / "best.json").read_text())
    assert best["serving"]["shape"] == [None, 16, 16, 3]
    promoted = keras.models.load_model(sweep / "best" / "model.keras")
    served = _saved_model_cli(sweep / "best" / "saved_model" / "1", x, tmp_path / "best_out")
    assert np.allclose(served, promoted.predict(x, verbose=0), atol=1e-5)
    exported = run_cli("experiments/aug", "--format", "saved_model", "--out", "xray_model",
                       "--trial", xray["trial_id"], cwd=tmp_path, module="sweeper.export")
    assert exported.returncode == 0, exported.stderr[-2000:]
    (version,) = (p for p in (tmp_path / "xray_model").iterdir() if p.name.isdigit())
    served = _saved_model_cli(version, x, tmp_path / "xray_out")
    assert np.allclose(served, model.predict(x, verbose=0), atol=1e-5)
    assert np.allclose(model.predict(x, verbose=0), model.predict(x, verbose=0))
