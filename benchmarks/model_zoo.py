"""Every built-in model, trained with its defaults: does it learn, how fast, at what size?

    python benchmarks/model_zoo.py [--models mlp cnn ...] [--epochs 20] [--out DIR]

Datasets:

- digits (the embedded default: 1,797 8x8 images, 10 classes);
- a Fashion-MNIST-format set: the real files when they are in the Keras cache
  (``~/.keras/datasets/fashion-mnist``, limited to ``--fashion-train`` training images), else the
  test mirror's learnable generator (tests/helpers/mirror.py: ten classes of blob patterns, shifted,
  dimmed and noisy; logistic regression on its pixels scores about 0.66), served in the real IDX
  format by a local HTTP server and downloaded through Keras's own code into a private cache.

Models: mlp, cnn, lenet5, alexnet, vgg16 from scratch, and the keras.applications backbones
(mobilenet_v2, efficientnet_b0, resnet50) with ImageNet weights where the weights are already in
the Keras cache (skipped otherwise: this benchmark downloads nothing from the internet).

Each dataset is one real grid sweep (``python -m sweeper -m model=...``) on one worker, so the
time per epoch is a trial's alone. Printed per model: validation accuracy after epoch 1, 3 and the
last epoch (the default is 20), the best, whether the tripwire fired, seconds per epoch (fit time
over epochs) and parameters. Targets: every from-scratch model >= 0.90 on digits within the
default epochs and >= 0.50 after epoch 1 (chance is 0.10).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the figures, not TensorFlow's start-up lines
sys.path.insert(0, str(ROOT / "tests"))

from helpers.mirror import SERVED, serve, write_fashion  # noqa: E402

SCRATCH = ["mlp", "cnn", "lenet5", "alexnet", "vgg16"]
BACKBONES = ["mobilenet_v2", "efficientnet_b0", "resnet50"]
TARGET_BEST, TARGET_FIRST = 0.90, 0.50  # on digits, for the from-scratch models


def cached_backbones(keras_home: Path) -> list[str]:
    """The backbones whose ImageNet weights (at their default input size) are in the cache."""
    from omegaconf import OmegaConf

    from sweeper.trial.backbones import weights_download

    found = []
    for name in BACKBONES:
        download = weights_download(OmegaConf.load(ROOT / "conf" / "model" / f"{name}.yaml"))
        if download is not None and download.target(keras_home).is_file():
            found.append(name)
    return found


def sweep(root: Path, name: str, models: list[str], epochs: int, extra: list[str]) -> list[dict]:
    """One grid sweep of ``models`` on one worker; a row of figures per model."""
    command = [sys.executable, "-m", "sweeper", "-m", f"model={','.join(models)}",
               f"train.epochs={epochs}", f"sweep.name={name}", "hydra.launcher.workers=1",
               "sweep.allow_failures=true", *extra]  # a model that fails is a row, not the end
    tic = time.time()
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    print(f"{name}: {len(models)} models in {time.time() - tic:.0f} s", flush=True)
    rows = []
    for path in sorted((root / "experiments" / name).glob("trials/*/trial.json")):
        record = json.loads(path.read_text())
        rows.append(figures(record, path.parent))
    for model in sorted(set(models) - {r["model"] for r in rows}):
        print(f"{name}: {model} left no trial record (see the sweep's workers/ logs)")
    return sorted(rows, key=lambda r: [*SCRATCH, *BACKBONES].index(r["model"]))


def figures(record: dict, trial_dir: Path) -> dict:
    import keras

    nan = float("nan")
    val = [epoch.get("val_accuracy", nan) for epoch in record["history"]] or [nan]
    trained = max(1, int(record.get("epochs_trained") or len(val)))
    checkpoint = trial_dir / record["checkpoint"]
    params = keras.models.load_model(checkpoint, compile=False).count_params() \
        if checkpoint.is_file() else 0
    return {"model": record["hparams"]["model"], "status": record["status"], "val": val,
            "best": max(val), "test": record["metrics"].get("test_accuracy", nan),
            "s_per_epoch": record["timings"].get("fit_s", nan) / trained,
            "params": params, "tripwire": "mismatch" in record, "error": record.get("error")}


def table(title: str, rows: list[dict], epochs: int, targets: bool) -> list[str]:
    lines = [f"\n{title}",
             f"| model | val acc epoch 1 | epoch 3 | epoch {epochs} | best | test acc | "
             "s/epoch | params | tripwire |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    missed = []
    for r in rows:
        val = r["val"]
        at = [f"{val[e - 1]:.3f}" if len(val) >= e else "-" for e in (1, 3, epochs)]
        lines.append(f"| {r['model']} | {' | '.join(at)} | {r['best']:.3f} | {r['test']:.3f} | "
                     f"{r['s_per_epoch']:.2f} | {r['params']:,} | "
                     f"{'fired' if r['tripwire'] else 'quiet'} |"
                     + (f" failed: {r['error']}" if r["status"] == "failed" else ""))
        if targets and r["model"] in SCRATCH and (r["best"] < TARGET_BEST or
                                                  val[0] < TARGET_FIRST):
            missed.append(r["model"])
    if targets:
        lines.append(f"targets (best >= {TARGET_BEST}, epoch 1 >= {TARGET_FIRST}): " +
                     (f"missed by {', '.join(missed)}" if missed else "met by every model"))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=SCRATCH + BACKBONES,
                        default=SCRATCH + BACKBONES)
    parser.add_argument("--epochs", type=int, default=20, help="the default: train.epochs")
    parser.add_argument("--datasets", nargs="+", choices=["digits", "fashion"],
                        default=["digits", "fashion"])
    parser.add_argument("--fashion-train", type=int, default=3000,
                        help="training images of the Fashion-MNIST-format set")
    parser.add_argument("--out", type=Path, default=None, help="keep the sweeps here")
    args = parser.parse_args()
    root = (args.out or Path(tempfile.mkdtemp(prefix="model-zoo-"))).resolve()
    root.mkdir(parents=True, exist_ok=True)

    from sweeper.downloads import keras_home

    home = keras_home()
    backbones = cached_backbones(home)
    models = [m for m in args.models if m in SCRATCH or m in backbones]
    for name in sorted(set(args.models) - set(models)):
        print(f"{name}: skipped (its ImageNet weights are not in {home}/models)")
    print(f"in {root}", flush=True)

    lines = []
    if "digits" in args.datasets:
        rows = sweep(root, "digits", models, args.epochs, [])
        lines += table("digits (the embedded default: 8x8 images, 10 classes)", rows, args.epochs,
                       targets=True)
    if "fashion" in args.datasets:
        real = home / "datasets" / "fashion-mnist"
        if all((real / f).is_file() for f in SERVED["fashion_mnist"]):
            extra, title = ["dataset=fashion_mnist", f"dataset.limit={args.fashion_train}"], \
                f"Fashion-MNIST (the real files, {args.fashion_train} training images)"
            rows = sweep(root, "fashion", models, args.epochs, extra)
        else:
            folder = root / "mirror"
            folder.mkdir(exist_ok=True)
            write_fashion(folder, args.fashion_train, args.fashion_train // 5, learn=True)
            with serve(folder, write=False) as mirror:
                extra = [*mirror.overrides("fashion_mnist"), f"dataset.cache_dir={root}/keras"]
                rows = sweep(root, "fashion", models, args.epochs, extra)
            title = (f"Fashion-MNIST format, learnable generator ({args.fashion_train} training "
                     f"images, 28x28, served from 127.0.0.1)")
        lines += table(title, rows, args.epochs, targets=False)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
