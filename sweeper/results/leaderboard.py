"""The aggregator: every trial record of a sweep in one pandas DataFrame, ranked; leaderboards.

A trial's folder is the single source of truth: nothing here needs anything but the
``trials/*/trial.json`` records. No TensorFlow import.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from sweeper.atomic import write_atomic
from sweeper.config.keys import identity, key_of, label
from sweeper.errors import NoResults
from sweeper.record import RECORD, RecordError, Status, TrialRecord
from sweeper.results import pareto
from sweeper.results.configurations import ALPHA, by_configuration, paired_p
from sweeper.results.configurations import shown as shown_configuration

LEADERBOARD_CSV = "leaderboard.csv"
LEADERBOARD_MD = "leaderboard.md"
LEADERBOARD_TRIALS_CSV = "leaderboard_trials.csv"  # every repeat's row, with sweep.repeats
REPEAT = "sweep.repeat"
FIRST = ["rank", "trial_id", "label", "status", "objective"]
LAST = ["best_epoch", "epochs", "continues", "continued_in", "duration_s", "finished_at",
        "device", "gpu_model", "gpu_util", "gpu_mem_mib", "node", "pruned", "infeasible", "error"]
UNREADABLE = "unreadable"  # the status of a trial whose record cannot be read
UNREADABLE_PROBLEM = "unreadable record"
# Trials that rank: trained and scored on the test split, to the end or until the pruner stopped
# them (a pruned trial ranks on the best it reached, like any other).
RANKED = [s.value for s in Status if s.scored]
# Ties on the ranking metric go to the lower validation loss, then the shorter trial.
TIE_BREAKERS = ("val_loss", "duration_s")


def load(sweep_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """One row per trial folder with a record, and one line (file: why) per record that could
    not be read. Such a trial keeps its row, unranked, with the status ``unreadable``: the
    leaderboard never loses a trial that best.json or a reader may name."""
    if not sweep_dir.is_dir():
        raise NoResults(f"{sweep_dir}: no such sweep folder")
    rows, problems, overrides, broken = [], [], [], []
    for folder in sorted(p for p in (sweep_dir / "trials").glob("*") if p.is_dir()):
        path = folder / RECORD
        try:
            record = TrialRecord.load(folder)
            rows.append(_row(record, folder.name))
            overrides.append([o for o in identity(record.overrides) if key_of(o) != REPEAT])
            continue
        except FileNotFoundError:
            problems.append(f"{path}: skipped, no record (the trial has not started)")
            continue
        except RecordError as e:
            why = str(e)
        except (OSError, ValueError) as e:
            why = f"{type(e).__name__}: {e}"
        problems.append(f"{path}: {UNREADABLE_PROBLEM} ({why})")
        broken.append({"trial_id": folder.name, "label": folder.name, "status": UNREADABLE,
                       "error": f"unreadable record ({why})"})
    if not rows:
        skipped = f" ({len(problems)} skipped)" if problems else ""
        raise NoResults(f"{sweep_dir}: no readable trial records under trials/{skipped}")
    # A trial as a person names it: what sets it apart from the sweep's other trials (its id
    # where that is nothing, or not enough to tell it from another).
    common = set.intersection(*map(set, overrides)) if len(overrides) > 1 else set()
    labels = [label(lines, common) for lines in overrides]
    # The repeats of a configuration (sweep.repeats) share its label and its id: the id of its
    # first repeat, which is the trial a sweep without repeats runs.
    keys = [",".join(sorted(lines)) for lines in overrides]
    members: dict[str, list[dict[str, Any]]] = {}
    for row, key in zip(rows, keys, strict=True):
        members.setdefault(key, []).append(row)
    names = {key: name for key, name in zip(keys, labels, strict=True)}
    repeated = any(r.get("repeat") for r in rows)
    firsts = {key: min(group, key=lambda r: (r["repeat"], r["trial_id"]))["trial_id"]
              for key, group in members.items()}
    for row, key in zip(rows, keys, strict=True):
        repeat, seed = row.pop("repeat"), row.pop("seed")
        if not repeated:
            name = names[key]
            row["label"] = name if labels.count(name) == 1 and name != label([]) else \
                row["trial_id"]
            continue
        first, name = firsts[key], names[key]
        name = name if list(names.values()).count(name) == 1 and name != label([]) else first
        row.update(label=f"{name} seed={seed}", config_id=first, config_label=name,
                   repeat=repeat, seed=seed)
    rows += broken
    # pd.array infers each column from its values: ints stay Int64 even beside a missing value,
    # and 0.0/1.0 stay Float64 (DataFrame.convert_dtypes would turn those into integers).
    columns = list(dict.fromkeys(c for row in rows for c in row))
    df = pd.DataFrame({c: pd.array([row.get(c) for row in rows]) for c in columns})
    # The objective and metrics are numbers even where no trial has one yet (a sweep of failed
    # trials), so they sort as numbers.
    numbers = [c for c in columns if c not in _NOT_FLOAT and not c.startswith("hp.")]
    df[numbers] = df[numbers].astype("Float64")
    counts = [c for c in _COUNTS if c in df]
    df[counts] = df[counts].astype("Int64")
    objectives = df.value_counts(["objective_name", "objective_mode"])
    if len(objectives) > 1:  # a re-run with another sweep.metric leaves records of both
        (name, mode), count = objectives.index[0], int(objectives.iloc[0])
        problems.append(f"{sweep_dir}: records disagree on the objective "
                        f"({', '.join(f'{n} {m}' for n, m in objectives.index)}); ranked by "
                        f"{name} ({mode}), the objective of {count} of {len(df)}")
    return pareto.feasibility(df, pareto.goals_of(sweep_dir)), problems


def unreadable(problems: list[str]) -> list[str]:
    """The problems that are trial records that could not be read."""
    return [p for p in problems if f": {UNREADABLE_PROBLEM} (" in p]


def _row(record: TrialRecord, folder: str) -> dict[str, Any]:
    """The leaderboard row of one record; raises on anything a trial would not have written."""
    if record.trial_id != folder:
        raise ValueError(f"trial_id {record.trial_id!r} does not match its folder")
    objective = record.objective
    row: dict[str, Any] = {
        "trial_id": folder, "status": record.status.value,
        "objective": _number(objective.value), "objective_name": str(objective.name),
        "objective_mode": objective.mode, "repeat": record.repeat,
        "seed": record.seed,
    }
    row.update({f"hp.{k}": v for k, v in record.hparams.items()})
    row.update({k: _number(v) for k, v in record.metrics.items()})
    row.update({k: _number(v, int if k in _COUNTS else float) for k, v in record.cost.items()})
    row.update(best_epoch=_number(record.best_epoch, int),
               epochs=_number(record.epochs_completed, int),
               duration_s=_number(record.duration_s), finished_at=record.finished_at,
               device=record.device,
               node=record.node or record.host, error=record.error or _not_finite(record))
    if record.gpus:  # GPU columns only where trials ran on one
        row["gpu_model"] = ", ".join(str(g.get("name") or "?") for g in record.gpus)
    if record.gpu_usage:
        row.update(gpu_util=_number(record.gpu_usage.get("utilisation_mean")),
                   gpu_mem_mib=_number(record.gpu_usage.get("memory_peak_mib")))
    warm_start = record.warm_start or {}
    if warm_start.get("trial"):  # a Hyperband survivor: it continues that trial's training
        row["continues"] = str(warm_start["trial"])
    if record.pruned is not None:  # why the pruner stopped it
        row["pruned"] = record.pruned.reason
    if record.infeasible:  # the constraint it breaks
        row["infeasible"] = record.infeasible
    return row


def _not_finite(record: TrialRecord) -> str | None:
    """Why a trial's scores are blank where it recorded a value that is not a number."""
    odd = [f"{k}={v}" for k, v in record.metrics.items()
           if isinstance(v, float) and not math.isfinite(v)]
    if not odd:
        return None
    return f"{', '.join(odd)}: the model's outputs are not finite numbers (it diverged)"


