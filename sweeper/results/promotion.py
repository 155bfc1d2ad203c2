"""Promotion of a sweep's best completed trial to ``best/`` (``python -m sweeper.promote``).

``best/`` holds ``model.keras`` (the trial's checkpoint), ``saved_model/<version>/`` (a
SavedModel with a ``serving_default`` signature, in the versioned layout TF Serving loads) and
``best.json``. It is built beside the sweep and renamed into place, and replaced only by a
strictly better trial. Each replacement bumps the version (1, 2, ...), so a TF Serving instance
whose model base path is ``best/saved_model`` moves to the new model; ``best/`` keeps only the
current version, and ``best.json`` lists the earlier promotions. TensorFlow runs here, so the
sweep's parent promotes through a child process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sweeper.atomic import file_digest, write_json
from sweeper.errors import ExportError, NoResults, SweeperError
from sweeper.record import Mode, TrialRecord, now_iso
from sweeper.results import configurations, formats, leaderboard, pareto

BEST = "best"
OLD = f".{BEST}.old"  # the replaced best/ during a swap; restored if the swap was cut short
STAGING = f".{BEST}.partial-"
LOCK = ".promote.lock"


def current(sweep_dir: Path) -> dict[str, Any] | None:
    """The promoted model's best.json (None: nothing promoted), restoring ``best/`` if a swap
    was cut short."""
    best, old = sweep_dir / BEST, sweep_dir / OLD
    if not best.exists() and old.exists():
        os.replace(old, best)
    try:
        data = json.loads((best / "best.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "version" in data else None


@contextlib.contextmanager
def _locked(sweep_dir: Path) -> Iterator[None]:
    """One promotion of a sweep at a time (the sweep's end and a hand-run one may meet)."""
    with open(sweep_dir / LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


@dataclass
class Promotion:
    """What a promotion did: ``best`` is best.json as it now stands, ``changed`` whether
    ``best/`` was replaced, ``skipped`` why better-ranked trials were passed over."""

    best: dict[str, Any]
    changed: bool
    skipped: list[str] = field(default_factory=list)


def promote(sweep_dir: Path) -> Promotion:
    """Promote the leaderboard's best-ranked trial (completed, or pruned: it ranks on
    what it reached) whose checkpoint can be served.

    ``best/`` is checked first: a promoted model that no longer matches its best.json (a
    truncated or replaced file) is promoted anew. A better trial whose checkpoint is missing or
    cannot be loaded is passed over, and said so. Raises :class:`NoResults` when no trial can be
    promoted, :class:`~sweeper.errors.ExportError` when the trials that beat an intact ``best/``
    cannot be exported (``best/`` is then left as it was)."""
    df, _ = leaderboard.load(sweep_dir)
    ranked = leaderboard.rank(df)
    if ranked["rank"].isna().all():  # before the lock: bad input writes nothing
        raise NoResults(f"{sweep_dir}: no completed trial to promote")
    ranked, chosen = _configuration(sweep_dir, ranked, leaderboard.objective(df)[1])
    ranked, rule = _front(sweep_dir, ranked, chosen)
    with _locked(sweep_dir):
        for stale in sweep_dir.glob(f"{STAGING}*"):  # left by a killed promotion
            shutil.rmtree(stale, ignore_errors=True)
        before = current(sweep_dir)
        skipped: list[str] = []
        damage = _damage(sweep_dir, before)
        if damage:
            skipped.append(f"best/ is damaged ({damage}); promoted anew")
        intact = before if not damage else None
        failure: ExportError | None = None
        for trial_dir, record in _candidates(sweep_dir, ranked, skipped):
            checkpoint = trial_dir / record.checkpoint
            digest = file_digest(checkpoint)
            if intact is not None and not _beats(record, digest, intact,
                                                 leaderboard.objective(df), chosen or rule):
                if failure is not None:  # a better trial exists, and cannot be served
                    raise failure
                if chosen is not None and intact.get("configuration") != chosen:
                    # The same checkpoint, its configuration now known from more repeats.
                    intact = {**intact, "configuration": chosen}
                    write_json(sweep_dir / BEST / "best.json", intact)
                return Promotion(intact, False, skipped)
            try:
                info = _build(sweep_dir, record, checkpoint, digest, before, chosen, rule)
            except ExportError as e:
                failure = failure or e
                skipped.append(f"trial {record.trial_id}: its checkpoint cannot be served "
                               f"({e}); not promoted")
                continue
            return Promotion(info, True, skipped)
    if failure is not None:
        raise failure
    raise NoResults(f"{sweep_dir}: no completed trial with a usable checkpoint to promote")


def _build(sweep_dir: Path, record: TrialRecord, checkpoint: Path, digest: str,
           before: dict[str, Any] | None, chosen: dict[str, Any] | None,
           rule: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build ``best/`` from ``record``'s checkpoint beside the sweep, and swap it into place."""
    version = _next_version(sweep_dir, before)
    model = formats.load(checkpoint)  # an unloadable checkpoint is named as the trial's own
    staging = sweep_dir / f"{STAGING}{os.getpid()}"
    staging.mkdir()
    try:
        shutil.copy2(checkpoint, staging / "model.keras")
        serving = formats.saved_model(model, staging / "saved_model" / str(version))
        objective = record.objective
        info = {
            "trial_id": record.trial_id, "sweep": record.sweep, "version": version,
            "saved_model": f"saved_model/{version}",
            "objective": {"name": objective.name, "mode": objective.mode,
                          "value": objective.value},
            "hparams": record.hparams, "metrics": record.metrics,
            "checkpoint": str(checkpoint.relative_to(sweep_dir)),
            "checkpoint_sha256": digest, "serving": serving,
            "versions": record.versions, "promoted_at": now_iso(),
            "history": _history(before),
        }
        if chosen is not None:  # sweep.repeats: what to expect of the configuration
            info["configuration"] = chosen
        if rule is not None:  # sweep.objectives: which member of the front, and its costs
            info.update(front=rule, cost=record.cost)
        # A plain write: the whole of best/ is renamed into place below.
        (staging / "best.json").write_text(json.dumps(info, indent=2) + "\n")
        _swap(sweep_dir, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


def _damage(sweep_dir: Path, before: dict[str, Any] | None) -> str | None:
    """What is wrong with the promoted model, if anything: it must be the checkpoint best.json
    names (its sha256), with its SavedModel."""
    if before is None:
        return None
    best = sweep_dir / BEST
    model = best / "model.keras"
    if not model.is_file():
        return "no model.keras"
    if file_digest(model) != before.get("checkpoint_sha256"):
        return "model.keras does not match best.json's checkpoint_sha256"
    if not (best / str(before.get("saved_model")) / "saved_model.pb").is_file():
        return f"no {before.get('saved_model')}/saved_model.pb"
    source = sweep_dir / str(before.get("checkpoint"))
    if not source.is_file() or file_digest(source) != before.get("checkpoint_sha256"):
        return (f"trial {before.get('trial_id')} was trained again since: its checkpoint is not "
                "the one promoted")
    return None


def _candidates(sweep_dir: Path, ranked: Any,
                skipped: list[str]) -> Iterator[tuple[Path, TrialRecord]]:
    """The ranked completed trials whose checkpoint is there, best first; the others are noted
    in ``skipped``."""
    for trial_id in ranked.loc[ranked["rank"].notna(), "trial_id"]:
        trial_dir = sweep_dir / "trials" / str(trial_id)
        record = TrialRecord.read(trial_dir)
        if record is not None and (trial_dir / record.checkpoint).is_file():
            yield trial_dir, record
        else:
            skipped.append(f"trial {trial_id}: its checkpoint is missing; not promoted")


def _beats(record: TrialRecord, digest: str, before: dict[str, Any],
           objective: tuple[str, str], chosen: dict[str, Any] | None = None) -> bool:
    """Whether ``record`` is strictly better than the promoted trial on the sweep's objective,
    as the leaderboard ranks it (a tie keeps the promoted one). With repeated configurations
    (its mean, then the tie-break) or a front's knee, the choice is made over the whole sweep:
    it replaces any other."""
    if digest == before.get("checkpoint_sha256"):
        return False
    if chosen is not None:
        return True
    name, mode = objective
    # Metrics, not the records' objectives: a sweep re-run with another objective holds both.
    new, old = record.metrics.get(name), (before.get("metrics") or {}).get(name)
    if old is None:
        return True
    return new is not None and bool(Mode(mode).better(new, old))


def _configuration(sweep_dir: Path, ranked: Any,
                   mode: str) -> tuple[Any, dict[str, Any] | None]:
    """The ranked trials in the order promotion tries them and, when the sweep repeated its
    configurations (``sweep.repeats``), the configuration chosen: the best mean, or among those
    tied with it the one ``sweep.tie_break`` prefers; its repeats come first, best first."""
    if "config_id" not in ranked:
        return ranked, None
    table = configurations.by_configuration(ranked, mode)
    rule = _tie_break_rule(sweep_dir)
    row, why = configurations.tie_break(table, rule, ranked)
    order = [row["config_id"], *(c for c in table.loc[table["rank"].notna(), "config_id"]
                                 if c != row["config_id"])]
    done = ranked[ranked["rank"].notna()]
    done = done.assign(_order=done["config_id"].map({c: i for i, c in enumerate(order)}))
    done = done.sort_values(["_order", "rank"], kind="stable").drop(columns="_order")
    repeats = done[done["config_id"] == row["config_id"]]
    tied = table[table["tied"].fillna(False).astype(bool)]["config_id"].tolist()
    return done, {
        "config_id": row["config_id"], "label": row["label"], "n": int(row["n"]),
        "mean": float(row["objective"]), "std": _float(row.get("objective_std")),
        "ci95": _float(row.get("objective_ci")), "shown": configurations.shown(row),
        "rank": int(row["rank"]), "tie_break": rule, "why": why, "tied_with_1": tied,
        "repeats": {str(t): float(v) for t, v in zip(repeats["trial_id"],
                                                     repeats["objective"], strict=True)},
    }


def _front(sweep_dir: Path, ranked: Any,
           chosen: dict[str, Any] | None) -> tuple[Any, dict[str, Any] | None]:
    """With several objectives (``sweep.objectives``): the ranked trials in the order
    ``sweep.promote`` tries them (``first``: the front's best on the first objective, which
    is the best ranked feasible trial; ``knee``: the front's knee first), and the rule said."""
    goals = pareto.goals_of(sweep_dir)
    if len(goals.objectives) < 2:
        return ranked, None
    name = goals.objectives[0][0]
    rule = {"promote": goals.promote, "objectives": [f"{n}:{m}" for n, m in goals.objectives],
            "constraints": [str(c) for c in goals.constraints],
            "why": f"the Pareto front's best {name} (sweep.promote=first)"}
    if goals.promote == "knee" and chosen is None:
        table = pareto.annotate(ranked, goals)
        if table["knee"].any():
            knee = table.index[table["knee"]][0]
            ranked = pd.concat([ranked.loc[[knee]], ranked.drop(index=knee)])
            rule["why"] = "the Pareto front's knee (sweep.promote=knee)"
    return ranked, rule


def _float(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _tie_break_rule(sweep_dir: Path) -> str:
    """``sweep.tie_break`` of the sweep's last run (its multirun.yaml), none if it does not say."""
    from omegaconf import OmegaConf

    try:
        return str(OmegaConf.select(OmegaConf.load(sweep_dir / "multirun.yaml"),
                                    "sweep.tie_break", default="none"))
    except OSError:
        return "none"


def _next_version(sweep_dir: Path, before: dict[str, Any] | None) -> int:
    """One past every version served so far, so TF Serving always sees the new one as newest."""
    folder = sweep_dir / BEST / "saved_model"
    seen = [int(p.name) for p in folder.glob("*") if p.name.isdigit()]
    return max([int(before["version"]) if before else 0, *seen]) + 1


def _history(before: dict[str, Any] | None) -> list[dict[str, Any]]:
    if before is None:
        return []
    keys = ("version", "trial_id", "objective", "checkpoint_sha256", "promoted_at")
    return [*before.get("history", []), {k: before.get(k) for k in keys}]


def _swap(sweep_dir: Path, staging: Path) -> None:
    """Put ``staging`` in place of ``best/``: two renames, and :func:`current` undoes a swap
    cut short between them (POSIX cannot exchange two folders in one rename)."""
    best, old = sweep_dir / BEST, sweep_dir / OLD
    shutil.rmtree(old, ignore_errors=True)
    if best.exists():
        os.replace(best, old)
    os.replace(staging, best)
    shutil.rmtree(old, ignore_errors=True)


def answer(sweep_dir: str | Path) -> dict[str, Any]:
    """Promote, and say what happened as plain data (what ``promote --json`` prints, what a
    warm worker sends back): the promotion, or ``error`` and the exit ``status`` it means."""
    try:
        return asdict(promote(Path(sweep_dir)))
    except (ExportError, OSError) as e:  # a best/ that cannot be replaced, a full disk
        return {"error": f"not promoted, best/ left as it was: {e}", "status": 1}
    except SweeperError as e:
        return {"error": str(e), "status": e.status}
