"""The pool launcher on one GPU: packing, a trial's cost over a bare model.fit, GPU memory
given back between trials, mixed precision.

    python benchmarks/gpu_benchmark.py [--gpu 0] [--budget 420] [--out DIR] [--cpu]

On a machine with an NVIDIA GPU (about 5-7 minutes on one H200), in turn:
  (a) the seed preset (8 MLP trials x 5 epochs, digits) and a CNN sweep (4 trials x 2 epochs,
      20,000 MNIST-sized images) on one GPU with trials_per_device=1, 2 and 4 (packed trials with
      memory_per_trial=auto): wall time, the GPU's
      mean utilisation over the sweep (sampled here with nvidia-smi), the trials' own figures
      from their records (sampled by the sweep through NVML; empty without nvidia-ml-py);
  (b) a bare model.fit against one trial of the same model, data, epochs and batch size (the
      trial adds its callbacks: record, checkpoint, TensorBoard, backup): throughput ratio,
      target >= 0.95;
  (c) GPU memory given back between trials: the most processes holding memory on the GPU at
      once while a sweep ran, against the trials it runs at once (a warm standby worker must
      hold none), and the memory in use after each sweep against before;
  (d) train.mixed_precision on against off, where this version has that setting;
  (e) a memory share enforced: an MLP whose weights alone exceed memory_per_trial=256, packed
      beside a small one, must fail with "out of GPU memory", then complete alone (run first).
A part that would overrun --budget is skipped and says so. Without a GPU the script says so and
measures nothing; --cpu runs a small version of (a), (b) and (d) on CPU workers instead, to check
the script itself (those figures say nothing about GPUs). The CNN's images are synthetic (no
download): the figures are about speed, not accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sweeper.launch.devices import Gpu, list_gpus  # nvidia-smi's list: no TensorFlow, no CUDA

SEED = ["+search=seed"]
CNN = ["model=cnn", "model.units=64,128", "optimizer=adam,sgd", "dataset=mnist",
       "dataset.limit=20000", "train.epochs=2", "train.batch_size=64"]
# 64 x 2**21 float32 weights (512 MiB) cannot fit a 256 MiB share, and fit the GPU easily.
TOO_BIG = ["model=mlp", "model.units=16,2097152", "optimizer=sgd", "train.epochs=1"]
FIT = ["model=cnn", "dataset=mnist", "train.epochs=3", "train.batch_size=64"]  # 48,000 images

# The trial's own model, data and compile, fitted with no callbacks.
BARE_FIT = """
import json, sys, time
from hydra import compose, initialize_config_module
from sweeper.config.schema import CONFIG_MODULE, register
register()
with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
    cfg = compose("config", overrides=sys.argv[1:])
