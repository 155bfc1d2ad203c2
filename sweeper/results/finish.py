"""What every sweep does around its trials, whichever sweeper and launcher ran it: the HParams
experiment before, the leaderboard, plots and promotion after (a Hydra callback, configured under
``hydra.callbacks`` in conf/config.yaml).

How the sweep ended is written to ``<sweep>/sweep.json``: what it lacks (its end-of-sweep work
failed, its search stopped early) is listed there, and the command reads it to exit with a status
that tells the truth (Hydra's callbacks cannot raise through Hydra).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sweeper import hparams
from sweeper.atomic import write_json
from sweeper.errors import NoResults, SweepIncomplete
from sweeper.record import Mode, now_iso

if TYPE_CHECKING:
    from sweeper.launch.pool import Pool

log = logging.getLogger(__name__)

OUTCOME = "sweep.json"  # how the sweep ended: what it lacks, its trials, its best one


class SweepCallback(Callback):
    """Before a sweep: its HParams experiment config. After it: the leaderboard, plots, and the
    best trial promoted to ``best/``."""

    def __init__(self) -> None:
        self.started: list[str] = []  # what the start of the sweep could not do
        self.pool: Pool | None = None  # the pool launcher's, handed over: warm after its last batch

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from sweeper.search.domains import sweep_domains

        sweep_dir = Path(str(config.hydra.sweep.dir))
        (sweep_dir / OUTCOME).unlink(missing_ok=True)
        logdir = Path(config.paths.logs) / config.sweep.name
        self.started = []
        hparams.write_experiment(logdir, sweep_dir, sweep_domains(config, self.started),
                                 [str(m) for m in config.train.metrics], measured(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        problems = self.started + finish_sweep(
            sweep_dir, Path(config.paths.logs) / config.sweep.name,
            allow_failures=bool(config.sweep.allow_failures), pool=self.pool)
        try:
            write_json(sweep_dir / OUTCOME, {"finished_at": now_iso(), "problems": problems})
        except OSError as e:  # the command finds no outcome and says so
            log.error("%s not written: %s", sweep_dir / OUTCOME, e)


def measured(config: DictConfig) -> list[str]:
    """The costs the sweep's trials measure (the TensorFlow Lite ones when asked or needed; the
    GPU's peak memory on a GPU)."""
    from sweeper.config.checks import metric_names
    from sweeper.config.objectives import COSTS, TFLITE, goals
    from sweeper.launch.devices import discover_gpus

    tflite = goals(config.sweep, metric_names(config.train)).tflite
    gpu = str(config.hydra.launcher.get("devices", "auto")) != "cpu" and bool(discover_gpus())
    return [name for name, (_, _, when) in COSTS.items()
            if (when != TFLITE or tflite) and (name != "gpu_peak_mb" or gpu)]


