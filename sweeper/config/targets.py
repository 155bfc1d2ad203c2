"""The ``_target_`` options (model, optimizer, schedule) checked against what they name.

Every key of such an option is an argument of the function or class in its ``_target_`` (a
model builder, a Keras optimizer, a schedule), except the few keys sweeper reads itself. An
unknown key, a missing argument, a value of the wrong type or a target that does not exist is
one :class:`ConfigError` naming the key, before any trial starts; the targets are imported in a
child process, all at once, not in this one (:mod:`sweeper.config.signatures`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeper.config.signatures import TargetNotFound, signature, signatures
from sweeper.errors import ConfigError

TARGET = "_target_"


@dataclass(frozen=True)
class Group:
    """A config group whose options are ``_target_`` configs."""

    name: str
    #: arguments the trial passes itself (not keys of the option)
    supplied: tuple[str, ...]
    #: keys sweeper reads for any option of the group (not passed to the target)
    own: tuple[str, ...] = ()
    #: whether an option must have a ``_target_`` (a schedule without one is constant)
    needs_target: bool = True


MODEL = Group("model", supplied=("input_shape", "num_classes"),
              own=("input_size", "freeze_base", "fine_tune_at"))
OPTIMIZER = Group("optimizer", supplied=())
SCHEDULE = Group("schedule", supplied=("learning_rate", "steps_per_epoch", "epochs"),
                 needs_target=False)
GROUPS = (MODEL, OPTIMIZER, SCHEDULE)


def arguments(node: Any, group: Group) -> dict[str, Any]:
    """The keyword arguments an option passes to its target: its keys, less ``_target_`` and
    sweeper's own."""
    plain: Any = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    return {str(k): v for k, v in (plain or {}).items() if k != TARGET and k not in group.own}


def read(configs: Iterable[DictConfig]) -> None:
    """Find the signature of every target ``configs`` name, all at once (one child process at
    most), so that :func:`check` asks for none."""
    named = (cfg[g.name].get(TARGET) for cfg in configs for g in GROUPS
             if not OmegaConf.is_missing(cfg[g.name], TARGET))
    signatures(str(target) for target in named if target is not None)


def check(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` on the first option whose keys its target does not take."""
    for group in GROUPS:
        check_option(cfg[group.name], group)


def check_option(node: Any, group: Group) -> None:
    if OmegaConf.is_missing(node, TARGET):
        raise ConfigError(f"{group.name}.{TARGET}: required; give the import path of your "
                          f"{'builder' if group is MODEL else 'function or class'}, e.g. "
                          f"{group.name}.{TARGET}=mypkg.nets.build")
    target = node.get(TARGET)
    given = arguments(node, group)
    if target is None:
        if group.needs_target:
            raise ConfigError(f"{group.name}.{TARGET}: required (the function or class that "
                              f"builds the {group.name})")
        if given:
            key = next(iter(given))
            raise ConfigError(f"{group.name}.{key}: this {group.name} takes no keys (set "
                              f"+{group.name}.{TARGET} to use your own)")
        return
    try:
        sig = signature(str(target))
    except TargetNotFound as e:
        raise ConfigError(f"{group.name}.{TARGET}={target}: not found ({e})") from e
    takes = [n for n in sig.names() if n not in group.supplied]
    for name in group.supplied:
        if sig.get(name) is None and not sig.open:
            raise ConfigError(f"{group.name}.{TARGET}={target}: takes no argument {name!r}; "
                              f"sweeper calls it as {_call(group)}")
    for key, value in given.items():
        param = sig.get(key)
        if key in group.supplied:
            raise ConfigError(f"{group.name}.{key}: set by sweeper for every trial, not a key")
        if param is None and not sig.open:
            raise ConfigError(f"{group.name}.{key}: not an argument of {target} (it takes "
                              f"{', '.join(takes) or 'none'})")
        if param is not None:
            _check_type(f"{group.name}.{key}", value, param.annotation, target)
    for param in sig.params:
        if param.required and param.name not in group.supplied and param.name not in given:
            raise ConfigError(f"{group.name}.{param.name}: required by {target}; set it with "
                              f"+{group.name}.{param.name}=VALUE")


def _call(group: Group) -> str:
    return f"f({', '.join(group.supplied)}, **keys)"


# Annotations simple enough to check a value against: one type, or one type or None.
_SIMPLE = re.compile(r"^(?:Optional\[)?(int|float|bool|str)(?:\])?(\s*\|\s*None)?$")
_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,),
                                       "str": (str,)}
_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


def _check_type(key: str, value: Any, annotation: str | None, target: Any) -> None:
    if annotation is None:
        return
    match = _SIMPLE.match(annotation.replace("typing.", "").strip())
    if match is None:
        return
    kind = match.group(1)
    nullable = bool(match.group(2)) or annotation.startswith("Optional[")
    if value is None and nullable:
        return
    ok = isinstance(value, _TYPES[kind]) and not (kind != "bool" and isinstance(value, bool))
    if not ok:
        allowed = _NAMES[kind] + (" or null" if nullable else "")
        raise ConfigError(f"{key}={_show(value)}: must be {allowed} (argument of {target})")


def _show(value: Any) -> str:
    return "null" if value is None else str(value)
