"""train.mixed_precision and train.jit_compile: training images per second, bare Keras fit and a
whole sweeper trial, each switch against float32 without XLA.

    python benchmarks/speed_switches.py [--model mobilenet_v2] [--size 96] [--images 2048]
                                        [--epochs 3] [--batch 64] [--out DIR]

Makes a folder of random RGB images (two classes, --size pixels square), then for each setting
(mixed_precision x jit_compile) runs:
  (a) a bare `model.fit` of the same model (sweeper's own builder and wrapper, Adam), timing the
      epochs after the first (which traces and compiles), in a fresh process;
  (b) `python -m sweeper model=... dataset=directory` on that folder: images per second of its
      whole fit, the first epoch included, from trial.json.
Prints images/s and the ratio to the float32, no-XLA run of the same kind. Meant for a GPU (on a
CPU, float16 is emulated and slower).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from itertools import product
from pathlib import Path

BARE = r"""
import json, sys, time
import numpy as np
import keras
from hydra import compose, initialize_config_module
from sweeper.config.schema import register
from sweeper.trial import models
model_name, size, images, epochs, batch, mixed, jit = sys.argv[1:8]
size, images, epochs, batch = int(size), int(images), int(epochs), int(batch)
register()
with initialize_config_module(config_module="sweeper.conf", version_base="1.3"):
    cfg = compose("config", overrides=[f"model={model_name}", f"model.input_size={size}",
                                       "model.weights=null"] if "net" in model_name else
                  [f"model={model_name}"])
keras.mixed_precision.set_global_policy("mixed_float16" if mixed == "true" else "float32")
model = models.build(cfg.model, (size, size, 3), 2, 255.0)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
              jit_compile={"true": True, "false": False}[jit])
x = np.random.default_rng(0).integers(0, 256, (images, size, size, 3)).astype("uint8")
y = np.random.default_rng(1).integers(0, 2, images)
ends = []
class Clock(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        ends.append(time.perf_counter())
model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[Clock()])
print(json.dumps({"images_per_s": images * (len(ends) - 1) / (ends[-1] - ends[0])}))
"""


def folder(root: Path, size: int, images: int) -> Path:
    """``images`` random RGB PNGs in two class folders."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(images):
        cls = root / ("a" if i % 2 else "b")
        cls.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(cls / f"{i}.png")
    return root


def trial(work: Path, name: str, args: argparse.Namespace, data: Path, mixed: str,
          jit: str) -> float:
    backbone = [f"model.input_size={args.size}", "model.weights=null"] \
        if "net" in args.model else []
    done = subprocess.run(
        [sys.executable, "-m", "sweeper", f"model={args.model}", *backbone, "dataset=directory",
         f"dataset.path={data}", f"dataset.image_size=[{args.size},{args.size}]",
         "dataset.color_mode=rgb", f"train.epochs={args.epochs}",
         f"train.batch_size={args.batch}", f"train.mixed_precision={mixed}",
         f"train.jit_compile={jit}", f"sweep.name={name}"],
        cwd=work, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    (path,) = (work / "experiments" / name).glob("trials/*/trial.json")
    record = json.loads(path.read_text())
    # the training split: the images less the test and validation splits (0.2 each)
    trained = int(args.images * 0.8 * 0.8)
    return trained * record["epochs_completed"] / record["timings"]["fit_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="speed-switches-"))
    data = folder(work / "images", args.size, args.images)
    rows = []
    for mixed, jit in product(("false", "true"), ("false", "true")):
        bare = subprocess.run([sys.executable, "-c", BARE, args.model, str(args.size),
                               str(args.images), str(args.epochs), str(args.batch), mixed, jit],
                              capture_output=True, text=True)
        if bare.returncode:
            raise SystemExit(bare.stderr[-2000:])
        rate = json.loads(bare.stdout.strip().splitlines()[-1])["images_per_s"]
        rows.append((mixed, jit, rate, trial(work, f"m{mixed}-j{jit}", args, data, mixed, jit)))
    base_bare, base_trial = rows[0][2], rows[0][3]
    print(f"{args.model} {args.size}x{args.size}, batch {args.batch}, {args.epochs} epochs")
    print("mixed_precision jit_compile   bare img/s (x)     trial img/s (x)")
    for mixed, jit, bare_rate, trial_rate in rows:
        print(f"{mixed:>15} {jit:>11} {bare_rate:10.1f} ({bare_rate / base_bare:4.2f}) "
              f"{trial_rate:10.1f} ({trial_rate / base_trial:4.2f})")


if __name__ == "__main__":
    main()
