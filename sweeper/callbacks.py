"""Hydra callbacks around a sweep (configured under ``hydra.callbacks`` in conf/config.yaml)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sweeper import hparams
from sweeper.overrides import lines, sweep_arguments

log = logging.getLogger(__name__)


class SweepCallback(Callback):
    """Before a sweep: its HParams experiment config. After it, whichever launcher ran it: the
    leaderboard, plots, and the best trial promoted to ``best/``."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        logdir = Path(config.paths.logs) / config.sweep.name
        hparams.write_experiment(logdir, sweep_domains(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        finish_sweep(Path(str(config.hydra.sweep.dir)))


def finish_sweep(sweep_dir: Path, top: int = 10) -> None:
    """Leaderboard and plots of ``sweep_dir``, its top trials printed, its best one promoted."""
    from sweeper import report, results

    try:
        ranked, problems = results.leaderboard(sweep_dir)
    except results.NoResults as e:
        log.error("%s", e)
        return
    for problem in problems:
        log.warning("%s", problem)
    try:
        report.plots(sweep_dir, ranked)
    except Exception as e:  # a plot is not worth the promotion that follows
        log.warning("plots not written: %s: %s", type(e).__name__, e)
    results.print_table(ranked, top, title=f"sweep {sweep_dir.name}: top {top} of {len(ranked)}")
    log.info("leaderboard: %s", sweep_dir / results.LEADERBOARD_CSV)
    if ranked["rank"].isna().all():
        log.error("no completed trial: nothing promoted")
        return
    # SavedModel export needs TensorFlow, which this process must not import: a CPU-only child.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-m", "sweeper.promote", str(sweep_dir)], env=env,
                          capture_output=True, text=True)
    said = [line.removeprefix("sweeper: ") for line in (done.stdout + done.stderr).splitlines()
            if line.startswith("sweeper: ")]
    for line in said:
        level = logging.ERROR if line.startswith("error:") else \
            logging.WARNING if line.startswith("warning:") else logging.INFO
        log.log(level, "%s", line)
    if done.returncode != 0 and not any(line.startswith("error:") for line in said):
        # A crash, not one of promote's own errors: its last words are the clue.
        log.error("promotion failed (exit %d): %s", done.returncode,
                  " | ".join(done.stderr.strip().splitlines()[-3:]))


def sweep_domains(config: DictConfig) -> dict[str, hparams.Domain]:
    """Every hyperparameter a trial of this sweep records, with the values the sweep gives it.

    Values come from the sweep's overrides (``hydra.sweeper.params`` and the command line); a
    hyperparameter no override sweeps has the one value of the composed configuration. Sweep
    syntax the basic grid does not enumerate (intervals) is left to its own sweeper; the tuner
    sweeper's domains come from its search space (intervals as intervals).
    """
    from sweeper import search

    if search.is_tuner(config.hydra.sweeper):
        return search.domains(config)
    parsed = sweep_arguments(config.hydra.sweeper, list(config.hydra.overrides.task))
    domains: dict[str, hparams.Domain] = {
        k: [v] for k, v in hparams.trial_hparams(config, lines(parsed)).items()}
    for o in parsed:
        if o.is_sweep_override() and not o.is_interval_sweep():
            domains[o.key_or_group] = list(o.sweep_iterator())
    return domains