def check_outcome(sweep_dir: Path, since: float) -> None:
    """Raise :class:`SweepIncomplete` unless the sweep in ``sweep_dir``, run since ``since``
    (epoch seconds), ended with everything a sweep leaves behind."""
    path = sweep_dir / OUTCOME
    try:
        if path.stat().st_mtime < since - 1:
            raise FileNotFoundError(path)
        problems = json.loads(path.read_text())["problems"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SweepIncomplete(f"the end of the sweep did not complete: {path} was not written "
                              "(the log above says why)") from e
    if problems:
        raise SweepIncomplete("; ".join(problems))


def finish_sweep(sweep_dir: Path, logdir: Path | None = None, top: int = 10,
                 allow_failures: bool = False, pool: Pool | None = None) -> list[str]:
    """Leaderboard and plots of ``sweep_dir``, the search's progress into its TensorBoard
    ``logdir``, its top trials printed, its best one promoted; returns what a complete sweep
    would have and this one lacks (one line each): failed trials too, unless
    ``allow_failures``. An idle worker of the sweep's ``pool`` promotes, if it has one."""
    from sweeper.results import leaderboard, plots, table
    from sweeper.results.configurations import by_configuration

    problems = _search_stopped(sweep_dir)
    # A warm worker promotes while this process writes the leaderboard and the plots.
    promoting = _start_promotion(pool, sweep_dir)
    try:
        ranked, skipped = leaderboard.leaderboard(sweep_dir)
    except (NoResults, OSError) as e:
        log.error("leaderboard not written: %s", e)
        if promoting is not None:
            _promotion(promoting, sweep_dir)  # let it end; the problem is said above
        return [*problems, f"no leaderboard ({e})"]
    for line in skipped:
        log.warning("%s", line)
    broken = leaderboard.unreadable(skipped)
    if broken:
        problems.append(f"{len(broken)} trial record(s) could not be read")
    failed = int((ranked["status"] == "failed").sum())
    if failed and not allow_failures:
        problems.append(f"{failed} trial{'s' if failed > 1 else ''} failed (the leaderboard "
                        "says why; sweep.allow_failures=true lets the sweep exit 0)")
    try:
        plots.plots(sweep_dir, ranked)
        if logdir is not None:
            _write_progress(logdir, ranked)
    except Exception as e:  # a picture is not worth the promotion that follows: go on, then say
        log.error("plots not written: %s: %s", type(e).__name__, e)
        problems.append(f"plots not written ({type(e).__name__}: {e})")
    if "config_id" in ranked:  # sweep.repeats: configurations, each with its interval
        configs, columns = table.for_configurations(
            by_configuration(ranked, leaderboard.objective(ranked)[1]))
        shown = f"top {top} of {len(configs)}" if top < len(configs) else f"{len(configs)}"
        table.print_table(configs, top, title=f"sweep {sweep_dir.name}: {shown} configurations "
                          f"x {int(ranked['repeat'].max()) + 1} seeds", columns=columns)
    else:
        shown = f"top {top} of {len(ranked)} trials" if top < len(ranked) else \
            f"{len(ranked)} trials"
        table.print_table(ranked, top, title=f"sweep {sweep_dir.name}: {shown}")
    log.info("leaderboard: %s", sweep_dir / leaderboard.LEADERBOARD_CSV)
    if ranked["rank"].isna().all():
        if promoting is not None:
            _promotion(promoting, sweep_dir)  # it finds nothing either: let it end
        log.error("no completed trial: nothing promoted")
        return [*problems, "no completed trial: nothing promoted"]
    result = _promotion(promoting, sweep_dir)
    if "error" in result:
        error = str(result["error"])
        log.error("%s", error)
        return [*problems, error if error.startswith("not promoted") else f"not promoted: {error}"]
    for line in result.get("skipped", []):
        log.warning("%s", line)
    log.info("%s", describe_promotion(result, sweep_dir))
    return problems


def _write_progress(logdir: Path, ranked: Any) -> None:
    """The best objective after each finished trial, in the order they finished."""
    from sweeper.results.leaderboard import objective

    name, mode = objective(ranked)
    done = ranked[ranked["rank"].notna()].sort_values("finished_at", kind="stable")
    values = done["objective"].astype(float).tolist()
    best = itertools.accumulate(values, lambda a, b: Mode(mode).best((a, b)))
    hparams.write_sweep_progress(logdir, name, list(best))


def _search_stopped(sweep_dir: Path) -> list[str]:
    """Why the tuner's search stopped before its end, if it did (its own record says so)."""
    from sweeper.search.loop import stopped_early

    reason = stopped_early(sweep_dir)
    return [f"the search stopped early: {reason}"] if reason else []


def _start_promotion(warm: Pool | None, sweep_dir: Path) -> Any:
    """Promotion started in one of the sweep's own workers, whose TensorFlow is imported already
    (None: the sweep has no idle warm worker)."""
    from sweeper.launch import pool

    if warm is None:
        return None
    try:
        return warm, warm.call("sweeper.results.promotion.answer", str(sweep_dir))
    except pool.WorkerDied:
        return None


def _promotion(promoting: Any, sweep_dir: Path) -> dict[str, Any]:
    """What promotion did: the warm worker's answer, else a new process's."""
    from sweeper.launch import pool

    if promoting is not None:
        warm, worker = promoting
        try:
            said: dict[str, Any] = warm.answer(worker)
            return said
        except pool.WorkerDied as e:
            log.warning("promotion in a warm worker failed (%s); promoting in a new process", e)
    return promote_in_child(sweep_dir)


def promote_in_child(sweep_dir: Path) -> dict[str, Any]:
    """Promote in a child process (the SavedModel export needs TensorFlow, which the sweep
    process must not import), on the CPU; its answer is JSON: the promotion, or its error."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-m", "sweeper.promote", str(sweep_dir), "--json"],
                          env=env, capture_output=True, text=True)
    try:
        answer: dict[str, Any] = json.loads(done.stdout)
    except ValueError:  # a crash, not one of promote's own errors: its last words are the clue
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return {"error": f"promotion failed (exit {done.returncode}): {tail}"}
    return answer


def describe_promotion(result: dict[str, Any], sweep_dir: Path) -> str:
    """One line on what promotion did: promoted, or kept what was there."""
    info = result["best"]
    objective = info["objective"]
    verb = "promoted" if result["changed"] else "kept (no better trial)"
    chosen = info.get("configuration")
    if chosen:  # sweep.repeats: the configuration, what to expect of it, and why this one
        return (f"{verb} configuration {chosen['config_id']} ({objective['name']} "
                f"{chosen['shown']}; {chosen['why']}): its repeat {info['trial_id']} in "
                f"{sweep_dir / 'best'}, saved_model version {info['version']}")
    front = f"; {info['front']['why']}" if info.get("front") else ""
    return (f"{verb} trial {info['trial_id']} ({objective['name']}={objective['value']:.4f}"
            f"{front}) in {sweep_dir / 'best'}, saved_model version {info['version']}")
