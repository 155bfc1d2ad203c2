"""What makes two trials the same: stable trial ids, and the configuration a trial ran with."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from sweeper.config.keys import is_bookkeeping, key_of

_TUNER_TRIAL = re.compile(r"(?:^|,)tuner\.trial=('?[0-9]+'?)(?=,|$)")
# A comma that starts the next override (not one inside a list value such as [12,12]).
_QUOTES = str.maketrans("", "", "[]'\" ")
_OVERRIDE = re.compile(r",(?=[+~]*[A-Za-z_][\w.]*=)")


def override_dirname(overrides: Sequence[str], exclude_keys: Sequence[str]) -> str:
    """Hydra's ``hydra.job.override_dirname`` of a job, from its override lines: those whose key
    is not excluded, sorted, joined with commas (as Hydra's config loader writes it, for the
    default separators), so the sweep process finds a trial's folder without composing it."""
    excluded = set(exclude_keys)
    return ",".join(sorted(line for line in overrides
                           if key_of(line).split("@", 1)[0] not in excluded))


def trial_id(override_dirname: str) -> str:
    """Stable, readable id of a trial from its sorted overrides (Hydra's ``override_dirname``).

    The same overrides give the same id in every run of a sweep, so a re-run finds earlier work.
    The hash keeps ids distinct when the readable part is shortened or loses characters.
    """
    if not override_dirname:
        return "default"
    readable = override_dirname
    lead = ""
    # A searched trial leads with the tuner's trial number, so its folders sort in search order.
    searched = _TUNER_TRIAL.search(override_dirname)
    if searched:
        readable = (override_dirname[:searched.start()] + override_dirname[searched.end():])
        lead = searched.group(1).strip("'") + "_"
    # Short keys (units=16, not model.units=16): the whole id stays readable where TensorBoard
    # and terminals have little room; the hash keeps ids distinct.
    parts = [_short(part) for part in _OVERRIDE.split(readable.strip(",")) if part]
    readable = re.sub(r"[^A-Za-z0-9.=_-]+", "_", lead + "_".join(parts).translate(_QUOTES))
    readable = re.sub(r"__+", "_", readable)[:80]
    digest = hashlib.sha1(override_dirname.encode()).hexdigest()[:8]
    return f"{readable.strip('_')}-{digest}"


def folder(trials: Path, overrides: Sequence[str], exclude_keys: Sequence[str],
           config_name: str | None) -> Path:
    """The folder in ``trials`` of the trial these task overrides give. Its id follows what the
    trial computes: an override that sets a key to the value the key has without it
    (``optimizer.learning_rate=0.001`` under adam, ``optimizer=adam`` when adam is the default)
    is left out, so two spellings of one configuration are one trial. A folder an earlier
    sweeper named after every override is still found."""
    dirname = override_dirname(overrides, exclude_keys)
    legacy = trial_id(dirname)
    lines = _OVERRIDE.split(dirname) if dirname else []
    named = set(lines)
    rest = tuple(o for o in overrides if o not in named)
    canonical = trial_id(",".join(_computed(lines, rest, config_name)))
    if canonical != legacy and not (trials / canonical).exists() and (trials / legacy).is_dir():
        return trials / legacy
    return trials / canonical


def resolve_trial_id(override_dirname: str, *, _root_: Any) -> str:
    """The ``trial_id`` resolver of ``hydra.run.dir`` and ``hydra.sweep.subdir``:
    :func:`folder`'s name for the trial being composed."""
    del override_dirname  # Hydra's, the resolver's argument: the task overrides say more
    hydra = _root_.hydra
    trials = Path(hydra.runtime.cwd, str(_root_.paths.experiments), str(_root_.sweep.name),
                  "trials")
    exclude = list(hydra.job.config.override_dirname.exclude_keys)
    return folder(trials, list(hydra.overrides.task), exclude, hydra.job.config_name).name


def _computed(lines: Sequence[str], rest: tuple[str, ...],
              config_name: str | None) -> list[str]:
    """``lines`` less those that change nothing: a group's default option, a key set to the
    value it has with the trial's other overrides (``rest`` and the groups chosen)."""
    loader = _loader()
    if loader is None or config_name is None:
        return list(lines)
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(lines))
    try:
        plain = _compose(loader, config_name, rest)
        choices = plain.hydra.runtime.choices
        groups = tuple(line for line, o in zip(lines, parsed, strict=True)
                       if not (o.is_add() or o.is_delete()) and o.key_or_group in choices)
        base = _compose(loader, config_name, rest + groups)
    except Exception:  # a configuration that does not compose fails later, with its own error
        return list(lines)
    kept = []
    for line, o in zip(lines, parsed, strict=True):
        if line in groups:
            same = choices.get(o.key_or_group) == o.value()
        elif o.is_add() or o.is_delete() or o.is_sweep_override():
            same = False
        else:
            now = OmegaConf.select(base, o.key_or_group, default=_MISSING)
            if OmegaConf.is_config(now):
                now = OmegaConf.to_container(now, resolve=True)
            same = now is not _MISSING and _equal(now, o.value())
        if not same:
            kept.append(line)
    return kept


_MISSING = object()


def _equal(a: Any, b: Any) -> bool:
    """Whether a composed value and an override's value are the same setting (a number equals
    its other spellings: 1e-3 and 0.001, 16 and 16.0; a bool is not a number)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _loader() -> Any:
    """The running Hydra application's config loader (None outside one)."""
    from hydra.core.global_hydra import GlobalHydra

    instance = GlobalHydra.instance()
    return instance.config_loader() if instance.is_initialized() else None


@functools.lru_cache(maxsize=64)
def _compose(loader: Any, config_name: str, overrides: tuple[str, ...]) -> Any:
    from hydra.types import RunMode

    return loader.load_configuration(config_name=config_name, overrides=list(overrides),
                                     run_mode=RunMode.RUN)


def _short(override: str) -> str:
    """``model.units=16`` -> ``units=16``; a group's choice (``optimizer=adam``) stays whole."""
    key, _, value = override.partition("=")
    return f"{key.lstrip('+~').rpartition('.')[2]}={value}"


def config_yaml(cfg: Any) -> str:
    """The resolved configuration a trial runs with (what its ``config.yaml`` holds)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg, resolve=True)


def config_difference(old_yaml: str, new_yaml: str) -> str | None:
    """The first key that changes what a trial computes, as ``key: old -> new`` (None: same)."""
    import yaml

    def flat(node: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                out.update(flat(value, f"{prefix}{key}."))
            return out
        key = prefix.rstrip(".")
        return {} if is_bookkeeping(key) else {key: node}

    old, new = flat(yaml.safe_load(old_yaml)), flat(yaml.safe_load(new_yaml))
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) != new.get(key):
            return f"{key}: {old.get(key)} -> {new.get(key)}"
    return None
