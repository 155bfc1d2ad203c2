"""Image folders: the streamed tf.data pipeline against the old in-memory loader and Keras's
``image_dataset_from_directory`` + ``prefetch``, training the CNN through the pool.

    python benchmarks/data_benchmark.py [--sizes 5000,20000] [--ways old,new,keras] [--repeat N]
                                        [--out DIR]

Generates folders of JPEGs (two classes, 128x128, random smooth content; kept in --out and reused
on a re-run), then for each folder size and each loader runs a 2-trial sweep (optimizer=adam,sgd,
model=cnn, one epoch, dataset.cache=none) with the pool's 2 CPU workers, one trial each. Prints,
per run: images/s while fitting ((train + validation images) / fit seconds, the mean of the two
trials), images/s end to end ((train + validation + test) / (loading + fit + evaluation), loading
counted where it happens: the old loader reads the folder while the worker warms up), the
workers' CPU time per image (loading and trial), each worker's peak RSS (VmHWM), and the ratios to
the Keras reference. With --repeat the loaders run in turn and medians are shown.

Targets: peak worker RSS <= 1.5 GB with dataset.cache=none whatever the folder's size (flat from
5,000 to 20,000 images); images/s >= 0.9 x the Keras reference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SIDE = 128


def make_folder(root: Path, images: int) -> Path:
    """``images`` JPEGs in two class folders (reused when already there)."""
    from PIL import Image

    folder = root / f"jpegs_{images}"
    done = folder / ".complete"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(images)
    for label, name in enumerate(("cats", "dogs")):
        (folder / name).mkdir(parents=True)
        for i in range(images // 2):
            # Smooth random content (8x8 noise scaled up) keeps files at photo-like sizes.
            small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) // (1 + label)
            img = Image.fromarray(small).resize((SIDE, SIDE), Image.Resampling.BILINEAR)
            img.save(folder / name / f"{i:05d}.jpg", quality=90)
    done.touch()
    return folder


def run(folder: Path, way: str, work: Path) -> dict:
    """One 2-trial sweep with the loader ``way``; what its workers and trials report."""
    name = f"{way}_{folder.name}"
    report = work / "reports" / name
    shutil.rmtree(report, ignore_errors=True)
    shutil.rmtree(work / "experiments" / name, ignore_errors=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "SWEEPER_BENCH_LOADER": way,
           "SWEEPER_BENCH_OUT": str(report),
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, str(HERE / "data_bench_app.py"), "-m", "optimizer=adam,sgd",
           "model=cnn", "dataset=directory", f"dataset.path={folder}", "dataset.color_mode=rgb",
           f"dataset.image_size=[{SIDE},{SIDE}]", "dataset.cache=none", "train.epochs=1",
           "hydra.launcher.workers=2", "hydra.launcher.live=false", f"sweep.name={name}",
           f"paths.experiments={work / 'experiments'}", f"paths.logs={work / 'logs'}",
           "~hydra.callbacks.sweep"]  # no leaderboard or promotion: only the trials count
    tic = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - tic
    if done.returncode != 0:
        sys.exit(f"benchmark sweep failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    workers = [json.loads(p.read_text()) for p in sorted(report.glob("*.json"))]
    trials = [json.loads(p.read_text())
              for p in sorted((work / "experiments" / name).glob("trials/*/trial.json"))]
    if len(trials) != 2 or any(t["status"] != "completed" for t in trials) or len(workers) != 2:
        sys.exit(f"{name}: expected 2 completed trials in 2 workers; see {work / 'experiments'}")
    counts = workers[0]["counts"]
    fit, end_to_end, cpu = [], [], []
    for t, w in zip(trials, workers, strict=True):
        timing = t["timings"]
        fit.append((counts["train"] + counts["val"]) / timing["fit_s"])
        seconds = w["warm_up_s"] + timing["load_s"] + timing["fit_s"] + timing["evaluate_s"]
        end_to_end.append(sum(counts.values()) / seconds)
        cpu.append(1000 * (w["load_cpu_s"] + w["trial_cpu_s"]) / sum(counts.values()))
    return {"way": way, "images": int(folder.name.split("_")[1]), "wall_s": wall,
            "fit_ips": float(np.mean(fit)), "e2e_ips": float(np.mean(end_to_end)),
            "cpu_ms": float(np.mean(cpu)), "rss_mb": [w["peak_rss_mb"] for w in workers],
            "counts": counts}


def median_run(runs: list[dict]) -> dict:
    """The runs of one loader and size summarised by their medians (peak RSS: the largest)."""
    out = dict(runs[0])
    for key in ("wall_s", "fit_ips", "e2e_ips", "cpu_ms"):
        out[key] = float(np.median([r[key] for r in runs]))
    out["rss_mb"] = [max(r["rss_mb"][i] for r in runs) for i in range(len(runs[0]["rss_mb"]))]
    return out


LABELS = {"old": "old in-memory (PIL)", "new": "tf.data pipeline", "keras": "Keras reference"}


def table(rows: list[dict]) -> None:
    print(f"{'loader':22} {'images':>7} {'fit img/s':>10} {'vs keras':>9} {'e2e img/s':>10} "
          f"{'vs keras':>9} {'CPU ms/img':>11} {'vs keras':>9} {'peak RSS MB (w1, w2)':>21} "
          f"{'wall s':>7}")
    for r in rows:
        ref = next((k for k in rows if k["way"] == "keras" and k["images"] == r["images"]), None)

        def ratio(key: str, row: dict = r, keras: dict | None = ref) -> str:
            return f"{row[key] / keras[key]:9.2f}" if keras else f"{'-':>9}"

        rss = ", ".join(f"{m:.0f}" for m in r["rss_mb"])
        print(f"{LABELS[r['way']]:22} {r['images']:7d} {r['fit_ips']:10.1f} {ratio('fit_ips')} "
              f"{r['e2e_ips']:10.1f} {ratio('e2e_ips')} {r['cpu_ms']:11.1f} {ratio('cpu_ms')} "
              f"{rss:>21} {r['wall_s']:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,20000", help="folder sizes, comma-separated")
    parser.add_argument("--ways", default="old,new,keras", help="loaders, comma-separated")
    parser.add_argument("--out", type=Path, help="keep folders and runs here (default: temp)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each loader, in turn; medians are shown")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    ways = args.ways.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = []
        for images in sizes:
            folder = make_folder(work, images)
            runs: dict[str, list[dict]] = {way: [] for way in ways}
            for _ in range(args.repeat):  # in turn, so that other load falls on every loader
                for way in ways:
                    runs[way].append(run(folder, way, work))
                    print(json.dumps(runs[way][-1]), file=sys.stderr, flush=True)  # partial
            rows += [median_run(runs[way]) for way in ways]
    print(f"CNN, 1 epoch, {SIDE}x{SIDE} RGB JPEGs, 2 trials through the pool with 2 CPU workers; "
          f"{os.cpu_count()} cores\n")
    table(rows)
    print("\nfit img/s: (train + validation images) / fit seconds, mean of the 2 trials.")
    print("e2e img/s: all images / (loading + fit + evaluation) seconds; the old loader loads "
          "while the worker warms up.")
    print("CPU ms/img: the worker's CPU time loading the data and running the trial, per image "
          "(other load on a shared machine changes img/s, not this).")
    print("targets: peak worker RSS <= 1536 MB with dataset.cache=none, flat in the folder size; "
          "tf.data pipeline img/s >= 0.9 x the Keras reference")


if __name__ == "__main__":
    main()
