"""What a trial costs, the limits a sweep puts on it and the objectives it trades off:
``sweep.measure``, ``sweep.constraints`` and ``sweep.objectives``. No TensorFlow here: the sweep
process checks these before any work, the worker measures (:mod:`sweeper.trial.cost`).

    sweep.constraints=['params<=200000','tflite_mb<=2','latency_ms<=5']
    sweep.objectives=[val_accuracy:max,latency_ms:min]

A constraint on what is known once the model is built (parameters, FLOPs) is checked before
training: a trial that breaks it is not trained (status ``infeasible``). Any other is checked
after the trial is measured: the trial keeps its scores, is marked infeasible and never promoted.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sweeper.errors import ConfigError

BUILD, TRAINED, TFLITE = "build", "trained", "tflite"  # when a cost is known
# name: (the way it improves, what it measures, when it is known). Sizes in MB are bytes / 1e6.
COSTS: dict[str, tuple[str, str, str]] = {
    "params": ("min", "parameters, trainable or not (Keras's count_params)", BUILD),
    "trainable_params": ("min", "trainable parameters", BUILD),
    "flops": ("min", "float operations per image, by TensorFlow's profiler over the model's "
              "inference graph (a multiply-add counts 2)", BUILD),
    "keras_mb": ("min", "the best checkpoint's .keras file", TRAINED),
    "throughput": ("max", "images per second of Keras inference at the training batch size",
                   TRAINED),
    "epoch_s": ("min", "training seconds per epoch (fit time / epochs trained)", TRAINED),
    "peak_rss_mb": ("min", "the worker's peak resident memory so far (getrusage)", TRAINED),
    "gpu_peak_mb": ("min", "TensorFlow's peak GPU memory during the trial", TRAINED),
    "saved_model_mb": ("min", "the SavedModel folder (model.export)", TFLITE),
    "tflite_mb": ("min", "the TensorFlow Lite float model (TFLiteConverter)", TFLITE),
    "tflite_quant_mb": ("min", "the TensorFlow Lite model with dynamic-range quantization",
                        TFLITE),
    "latency_ms": ("min", "TensorFlow Lite interpreter, batch 1, one thread: the median of "
                   "timed runs after warm-up", TFLITE),
    "latency_spread_ms": ("min", "the 10th to 90th percentile range of those runs", TFLITE),
}
MEASURES = (TFLITE,)
PROMOTE = ("first", "knee")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(<=|>=|<|>)\s*([-+0-9.eE_]+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``name op bound``: a limit on a cost or a validation metric."""

    name: str
    op: str
    bound: float

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.bound:g}"

    @property
    def when(self) -> str:
        return COSTS[self.name][2] if self.name in COSTS else TRAINED

    def holds(self, value: float) -> bool:
        return bool(_OPS[self.op](value, self.bound))


def constraint(text: str, metrics: Sequence[str]) -> Constraint:
    """A constraint from its text; raises :class:`ConfigError` naming what is wrong."""
    match = _CONSTRAINT.match(str(text))
    if match is None:
        raise ConfigError(f"sweep.constraints: {text!r} is not NAME<=NUMBER (or >=, <, >), e.g. "
                          "'params<=200000' or 'latency_ms<=5'")
    name, op, bound = match.groups()
    _known("sweep.constraints", name, metrics)
    try:
        return Constraint(name, op, float(bound))
    except ValueError:
        raise ConfigError(f"sweep.constraints: {text!r}: {bound!r} is not a number") from None


def objective(text: str, metrics: Sequence[str]) -> tuple[str, str]:
    """``val_accuracy:max`` -> ("val_accuracy", "max"); the mode defaults to the natural one."""
    name, _, mode = str(text).partition(":")
    name, mode = name.strip(), mode.strip() or natural_mode(name)
    _known("sweep.objectives", name, metrics)
    if mode not in ("max", "min"):
        raise ConfigError(f"sweep.objectives: {text!r}: the mode must be max or min")
    return name, mode


def natural_mode(name: str) -> str:
    if name in COSTS:
        return COSTS[name][0]
    return "min" if "loss" in name else "max"


def _known(key: str, name: str, metrics: Sequence[str]) -> None:
    if name.startswith("test_"):
        raise ConfigError(f"{key}: {name} is a test-split score; choosing on the test split "
                          f"leaks it into the choice: use val_{name.removeprefix('test_')}")
    if name not in COSTS and name not in metrics:
        raise ConfigError(f"{key}: unknown {name!r}; one of {', '.join([*metrics, *COSTS])}")


@dataclass(frozen=True)
class Goals:
    """A sweep's measurements, constraints and objectives, checked."""

    constraints: tuple[Constraint, ...] = ()
    objectives: tuple[tuple[str, str], ...] = ()
    tflite: bool = False  # measure the TensorFlow Lite sizes and latency
    promote: str = "first"

    def broken(self, values: Mapping[str, Any], when: Iterable[str]) -> str | None:
        """Why ``values`` break the constraints known ``when`` (None: they hold)."""
        stages = set(when)
        for c in self.constraints:
            value = values.get(c.name)
            if c.when in stages and value is not None and not c.holds(value):
                return f"{c.name}={value:,.6g} breaks {c}"
        return None


def goals(sweep: Any, metrics: Sequence[str]) -> Goals:
    """The checked goals of a sweep's ``sweep`` config; ``metrics`` are the validation and
    training metrics the trials report (sweep.metric's choices)."""
    for name in sweep.get("measure") or ():
        if name not in MEASURES:
            raise ConfigError(f"sweep.measure: unknown {name!r}; one of {', '.join(MEASURES)}")
    constraints = tuple(constraint(c, metrics) for c in sweep.get("constraints") or ())
    objectives = tuple(objective(o, metrics) for o in sweep.get("objectives") or ())
    if objectives and objectives[0] != (str(sweep.metric), str(sweep.mode)):
        first = objectives[0]
        raise ConfigError(
            f"sweep.objectives: the first, {first[0]}:{first[1]}, is the objective the pruner "
            f"and the search follow: set sweep.metric={first[0]} sweep.mode={first[1]} too "
            f"(now {sweep.metric}:{sweep.mode})")
    if len({name for name, _ in objectives}) < len(objectives):
        raise ConfigError("sweep.objectives: an objective is named twice")
    promote = str(sweep.get("promote") or "first")
    if promote not in PROMOTE:
        raise ConfigError(f"sweep.promote={promote}: one of {', '.join(PROMOTE)}")
    named = [c.name for c in constraints] + [name for name, _ in objectives]
    tflite = TFLITE in (sweep.get("measure") or ()) or any(
        COSTS.get(n, ("", "", ""))[2] == TFLITE for n in named)
    return Goals(constraints, objectives, tflite, promote)


def quote_constraints(line: str) -> str:
    """``sweep.constraints=[params<=200000,latency_ms<=5]`` as Hydra's override grammar takes it:
    each element quoted (an unquoted ``<`` or ``>`` is no character of that grammar)."""
    key, _, value = line.partition("=")
    if key.lstrip("+~") != "sweep.constraints" or not (value.startswith("[")
                                                       and value.endswith("]")):
        return line
    items = [item.strip() for item in value[1:-1].split(",") if item.strip()]
    return f"{key}=[" + ",".join(i if i[0] in "'\"" else f"'{i}'" for i in items) + "]"
