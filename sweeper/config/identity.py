"""What makes two trials the same: stable trial ids, and the configuration a trial ran with."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sweeper.config.keys import is_bookkeeping

_TUNER_TRIAL = re.compile(r"(?:^|,)tuner\.trial=('?[0-9]+'?)(?=,|$)")
# A comma that starts the next override (not one inside a list value such as [12,12]).
_QUOTES = str.maketrans("", "", "[]'\" ")
_OVERRIDE = re.compile(r",(?=[+~]*[A-Za-z_][\w.]*=)")


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
