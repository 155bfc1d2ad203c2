"""Pool launcher against the baselines, on the seed preset (8 trials, digits, 5 epochs each).

    python benchmarks/pool_benchmark.py [--repeat N] [--out DIR]

Runs, side by side on this machine:
  (a) the HParams tutorial's hand-written loop (Listing 5-5): the same 8 models in one process;
  (b) one fresh Python process per trial (what submitit-local or Ray GPU tasks pay);
  Hydra's basic launcher (sequential, one process);
  the pool launcher with 1 and with 2 CPU workers.
Prints wall times, ratios to (a), and the pool's per-trial overhead: (sweep wall time - sum of
the trials' own fit + evaluate time) / trials. Every run is a whole command, start-up included.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from itertools import product
from pathlib import Path

SEED = [f"model.units={u} model.dropout={d} optimizer={o}"
        for u, d, o in product((16, 32), (0.1, 0.2), ("adam", "sgd"))]

# Listing 5-5 of the tutorial, on the embedded digits with sweeper's split, written to TensorBoard.
TUTORIAL_LOOP = """
import os, sys
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp
from omegaconf import OmegaConf
from sweeper.trial import data
cfg = OmegaConf.load(os.path.join(sys.argv[1], "conf", "dataset", "digits.yaml"))
s = data.load(cfg, 0.2)
HP_NUM_UNITS = hp.HParam('num_units', hp.Discrete([16, 32]))
HP_DROPOUT = hp.HParam('dropout', hp.RealInterval(0.1, 0.2))
HP_OPTIMIZER = hp.HParam('optimizer', hp.Discrete(['adam', 'sgd']))
with tf.summary.create_file_writer('logs/hparam_tuning').as_default():
    hp.hparams_config(hparams=[HP_NUM_UNITS, HP_DROPOUT, HP_OPTIMIZER],
                      metrics=[hp.Metric('accuracy', display_name='Accuracy')])
def train_test_model(hparams):
    model = tf.keras.models.Sequential([
        tf.keras.layers.Input(s.input_shape), tf.keras.layers.Rescaling(1 / s.scale),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(hparams[HP_NUM_UNITS], activation=tf.nn.relu),
        tf.keras.layers.Dropout(hparams[HP_DROPOUT]),
        tf.keras.layers.Dense(10, activation=tf.nn.softmax)])
    model.compile(optimizer=hparams[HP_OPTIMIZER], loss='sparse_categorical_crossentropy',
                  metrics=['accuracy'])
    model.fit(s.x_train, s.y_train, epochs=5, batch_size=32, verbose=0,
              validation_data=(s.x_val, s.y_val))
    _, accuracy = model.evaluate(s.x_test, s.y_test, verbose=0)
    return accuracy
session_num = 0
for num_units in HP_NUM_UNITS.domain.values:
    for dropout_rate in (HP_DROPOUT.domain.min_value, HP_DROPOUT.domain.max_value):
        for optimizer in HP_OPTIMIZER.domain.values:
            hparams = {HP_NUM_UNITS: num_units, HP_DROPOUT: dropout_rate, HP_OPTIMIZER: optimizer}
            run_dir = 'logs/hparam_tuning/run-%d' % session_num
            with tf.summary.create_file_writer(run_dir).as_default():
                hp.hparams(hparams)
                tf.summary.scalar('accuracy', train_test_model(hparams), step=1)
            session_num += 1
"""

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall time of the command, and the time.time() it started at."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.time()
    tic = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - tic
    if done.returncode != 0:
        sys.exit(f"benchmark command failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return wall, start


def trial_work(sweep_dir: Path) -> tuple[float, float]:
    """Sum of the trials' own fit + evaluate seconds, and when the last trial finished."""
    total, last = 0.0, 0.0
    for path in sweep_dir.glob("trials/*/trial.json"):
        record = json.loads(path.read_text())
        total += record["timings"]["fit_s"] + record["timings"]["evaluate_s"]
        last = max(last, datetime.fromisoformat(record["finished_at"]).timestamp())
    return total, last


Row = tuple[float, float | None, float | None]  # wall, to the last trial's end, overhead


def run_once(work: Path) -> dict[str, Row]:
    py = sys.executable
    results: dict[str, Row] = {}
    results["(a) in-process loop"] = (timed([py, "-c", TUTORIAL_LOOP, str(ROOT)], work)[0],
                                      None, None)
    per_trial = 0.0
    for i, overrides in enumerate(SEED):
        per_trial += timed([py, "-m", "sweeper", *overrides.split(), "train.epochs=5",
                            f"sweep.name=fresh{i}"], work)[0]
    results["(b) fresh process per trial"] = (per_trial, None, None)
    for label, name, extra in (
        ("hydra basic launcher", "basic", ["hydra/launcher=basic"]),
        ("pool, 1 worker", "pool1", ["hydra.launcher.workers=1", "hydra.launcher.live=false"]),
        ("pool, 2 workers", "pool2", ["hydra.launcher.workers=2", "hydra.launcher.live=false"]),
    ):
        wall, start = timed([py, "-m", "sweeper", "-m", "+search=seed", f"sweep.name={name}",
                             *extra], work)
        work_s, last = trial_work(work / "experiments" / name)
        trials_wall = last - start
        results[label] = (wall, trials_wall, (trials_wall - work_s) / len(SEED))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the median is shown")
    parser.add_argument("--out", type=Path, help="keep the runs' outputs here (default: temp)")
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            work = args.out or Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            runs.append(run_once(work))
    base = statistics.median(r["(a) in-process loop"][0] for r in runs)
    print(f"seed preset: {len(SEED)} trials x 5 epochs on digits; {os.cpu_count()} cores; "
          f"median of {args.repeat} run(s)\n")
    print(f"{'configuration':30} {'wall s':>7} {'vs (a)':>7} {'trials s':>9} {'vs (a)':>7} "
          f"{'overhead/trial s':>17}")
    for label in runs[0]:
        wall = statistics.median(r[label][0] for r in runs)
        line = f"{label:30} {wall:7.1f} {wall / base:7.2f}"
        if runs[0][label][1] is not None:
            trials = statistics.median(float(r[label][1] or 0) for r in runs)
            over = statistics.median(float(r[label][2] or 0) for r in runs)
            line += f" {trials:9.1f} {trials / base:7.2f} {over:17.2f}"
        print(line)
    print("\nwall: the whole command; trials: from its start to the end of the last trial (the")
    print("sweep's leaderboard, plots and SavedModel promotion come after). overhead/trial: ")
    print("(trials - sum of the trials' fit + evaluate) / trials.")
    print("targets: pool 1 worker <= 1.10 x (a); pool 2 workers <= 0.65 x (a)")


if __name__ == "__main__":
    main()
