"""A search before it runs: its space checked against its settings, the trials the preflight
composes, the HParams domains, and what makes a re-run the same search."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeper.config.keys import is_bookkeeping, is_hparam, key_of
from sweeper.config.overrides import sweep_arguments
from sweeper.errors import SearchError
from sweeper.search.settings import HYPERBAND_KEYS, Settings
from sweeper.search.space import Space, format_value, parse_space

STATE_DIR = "tuner"  # keras-tuner's project folder inside the sweep folder
SPEC = "search.json"  # what the search was started with; a re-run must match it


def space_of(config: DictConfig, arguments: Sequence[str], groups: Sequence[str]) -> Space:
    """The search space of a sweep: ``hydra.sweeper.params`` and the command line, checked
    against the sweeper's settings."""
    settings = Settings.of(config.hydra.sweeper)
    space = parse_space(sweep_arguments(config.hydra.sweeper, list(arguments)), groups, config)
    if settings.algorithm == "hyperband":
        taken = [p.name for p in space.params if p.name in HYPERBAND_KEYS]
        if taken:
            raise SearchError(f"{taken[0]}: Hyperband sets it for each trial; set "
                              "hydra.sweeper.hyperband.max_epochs instead")
        pruner = str(OmegaConf.select(config, "pruner.name", default="none"))
        if pruner != "none":
            # Its survivors continue their parent's epochs: a parent stopped early has fewer.
            raise SearchError(f"pruner={pruner}: Hyperband stops trials itself (its brackets); "
                              "use pruner=none with hydra.sweeper.algorithm=hyperband")
    return space


def preflight_jobs(config: DictConfig, arguments: Sequence[str],
                   groups: Sequence[str]) -> list[list[str]]:
    """Overrides of trials that span the space (every choice, both ends of every range), for the
    preflight to compose and check before anything runs."""
    settings = Settings.of(config.hydra.sweeper)
    space = space_of(config, arguments, groups)
    check_earlier(config, settings, space)
    swept = space.swept()
    first = [f"{p.key}={format_value(p.corners()[0])}" for p in swept]
    extra = [f"train.epochs={max(settings.hyperband_epochs())}"] \
        if settings.algorithm == "hyperband" else []
    jobs = []
    for i, p in enumerate(swept):
        for value in p.corners():
            jobs.append(space.fixed + first[:i] + [f"{p.key}={format_value(value)}"] + first[i + 1:]
                        + extra)
    return jobs


def spec(config: DictConfig, settings: Settings, space: Space) -> dict[str, Any]:
    """What makes two runs the same search (checked when a sweep is re-run)."""
    s = settings
    # max_trials is left out: raising it continues a finished search
    return {"algorithm": s.algorithm, "seed": s.seed,
            "hyperband": asdict(s.hyperband) if s.algorithm == "hyperband" else None,
            "objective": [str(config.sweep.metric), str(config.sweep.mode)],
            "space": [asdict(p) for p in space.params],
            "fixed": sorted(space.fixed)}


def _same_search(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` less what does not change what a trial computes (where outputs go, how the sweep
    is named): two runs that differ only there are the same search. Applied to a saved spec too,
    so a spec written by an earlier version compares by today's key roles."""
    out = dict(spec)
    out["space"] = [p for p in spec.get("space") or [] if is_hparam(str(p.get("name")))]
    out["fixed"] = sorted(line for line in spec.get("fixed") or []
                          if not is_bookkeeping(key_of(line)))
    return out


def check_earlier(config: DictConfig, settings: Settings, space: Space) -> bool:
    """True when an earlier run of this search left its state; refuses a different search."""
    state_dir = Path(str(config.hydra.sweep.dir)) / STATE_DIR
    path = state_dir / SPEC
    if not path.is_file():
        return False
    saved = _same_search(json.loads(path.read_text()))
    mine = _same_search(json.loads(json.dumps(spec(config, settings, space))))
    for key, value in mine.items():
        if saved.get(key) != value:
            raise SearchError(f"sweep {config.sweep.name} was searched with another {key} "
                              f"({_short(saved.get(key))} -> {_short(value)}); use another "
                              f"sweep.name, or delete {state_dir}")
    return True


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def warm_trials(config: DictConfig, space: Space,
                objectives: list[tuple[str, str]]) -> list[tuple[dict[str, Any], list[float]]]:
    """The finished trials of the earlier sweep ``hydra.sweeper.warm_start`` (a folder,
    relative to the command's) that fit this search, as (values, objectives): every swept value
    within the space, every other hyperparameter as this sweep sets it, every objective
    measured."""
    import pandas as pd

    from sweeper.errors import NoResults
    from sweeper.results import leaderboard

    folder = Path(str(Settings.of(config.hydra.sweeper).warm_start))
    earlier = folder if folder.is_absolute() else Path(str(config.hydra.runtime.cwd)) / folder
    try:
        done, _ = leaderboard.load(earlier)
    except NoResults as e:
        raise SearchError(f"hydra.sweeper.warm_start={folder}: {e}") from e
    done = done[done["status"] == "completed"]
    choices = dict(config.hydra.runtime.choices)
    told = []
    for _, row in done.iterrows():
        params: dict[str, Any] = {}
        for column in (c for c in row.index if c.startswith("hp.") and not pd.isna(row[c])):
            name, value = column[3:], row[column]
            p = next((p for p in space.swept() if p.name == name), None)
            if p is None:  # not searched: it must be what this sweep sets
                now = choices.get(name, OmegaConf.select(config, name, default=None))
                if str(now) != str(value) and now != value:
                    break
            elif p.kind == "choice":
                if value not in p.values:
                    break
                params[name] = value
            elif p.low is not None and p.high is not None and p.low <= value <= p.high:
                params[name] = int(value) if p.kind == "int" else float(value)
            else:
                break
        else:
            values = [row.get(name) for name, _ in objectives]
            if len(params) == len(space.swept()) and not any(pd.isna(v) for v in values):
                told.append((params, [float(v) for v in values]))
    return told