import keras
from sweeper.trial import data, models
keras.utils.set_random_seed(cfg.train.seed)
s = data.load(cfg.dataset, cfg.train.validation_split)
model = models.build(cfg.model, s.input_shape, s.num_classes, s.scale)
model.compile(optimizer=models.optimizer(cfg.optimizer), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
tic = time.time()
model.fit(s.x_train, s.y_train, epochs=cfg.train.epochs, batch_size=cfg.train.batch_size,
          validation_data=(s.x_val, s.y_val), verbose=0)
print(json.dumps({"fit_s": time.time() - tic, "examples": len(s.x_train)}))
"""


def synthetic_mnist(cache: Path) -> None:
    """An MNIST-shaped ``mnist.npz`` in a Keras cache: each class a bright block in its own
    place on noise, so models learn it (no download on a machine that has no internet)."""
    rng = np.random.default_rng(0)

    def images(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 80, (n, 28, 28), dtype=np.uint8)
        for c in range(10):
            row, col = 2 + (c // 5) * 12, 1 + (c % 5) * 5
            x[y == c, row:row + 10, col:col + 5] += 150
        return x, y

    (cache / "datasets").mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = images(60000), images(10000)
    np.savez(cache / "datasets" / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test)


@dataclass
class Watch:
    """The GPU as nvidia-smi reports it, twice a second, on a thread of this script."""

    gpu: Gpu | None
    samples: list[tuple[float, float, int, int]] = field(default_factory=list)
    # (time, utilisation %, memory used MiB, processes holding memory on it)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Watch:
        if self.gpu is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self.gpu is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            sample = gpu_now(self.gpu)
            if sample is not None:
                self.samples.append((time.time(), *sample))


def gpu_now(gpu: Gpu | None) -> tuple[float, int, int] | None:
    """Utilisation %, memory used (MiB) and the processes holding memory on ``gpu``."""
    if gpu is None:
        return None
    try:
        util, used = subprocess.run(
            ["nvidia-smi", "-i", gpu.index, "--query-gpu=utilization.gpu,memory.used",
             "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10,
            check=True).stdout.strip().split(",")
        apps = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=gpu_uuid,pid", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    procs = sum(1 for line in apps.splitlines() if line.split(",")[0].strip() == gpu.uuid)
    return float(util), int(float(used)), procs


@dataclass
class Bench:
    work: Path
    gpu: Gpu | None
    deadline: float
    env: dict[str, str]
    swept: dict[tuple[str, int], dict[str, Any] | None] = field(default_factory=dict)

    def left(self) -> float:
        return self.deadline - time.time()

    def launcher(self, packed: int) -> list[str]:
        """The pool on the one GPU with ``packed`` trials on it (CPU: that many workers)."""
        if self.gpu is None:
            return ["hydra.launcher.devices=cpu", f"hydra.launcher.workers={packed}"]
        return [f"hydra.launcher.devices=[{self.gpu.index}]",
                f"hydra.launcher.trials_per_device={packed}",
                *(["hydra.launcher.memory_per_trial=auto"] if packed > 1 else [])]

    def sweep(self, name: str, overrides: list[str], packed: int,
              launcher: list[str] | None = None) -> dict[str, Any] | None:
        """Run one sweep; its wall time, the GPU's figures meanwhile, and its records."""
        cmd = [sys.executable, "-m", "sweeper", "-m", *overrides,
               *(self.launcher(packed) if launcher is None else launcher),
               f"sweep.name={name}", "hydra.launcher.live=false"]
        before = gpu_now(self.gpu)
        with Watch(self.gpu) as watch:
            tic = time.time()
            try:
                done = subprocess.run(cmd, cwd=self.work, env=self.env, capture_output=True,
                                      text=True, timeout=max(1.0, self.left()))
            except subprocess.TimeoutExpired:
                return None
            wall = time.time() - tic
        if done.returncode != 0:
            print(f"  {name}: exit status {done.returncode}\n{done.stderr[-2000:]}")
            return None
        time.sleep(1.0)  # the last worker's exit gives its memory back
        after = gpu_now(self.gpu)
        found = [json.loads(p.read_text())
                 for p in (self.work / "experiments" / name).glob("trials/*/trial.json")]
        usage = [r["gpu_usage"] for r in found if r.get("gpu_usage")]
        limits = [g.get("memory_limit_mib") for r in found for g in r.get("gpus", [])]
        return {"wall": wall, "trials": len(found), "log": done.stdout + done.stderr,
                "records": found, "limit": max((x for x in limits if x), default=None),
                "completed": sum(r["status"] == "completed" for r in found),
                "util": statistics.mean(s[1] for s in watch.samples) if watch.samples else None,
                "trial_util": statistics.mean(u["utilisation_mean"] for u in usage)
                if usage else None,
                "trial_mib": max(u["memory_peak_mib"] for u in usage) if usage else None,
                "procs": max((s[3] for s in watch.samples), default=None),
                "used_before": before[1] if before else None,
                "used_after": after[1] if after else None,
                "fit_s": [r["timings"].get("fit_s") for r in found],
                "metrics": [r["metrics"] for r in found]}


def part_a(b: Bench, packings: tuple[int, ...], sweeps: dict[str, list[str]]) -> list[str]:
    lines = [f"{'sweep':14} {'per GPU':>7} {'wall s':>7} {'vs 1':>5} {'done':>5} "
             f"{'GPU util % sweep':>17} {'trials':>7} {'peak MiB':>9} {'limit':>7} "
             f"{'procs':>6}"]
    for label, overrides in sweeps.items():
        base = None
        for k in packings:
            if b.left() < 30:
                lines.append(f"{label:14} {k:>7} skipped: out of time")
                continue
            r = b.swept[(label, k)] = b.sweep(f"{label}-{k}", overrides, k)
            if r is None:
                lines.append(f"{label:14} {k:>7} failed or timed out")
                continue
            base = base or r["wall"]
            lines.append(
                f"{label:14} {k:>7} {r['wall']:7.1f} {r['wall'] / base:5.2f} "
                f"{r['completed']:>2}/{r['trials']:<2} {fmt(r['util']):>17} "
                f"{fmt(r['trial_util']):>7} {fmt(r['trial_mib'], 0):>9} "
                f"{fmt(r['limit'], 0):>7} {fmt(r['procs'], 0):>6}")
    return lines


def part_b(b: Bench, overrides: list[str]) -> list[str]:
    if b.left() < 90:
        return ["skipped: out of time"]
    env = dict(b.env)
    if b.gpu is not None:  # the environment of an unpacked trial's worker
        env.update(CUDA_VISIBLE_DEVICES=b.gpu.index, CUDA_DEVICE_ORDER="PCI_BUS_ID")
    else:
        env.update(CUDA_VISIBLE_DEVICES="-1")
    try:
        bare = subprocess.run([sys.executable, "-c", BARE_FIT, *overrides], cwd=b.work, env=env,
                              capture_output=True, text=True, timeout=max(1.0, b.left()))
    except subprocess.TimeoutExpired:
        return ["bare model.fit timed out"]
    if bare.returncode != 0:
        return [f"bare model.fit failed: {bare.stderr[-1500:]}"]
    fit = json.loads(bare.stdout.strip().splitlines()[-1])
    trial = b.sweep("fit-trial", overrides, 1)
    if trial is None or not trial["fit_s"] or trial["fit_s"][0] is None:
        return ["the trial failed or timed out"]
    epochs = int(next(o for o in overrides if o.startswith("train.epochs=")).split("=")[1])
    bare_rate = fit["examples"] * epochs / fit["fit_s"]
    trial_rate = fit["examples"] * epochs / trial["fit_s"][0]
    return [f"bare model.fit {bare_rate:8.0f} examples/s ({fit['fit_s']:.1f} s)",
            f"in a trial     {trial_rate:8.0f} examples/s ({trial['fit_s'][0]:.1f} s)",
            f"ratio          {trial_rate / bare_rate:8.2f}  (target >= 0.95)"]


def part_c(b: Bench) -> list[str]:
    if b.gpu is None:
        return ["needs a GPU"]
    lines = []
    for (label, k), r in b.swept.items():
        if r is None:
            continue
        procs = r["procs"]
        verdict = "no samples" if procs is None else \
            "nvidia-smi lists no processes here (a container?)" if procs == 0 else \
            "ok" if procs <= k else f"{procs - k} more than the trials: idle workers hold memory"
        lines.append(f"{label}-{k}: at most {fmt(procs, 0)} process(es) on the GPU for {k} "
                     f"trial(s) at once: {verdict}; memory in use {fmt(r['used_before'], 0)} MiB "
                     f"before, {fmt(r['used_after'], 0)} MiB after")
    return lines or ["no sweep of (a) ran"]


def part_d(b: Bench, overrides: list[str]) -> list[str]:
    from hydra import compose, initialize_config_module

    from sweeper.config.schema import CONFIG_MODULE, register

    register()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose("config")
    if "mixed_precision" not in cfg.train:
        return ["skipped: train.mixed_precision is not a setting of this version"]
    lines = []
    for on in ("false", "true"):
        if b.left() < 60:
            lines.append(f"mixed_precision={on}: skipped, out of time")
            continue
        r = b.sweep(f"mixed-{on}", [*overrides, f"train.mixed_precision={on}"], 1)
        if r is None:
            lines.append(f"mixed_precision={on}: failed or timed out")
            continue
        acc = r["metrics"][0].get("val_accuracy") if r["metrics"] else None
        lines.append(f"mixed_precision={on:5}: fit {fmt(r['fit_s'][0])} s, val_accuracy "
                     f"{fmt(acc, 4)}, GPU util {fmt(r['util'])} %")
    return lines


def part_e(b: Bench) -> list[str]:
    if b.gpu is None:
        return ["needs a GPU"]
    if b.left() < 60:
        return ["skipped: out of time"]
    r = b.sweep("share", TOO_BIG, 2, [f"hydra.launcher.devices=[{b.gpu.index}]",
                                      "hydra.launcher.trials_per_device=2",
                                      "hydra.launcher.memory_per_trial=256"])
    if r is None:
        return ["the sweep failed or timed out"]
    lines = []
    for record in sorted(r["records"], key=lambda x: x["hparams"]["model.units"]):
        lines.append(f"units={record['hparams']['model.units']}: {record['status']} after "
                     f"{record['attempts']} attempt(s) on {record['slot']}"
                     + (f" ({record['error']})" if record["error"] else ""))
    retried = [line.split("]", 1)[-1].strip() for line in r["log"].splitlines()
               if "retrying with the GPU to itself" in line]
    lines += retried or ["no trial was retried with the GPU to itself"]
    ok = retried and "out of GPU memory" in retried[0] and \
        all(x["status"] == "completed" for x in r["records"])
    lines.append("verdict: " + ("ok, the share held and the retry alone completed" if ok else
                                "NOT as intended"))
    return lines


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", default="0", help="nvidia-smi index of the GPU to measure")
    parser.add_argument("--budget", type=float, default=420, help="seconds for all parts")
    parser.add_argument("--out", type=Path, help="keep the sweeps here (default: temp)")
    parser.add_argument("--cpu", action="store_true",
                        help="without a GPU, run small CPU versions to check this script")
    args = parser.parse_args()
    gpus = [g for g in list_gpus() if args.gpu in (g.index, g.uuid)]
    if not gpus:
        print(f"no GPU: nvidia-smi lists no GPU {args.gpu} on this machine; the GPU figures "
              f"(a)-(e) cannot be measured here.")
        if not args.cpu:
            return
        print("--cpu: small CPU versions of (a), (b), (d) follow; they check this script, "
              "not GPUs.\n")
    gpu = gpus[0] if gpus else None
    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        synthetic_mnist(work / "keras")
        cache = f"dataset.cache_dir={work / 'keras'}"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        b = Bench(work, gpu, time.time() + args.budget, env)
        if gpu is not None:
            packings = (1, 2, 4)
            sweeps = {"seed": SEED, "cnn": [*CNN, cache]}
            fit, mixed = [*FIT, cache], [*FIT, cache]
            print(f"GPU {gpu.index}: {gpu.name} ({gpu.uuid}), {gpu.memory_total_mib} MiB; "
                  f"budget {args.budget:.0f} s")
        else:
            small = ["train.epochs=1", "dataset.limit=300"]
            packings = (1, 2)
            sweeps = {"seed": [*SEED, *small]}
            fit = mixed = ["model=mlp", "train.epochs=2", "dataset.limit=300"]
        print("\n(e) a trial over its memory share (run first)")
        print("\n".join("  " + line for line in part_e(b)))
        print("\n(a) sweeps on one GPU: trials packed per GPU (CPU: workers)")
        print("\n".join(part_a(b, packings, sweeps)))
        print("  GPU util % sweep: nvidia-smi over the whole command; trials: the records' "
              "NVML mean while each trial ran;\n  peak MiB: the largest trial's; procs: most "
              "processes holding GPU memory at once;\n  limit: memory_per_trial "
              "(auto when packed)")
        print("\n(b) bare model.fit against a trial of the same model")
        print("\n".join("  " + line for line in part_b(b, fit)))
        print("\n(c) GPU memory given back between trials")
        print("\n".join("  " + line for line in part_c(b)))
        print("\n(d) mixed precision")
        print("\n".join("  " + line for line in part_d(b, mixed)))
        print(f"\ntotal {args.budget - b.left():.0f} s")


if __name__ == "__main__":
    main()
