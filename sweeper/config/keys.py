"""One table of key roles: which configuration keys make a trial what it is, and which do not.

Everything that asks "does this key change what a trial computes?" reads this table: the trial
id (``hydra.job.config.override_dirname.exclude_keys`` in ``conf/config.yaml``, checked against
it by a test), the comparison of a re-run trial with its earlier configuration, the tuner's
record of its search, the resume command, the HParams dashboard, the leaderboard's hyperparameter
columns and the trial labels of the live table.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Flag, auto


class Role(Flag):
    """What a key is for, beyond the value it gives a trial."""

    NONE = 0
    #: says where files go or how a re-run treats a trial, not what it computes: not in the
    #: trial id, not compared on a re-run, not in a trial's label
    BOOKKEEPING = auto()
    #: set by ``python -m sweeper.resume`` from the sweep folder it continues
    PINNED = auto()
    #: a folder: made absolute for launchers that start trials in another directory
    PATH = auto()
    #: never a hyperparameter (HParams dashboard, leaderboard columns)
    NOT_HPARAM = auto()


_B, _P, _D, _N = Role.BOOKKEEPING, Role.PINNED, Role.PATH, Role.NOT_HPARAM

#: Keys (or, for ``hydra``, a prefix) and their roles; every other key is a plain identity key:
#: it changes what a trial computes and is a hyperparameter.
KEYS: dict[str, Role] = {
    "hydra": _B | _N,                   # Hydra's own settings: launcher, sweeper, output dirs
    "sweep.name": _B | _P | _N,         # the sweep's folder
    "sweep.retry_failed": _B | _N,      # how a re-run treats failed trials
    "sweep.allow_failures": _B | _N,    # how the command's exit status treats them
    "sweep.repeats": _B | _N,           # how many repeats: repeat 0 is the same trial for any
    "sweep.repeat": _N,                 # a repeat trains with its own seed: not a knob
    "sweep.tie_break": _B | _N,         # what is promoted, not what a trial computes
    "sweep.measure": _B | _N,           # what is measured of a trained model, not the model
    "sweep.constraints": _B | _N,       # which trials are acceptable, not what one computes
    "sweep.objectives": _B | _N,        # how the trials are compared
    "sweep.promote": _B | _N,
    "sweep.metric": _N,                 # which epoch's checkpoint is kept: part of the trial
    "sweep.mode": _N,
    "paths.experiments": _B | _P | _D | _N,
    "paths.logs": _B | _P | _D | _N,
    "search": _B | _N,                  # a preset's name; the values it sets are compared
    "tuner.trial": _N,                  # the search's trial number leads the trial id
    "tuner.bracket": _B | _N,           # Hyperband's bookkeeping of the trial
    "tuner.round": _B | _N,
    "train.metrics": _N,                # what is measured besides accuracy: no knob
    "train.warm_start": _N,             # the trial continued: part of the trial, no knob
    "train.initial_epoch": _N,
    "dataset.cache_dir": _B | _N,       # where downloads are kept, not what they hold
    "dataset.origin": _B | _N,          # where files come from; their hashes say what they hold
    "dataset.files": _N,                # which files (and hashes) make the dataset: no knob
    "dataset.cache": _B | _N,           # where decoded images are kept: the same batches
    "train.backup_every_s": _B | _N,    # how often a trial's progress is saved, not what it is
    # When a trial stops, not what its epochs compute: a re-run with another pruner (or none)
    # finds the trials it ran, and keeps their outcome. Hydra's exclude_keys match whole keys,
    # so each setting a command line can give is listed.
    "pruner": _B | _N,
    "pruner.min_epochs": _B | _N,
    "pruner.min_trials": _B | _N,
    "pruner.grace_period": _B | _N,
    "pruner.reduction_factor": _B | _N,
}


def key_of(override: str) -> str:
    """The key an override line sets: ``+model.depth=2`` -> ``model.depth``."""
    return override.split("=", 1)[0].lstrip("+~")


def role(key: str) -> Role:
    """The roles of ``key`` (an exact entry, else the nearest enclosing one: ``hydra.x``)."""
    key = key.lstrip("+~").replace("/", ".")
    while key:
        if key in KEYS:
            return KEYS[key]
        key = key.rpartition(".")[0]
    return Role.NONE


def is_bookkeeping(key: str) -> bool:
    return Role.BOOKKEEPING in role(key)


def is_hparam(key: str) -> bool:
    return Role.NOT_HPARAM not in role(key)


def with_role(wanted: Role) -> list[str]:
    """The table's keys that have every role in ``wanted``."""
    return [k for k, r in KEYS.items() if wanted in r]


def excluded_from_id() -> list[str]:
    """Keys left out of the trial id: Hydra's ``override_dirname.exclude_keys``."""
    return [k for k in with_role(Role.BOOKKEEPING) if k != "hydra"]


def identity(overrides: Iterable[str]) -> list[str]:
    """The override lines that change what a trial computes, in their order."""
    return [o for o in overrides if not is_bookkeeping(key_of(o))]


def label(overrides: Iterable[str], common: Iterable[str] = ()) -> str:
    """A trial as a person names it: its identity overrides, less those ``common`` to all."""
    shared = set(common)
    shown = [o for o in identity(overrides) if o not in shared]
    return " ".join(shown) or "(defaults)"