_COUNTS = ("best_epoch", "epochs", "repeat", "seed", "params", "trainable_params", "flops")
_NOT_FLOAT = ("trial_id", "label", "config_id", "config_label", "status", "finished_at",
              "objective_name", "objective_mode",
              "device", "gpu_model", "node", "error", "continues", "pruned", "infeasible",
              *_COUNTS)


def _number(value: Any, kind: type = float) -> Any:
    """``value`` as a float (or int), None for missing and non-finite ones; raises otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            (kind is int and not float(value).is_integer()):
        raise ValueError(f"{value!r} where {'a whole' if kind is int else 'a'} number belongs")
    return kind(value) if math.isfinite(value) else None


def objective(df: pd.DataFrame) -> tuple[str, str]:
    """The sweep's objective name and mode: those most of its records give."""
    name, mode = df.value_counts(["objective_name", "objective_mode"]).index[0]
    return str(name), str(mode)


def rank(df: pd.DataFrame, metric: str | None = None, mode: str | None = None) -> pd.DataFrame:
    """Completed and pruned trials best first by ``metric`` (default: the sweep's objective) in
    ``mode``, ties broken by lower validation loss, then shorter duration; failed and running
    trials last, unranked (rank NA)."""
    name, objective_mode = objective(df)
    metric = metric or name
    if metric == name and name not in df.columns:  # no trial got as far as one epoch
        metric = "objective"
    if metric not in df.columns:
        have = ", ".join(c for c in df.columns if not c.startswith("hp."))
        raise NoResults(f"--metric {metric}: not in the records (have: {have})")
    if not pd.api.types.is_numeric_dtype(df[metric]):
        raise NoResults(f"--metric {metric}: not a number")
    if mode is None:  # another metric than the objective: losses go down, the rest go up
        mode = objective_mode if metric in (name, "objective") else \
            "min" if "loss" in metric else "max"
    if mode not in ("max", "min"):
        raise NoResults(f"--mode {mode}: max or min")
    # A trial continued by a completed survivor is counted once, as the survivor, whose record
    # carries the epochs (and best checkpoint) of the trial it continues.
    continued = _continued(df)
    df = df.assign(continued_in=df["trial_id"].map(continued)) if continued else df
    done = df[df["status"].isin(RANKED) & df[metric].notna()
              & ~df["trial_id"].isin(list(continued))]
    if "infeasible" in done:  # it breaks a constraint: listed, never ranked or promoted
        done = done[done["infeasible"].isna()]
    keys = [metric, *(c for c in TIE_BREAKERS if c in df.columns and c != metric), "trial_id"]
    done = done.sort_values(keys, ascending=[mode == "min"] + [True] * (len(keys) - 1),
                            kind="stable", na_position="last")
    rest = df.drop(done.index).sort_values(["status", "trial_id"], kind="stable")
    ranked = pd.concat([done.assign(rank=range(1, len(done) + 1)), rest.assign(rank=None)])
    ranked["rank"] = ranked["rank"].astype("Int64")
    hps = sorted(c for c in ranked if c.startswith("hp."))
    middle = [c for c in ranked if c not in FIRST and c not in LAST and c not in hps]
    ordered = [c for c in FIRST if c in ranked] + hps + middle + [c for c in LAST if c in ranked]
    return ranked[ordered].reset_index(drop=True)


