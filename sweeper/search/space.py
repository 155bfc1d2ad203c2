"""A search space in Hydra's sweep syntax. Each form becomes a keras-tuner HyperParameter
(:func:`sweeper.search.oracle.hyperparameters`):

==========================================  ===========================================
``adam,sgd`` or ``choice(adam,sgd)``        ``Choice``
``range(16,129,16)``                        ``Int`` (or ``Float``) with that step
``interval(0.0,0.5)``                       ``Float`` (``Int`` when both ends are integers)
``tag(log, interval(1e-4,1e-1))``           ``Float`` sampled on a log scale
a plain value                               ``Fixed``
==========================================  ===========================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from omegaconf import DictConfig, OmegaConf

from sweeper import hparams
from sweeper.config.keys import is_hparam
from sweeper.errors import SearchError


@dataclass(frozen=True)
class Param:
    """One dimension of the search space, as written on the command line."""

    name: str  # the config key or group (``model.units``, ``optimizer``)
    key: str  # the override's key as written (``+model.extra``)
    kind: str  # choice, int, float or fixed
    values: tuple[Any, ...] = ()  # choice and fixed
    low: float | None = None  # int and float
    high: float | None = None
    step: float | None = None
    sampling: str = "linear"

    def domain(self) -> hparams.Domain:
        """The HParams dashboard's domain: the values, or an interval."""
        if self.kind in ("choice", "fixed"):
            return list(self.values)
        assert self.low is not None and self.high is not None
        if self.step is not None and self.sampling == "linear":
            count = int(round((self.high - self.low) / self.step)) + 1
            if count <= 100:
                return [_tidy(self.low + i * self.step, self.kind) for i in range(count)]
        return hparams.Interval(float(self.low), float(self.high))

    def corners(self) -> list[Any]:
        """Values that bound this dimension: every choice, or both ends of a range."""
        if self.kind in ("choice", "fixed"):
            return list(self.values)
        return [_tidy(self.low, self.kind), _tidy(self.high, self.kind)]


@dataclass
class Space:
    """A search space: the dimensions, and the command line's other overrides, kept verbatim."""

    params: list[Param] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)

    def swept(self) -> list[Param]:
        return [p for p in self.params if p.kind != "fixed"]


def _tidy(value: Any, kind: str) -> Any:
    return int(value) if kind == "int" else round(float(value), 12)


def format_value(value: Any) -> str:
    """A value as a Hydra override writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):  # 6 significant digits: 0.113353, not 0.11335292969113
        return repr(float(f"{value:.6g}"))
    return str(value)


def parse_space(overrides: Sequence[Override], groups: Sequence[str] = (),
                config: DictConfig | None = None) -> Space:
    """The search space of these overrides (``hydra.sweeper.params`` first, then the command
    line; a key given twice takes its last value). ``groups`` are the config groups, which only
    take a choice of their options. An interval over a key that ``config`` holds an integer in
    (``model.units``) searches integers, as ``tag(int, interval(...))`` does."""
    last: dict[str, Override] = {}
    for o in overrides:
        if not o.is_hydra_override():  # hydra/launcher=..., hydra.sweeper.*: not the trial's
            last[o.get_key_element()] = o
    space = Space()
    for o in last.values():
        if o.is_sweep_override():
            current = OmegaConf.select(config, o.key_or_group, default=None) \
                if config is not None else None
            whole = isinstance(current, int) and not isinstance(current, bool)
            space.params.append(_param(o, groups, whole))
        else:
            space.fixed.append(str(o.input_line))
            value = o.value()
            if isinstance(value, bool | int | float | str) and is_hparam(o.key_or_group) and \
                    not o.is_delete() and o.package is None:
                space.params.append(Param(o.key_or_group, o.get_key_element(), "fixed", (value,)))
    if not space.swept():
        raise SearchError("the search space is empty: sweep at least one key, e.g. "
                          "'model.units=range(16,129,16)' or 'optimizer=choice(adam,sgd)'")
    return space


def _param(o: Override, groups: Sequence[str], whole: bool = False) -> Param:
    text = str(o.input_line)
    name, key, value = o.key_or_group, o.get_key_element(), o.value()
    if o.is_delete():
        raise SearchError(f"{text}: a deletion cannot be searched")
    if name in groups and not isinstance(value, ChoiceSweep):
        raise SearchError(f"{text}: the config group {name} takes a choice of its options, "
                          f"e.g. {name}=choice(a,b)")
    tags = set(getattr(value, "tags", ()) or ())
    if tags - {"log", "int"}:
        raise SearchError(f"{text}: unknown tag {sorted(tags - {'log', 'int'})[0]!r} "
                          "(the tuner knows log and int)")
    if isinstance(value, ChoiceSweep):
        values = list(value.list)
        if not values:
            raise SearchError(f"{text}: an empty choice")
        if not all(isinstance(v, bool | int | float | str) for v in values):
            raise SearchError(f"{text}: choice values must be numbers, strings or booleans")
        kinds = {bool if isinstance(v, bool) else str if isinstance(v, str) else float
                 for v in values}
        if len(kinds) > 1:
            raise SearchError(f"{text}: choice values must share one type")
        if kinds == {float} and not all(isinstance(v, int) for v in values):
            values = [float(v) for v in values if isinstance(v, int | float)]
        if len(set(values)) < len(values):
            raise SearchError(f"{text}: a value is repeated")
        return Param(name, key, "choice", tuple(values))
    if isinstance(value, RangeSweep):
        if "log" in tags:
            raise SearchError(f"{text}: log sampling needs tag(log, interval(low, high))")
        numbers: list[float] = [v for v in o.sweep_iterator() if isinstance(v, int | float)]
        if not numbers:
            raise SearchError(f"{text}: an empty range")
        kind = "int" if all(isinstance(v, int) for v in numbers) else "float"
        low, high = min(numbers), max(numbers)
        step = abs(float(value.step)) if value.step is not None else 1.0
        return Param(name, key, kind, low=low, high=high, step=step if low != high else None)
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None
        start, end = value.start, value.end
        if not start < end:
            raise SearchError(f"{text}: an interval needs low < high")
        as_int = "int" in tags or whole
        sampling = "log" if "log" in tags else "linear"
        if sampling == "log" and start <= 0:
            raise SearchError(f"{text}: log sampling needs a low end above 0")
        if as_int:
            if not (float(start).is_integer() and float(end).is_integer()):
                raise SearchError(f"{text}: an int interval needs whole-number ends")
            return Param(name, key, "int", low=int(start), high=int(end), sampling=sampling)
        return Param(name, key, "float", low=float(start), high=float(end), sampling=sampling)
    raise SearchError(f"{text}: the tuner cannot search this; use choice(...), range(...), "
                      "interval(...) or tag(log, interval(...))")
