"""Progress of a sweep: a live table of trials in a terminal, plain log lines elsewhere.

Running trials are read from their own ``trial.json`` (which the trial rewrites after every
epoch), so the table shows the same epoch and metric the record holds. On GPUs the launcher adds
each running trial's GPU utilisation and memory as it samples them; a finished trial's come from
its record.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sweeper.config.keys import key_of, label
from sweeper.launch.jobs import Outcome
from sweeper.launch.usage import usage_text
from sweeper.record import TrialRecord

log = logging.getLogger(__name__)

TABLE_ROWS = 40  # a larger batch shows a window of its trials
WINDOW = 8  # the last finished and the next waiting trials in that window
PLAN_LINES = 50  # trials listed one by one when a batch starts
STYLE = {"pending": "dim", "running": "cyan", "retrying": "yellow", "completed": "green",
         "pruned": "magenta", "infeasible": "dim magenta", "failed": "red"}
DONE = ("completed", "pruned", "infeasible", "failed")


@dataclass
class Row:
    idx: int
    label: str
    status: str = "pending"
    device: str = ""
    attempt: int = 0
    started: float = 0.0
    finished: float = 0.0
    output_dir: str | None = None
    epoch: str = ""
    metric: str = ""
    note: str = ""
    gpu_use: str = ""
    config: str = ""  # the configuration a repeat (sweep.repeat) belongs to


class Board:
    """What every trial of a batch is doing; a context manager around the batch."""

    def __init__(self, jobs: list[tuple[int, list[str]]], slots: int,
                 live: bool | None = None, growing: bool = False) -> None:
        # What every trial of the batch shares is said once, not on every line (of a batch that
        # grows, the trials to come may differ in it: each says it all).
        self.common = set.intersection(*(set(o) for _, o in jobs)) \
            if len(jobs) > 1 and not growing else set()
        self.rows: dict[int, Row] = {}
        self.seeds: dict[str, int] = {}  # sweep.repeats: each configuration's repeats
        self.slots = max(1, slots)
        self.t0 = time.time()
        self.live_mode = sys.stdout.isatty() if live is None else live
        self._live: Live | None = None
        self._last = 0.0
        self.add(jobs, said=False)  # log_plan says them

    def add(self, jobs: list[tuple[int, list[str]]], said: bool = True) -> None:
        """Trials of the batch, and those added to a running stream (an asynchronous search's
        next ones, ``said`` in the log)."""
        rows = [_row(idx, overrides, self.common) for idx, overrides in jobs]
        for row in rows:
            self.rows[row.idx] = row
            if row.config:
                self.seeds[row.config] = self.seeds.get(row.config, 0) + 1
        for row in rows:
            row.label += f"/{self.seeds[row.config]}" if row.config else ""
            if said and not self.live_mode:
                log.info("\t#%d : %s", row.idx, row.label)

    def log_plan(self) -> None:
        """The batch's trials, one line each, and what they all share."""
        if self.common and (shared := label(sorted(self.common))) != label([]):
            log.info("every trial: %s", shared)  # not bookkeeping alone: "(defaults)" says nothing
        rows = list(self.rows.values())
        for row in rows[:PLAN_LINES]:
            log.info("\t#%d : %s", row.idx, row.label)
        if len(rows) > PLAN_LINES:
            log.info("\t... and %d more trials", len(rows) - PLAN_LINES)

    def __enter__(self) -> Board:
        if self.live_mode:
            self._live = Live(self._render(), console=Console(), refresh_per_second=4,
                              transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._read_records()
            self._live.update(self._render())
            self._live.__exit__(*exc)
            self._live = None
        else:
            log.info(self.summary())

    # -- events from the launcher -------------------------------------------------------------

    def started(self, idx: int, device: str, attempt: int = 1) -> None:
        row = self.rows[idx]
        row.status, row.device, row.attempt, row.started = "running", device, attempt, time.time()
        if not self.live_mode:
            log.info("trial #%d started on %s: %s", idx, device, row.label)

    def output_dir(self, idx: int, path: str) -> None:
        self.rows[idx].output_dir = path

    def usage(self, idx: int, figures: dict[str, Any] | None) -> None:
        """A running trial's GPU utilisation and memory so far."""
        if figures:
            self.rows[idx].gpu_use = usage_text(figures)

    def retrying(self, idx: int, cause: str) -> None:
        row = self.rows[idx]
        row.status, row.note = "retrying", cause
        if not self.live_mode:
            log.info("trial #%d %s; retrying", idx, cause)

    def finished(self, idx: int, outcome: Outcome) -> None:
        row = self.rows[idx]
        row.status, row.finished = outcome.status, time.time()
        self._read_record(row)
        if outcome.error:
            row.note = outcome.error
        if not self.live_mode:
            result = " ".join(t for t in (row.metric or row.note, row.gpu_use and
                                          f"(GPU {row.gpu_use})") if t)
            if outcome.note:  # why the pruner stopped it
                result += f" ({outcome.note})"
            log.info("trial #%d %s on %s in %.1fs %s [%s]", idx, row.status, row.device,
                     row.finished - row.started, result, self.summary())

    def refresh(self) -> None:
        """Re-read running trials' records and redraw (at most twice a second)."""
        if self._live is None or time.time() - self._last < 0.5:
            return
        self._last = time.time()
        self._read_records()
        self._live.update(self._render())

    # -- rendering ----------------------------------------------------------------------------

    def _read_records(self) -> None:
        for row in self.rows.values():
            if row.status == "running":
                self._read_record(row)

    @staticmethod
    def _read_record(row: Row) -> None:
        record = TrialRecord.read(Path(row.output_dir)) if row.output_dir else None
        if record is None:
            return
        row.epoch = f"{record.epochs_completed}/{record.hparams.get('train.epochs', '?')}"
        name = record.objective.name
        value = record.objective.value
        if value is None:
            value = record.metrics.get(name)
        if value is not None:
            row.metric = f"{name} {value:.4f}"
        if record.mismatch is not None and record.mismatch.active(record.epochs_completed):
            row.metric += f" ! train {record.mismatch.accuracy:.2f}, validation at chance: " \
                          "train/inference mismatch"
        if record.error:
            row.note = record.error
        if record.gpu_usage:
            row.gpu_use = usage_text(record.gpu_usage)

    def summary(self) -> str:
        """Counts by status, elapsed time and an estimate of the time left."""
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row.status] = counts.get(row.status, 0) + 1
        done = [r for r in self.rows.values() if r.status in DONE]
        parts = [f"{counts.get(s, 0)} {s}" for s in (*DONE, "running", "pending")
                 if counts.get(s)]
        elapsed = time.time() - self.t0
        text = f"{len(done)}/{len(self.rows)} done: {', '.join(parts)}"
        if self.seeds:  # sweep.repeats: configurations whose every seed has finished
            full = sum(sum(r.config == c and r.status in DONE for r in self.rows.values()) == n
                       for c, n in self.seeds.items())
            n = max(self.seeds.values())
            text += f" · {full}/{len(self.seeds)} configurations with {n}/{n} seeds"
        text += f" · elapsed {_clock(elapsed)}"
        left = len(self.rows) - len(done)
        if done and left:
            mean = sum(r.finished - r.started for r in done) / len(done)
            text += f" · ETA {_clock(mean * math.ceil(left / self.slots))}"
        return text

    def _render(self) -> Group:
        table = Table(expand=False, header_style="bold")
        gpu_use = any(row.gpu_use for row in self.rows.values())  # no column on CPU
        for column in ("#", "trial", "status", "device", "epoch", "metric", "elapsed",
                       *(["GPU use"] if gpu_use else [])):
            table.add_column(column, no_wrap=column != "trial")
        now = time.time()
        shown, hidden = self._window()
        for row in shown:
            elapsed = (row.finished or now) - row.started if row.started else 0.0
            status = row.status + (f" (try {row.attempt})" if row.attempt > 1 else "")
            table.add_row(str(row.idx), row.label, Text(status, style=STYLE.get(row.status, "")),
                          row.device, row.epoch, row.metric or row.note,
                          _clock(elapsed) if row.started else "",
                          *([row.gpu_use] if gpu_use else []))
        more = [Text(f"... {hidden} more trials (the leaderboard lists them all)", style="dim")]
        return Group(table, *(more if hidden else []), Text(self.summary()))

    def _window(self) -> tuple[list[Row], int]:
        """The rows worth a terminal: all of a small batch; of a large one, the trials running,
        the last ones finished and the next ones waiting."""
        rows = list(self.rows.values())
        if len(rows) <= TABLE_ROWS:
            return rows, 0
        active = [r for r in rows if r.status in ("running", "retrying")]
        finished = sorted((r for r in rows if r.finished), key=lambda r: r.finished)
        pending = [r for r in rows if r.status == "pending"]
        shown = {r.idx for r in [*active, *finished[-WINDOW:], *pending[:WINDOW]]}
        return [r for r in rows if r.idx in shown], len(rows) - len(shown)


def _row(idx: int, overrides: list[str], common: set[str]) -> Row:
    """A trial's row; a repeat (``sweep.repeat=k``) is named by its configuration and its seed
    (``seed 2/3``), the count filled in once the batch's rows are known."""
    repeat = [o for o in overrides if key_of(o) == "sweep.repeat"]
    if not repeat:
        return Row(idx, label(overrides, common))
    rest = [o for o in overrides if o not in repeat]
    config = label(rest, common)
    return Row(idx, f"{config} · seed {int(repeat[0].split('=', 1)[1]) + 1}", config=config)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