def _continued(df: pd.DataFrame) -> dict[str, str]:
    """Trial id -> the ranked trial that continues it (Hyperband's next round)."""
    if "continues" not in df:
        return {}
    survivors = df[df["status"].isin(RANKED) & df["continues"].notna()]
    return dict(zip(survivors["continues"], survivors["trial_id"], strict=True))


def leaderboard(sweep_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """Rank the sweep by its objective; write ``leaderboard.csv`` and ``leaderboard.md`` (by
    configuration, with ``leaderboard_trials.csv`` beside them, when configurations were
    repeated); returns the trials ranked."""
    df, problems = load(sweep_dir)
    ranked = rank(df)
    table = by_configuration(ranked, objective(df)[1]) if "config_id" in ranked else ranked
    table = pareto.annotate(table, pareto.goals_of(sweep_dir))  # sweep.objectives: the front
    ranked = table if "config_id" not in ranked else ranked
    if "config_id" in ranked:  # sweep.repeats: configurations here, every repeat beside them
        write_atomic(sweep_dir / LEADERBOARD_TRIALS_CSV, ranked.to_csv(index=False))
    write_atomic(sweep_dir / LEADERBOARD_CSV, table.to_csv(index=False))
    write_atomic(sweep_dir / LEADERBOARD_MD, markdown(table) + "\n")
    return ranked, problems


def markdown(table: pd.DataFrame) -> str:
    """The table as Markdown, blanks for missing values; unranked (failed, running) rows bold."""
    shown = table.astype(object).where(table.notna(), None)
    if "status" in shown:
        shown["status"] = [s if s in RANKED else f"**{s}**" for s in shown["status"]]
    # 4 significant digits: a learning rate of 1e-05 must not print as 0.0000.
    return str(shown.to_markdown(index=False, floatfmt=".4g", missingval=""))


def compare(sweep_dirs: list[Path], metric: str | None, mode: str | None) -> pd.DataFrame:
    """The best ranked trial of each sweep, one sweep a row. Sweeps that repeated their
    configurations are compared by their best configurations: its mean ± interval, and a
    paired test over the seeds they share against the best sweep's (``tied``, ``p_value``)."""
    rows: list[dict[str, Any]] = []
    seeds: dict[int, dict[int, float]] = {}  # row -> its best configuration's value by seed
    mode = "max"
    for sweep_dir in sweep_dirs:
        df, _ = load(sweep_dir)
        ranked = rank(df, metric, mode)
        counts = ranked["status"].value_counts()
        row = {"sweep": str(sweep_dir), "trials": len(ranked),
               **{status.value: int(counts.get(status.value, 0)) for status in Status}}
        best = ranked[ranked["rank"] == 1]
        if "config_id" in ranked and metric in (None, "objective"):  # sweep.repeats
            mode = objective(ranked)[1]
            configs = by_configuration(ranked, mode)
            top = configs.iloc[0]
            done = ranked[(ranked["config_id"] == top["config_id"]) & ranked["rank"].notna()]
            seeds[len(rows)] = {int(k): float(v) for k, v in zip(done["seed"], done["objective"],
                                                                 strict=True)}
            row.update(best.iloc[0].drop(labels=["rank", "status"]).to_dict())
            row.update(configuration=top["config_id"], objective=top["objective"],
                       objective_ci=top["objective_ci"], n=top["n"], label=top["label"])
        elif not best.empty:
            row.update(best.iloc[0].drop(labels=["rank", "status"]).to_dict())
        rows.append(row)
    if len(seeds) > 1:  # the best sweep, and whether the data can tell the others from it
        best = (max if mode == "max" else min)(seeds, key=lambda i: float(rows[i]["objective"]))
        for i in seeds:
            p = None if i == best else paired_p(seeds[best], seeds[i])
            rows[i].update(shown=shown_configuration(rows[i]), p_value=p,
                           tied=p is not None and p >= ALPHA, best_sweep=i == best)
    return pd.DataFrame(rows)
