"""What a Hydra ``_target_`` takes, found without running its module.

The sweep process never imports TensorFlow, and a model builder's module or a Keras optimizer
would bring it in. So the target's module is located with importlib's finders (which do not
execute it) and its ``def`` is read with :mod:`ast`, following ``from ... import`` re-exports (as
``keras.optimizers`` re-exports ``keras.src.optimizers.adam.Adam``) and, for a class whose
``__init__`` takes ``**kwargs``, the arguments its base classes take. Only a target that cannot be
read that way (a callable made at import time, a compiled module) is imported, in a short child
process, so that whatever it imports stays out of this one.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass

from sweeper.config.source import Param, TargetNotFound, read_source

__all__ = ["Param", "Signature", "TargetNotFound", "signature"]


@dataclass(frozen=True)
class Signature:
    """The keyword arguments a target takes."""

    target: str
    params: tuple[Param, ...]
    open: bool = False  # a function taking **kwargs: any keyword is accepted

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def get(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


@functools.lru_cache(maxsize=256)
def signature(target: str) -> Signature:
    """The keyword arguments of the function or class ``target`` (a dotted import path, as in
    ``_target_``); raises :class:`TargetNotFound` when there is no such target."""
    found = read_source(target)
    if found is None:
        return _ask_child(target)
    params, is_open = found
    return Signature(target, tuple(params), is_open)


# -- asking a child process ----------------------------------------------------------------------

_CHILD = r"""
import inspect, json, sys
from hydra.utils import get_object
try:
    obj = get_object(sys.argv[1])
    sig = inspect.signature(obj)
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
    raise SystemExit(0)
kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
params = [[p.name, p.default is inspect.Parameter.empty,
           None if p.annotation is inspect.Parameter.empty else
           (p.annotation if isinstance(p.annotation, str) else
            getattr(p.annotation, "__name__", str(p.annotation)))]
          for p in sig.parameters.values() if p.kind in kinds]
opened = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
print(json.dumps({"params": params, "open": opened}))
"""


def _ask_child(target: str) -> Signature:
    """Import ``target`` in a child process and read its signature there."""
    done = subprocess.run([sys.executable, "-c", _CHILD, target], capture_output=True,
                          text=True, timeout=300, env=_child_env())
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        tail = " | ".join(done.stderr.strip().splitlines()[-2:])
        raise TargetNotFound(f"cannot import {target} ({tail or 'no answer'})") from e
    if "error" in answer:
        raise TargetNotFound(f"cannot import {target} ({answer['error']})")
    params = tuple(Param(name, bool(required), annotation)
                   for name, required, annotation in answer["params"])
    return Signature(target, params, bool(answer["open"]))


def _child_env() -> dict[str, str]:
    # The child may import TensorFlow: keep it off the accelerators and quiet. It looks for the
    # target where this process would (the working directory, PYTHONPATH, sys.path changes).
    path = os.pathsep.join(p or os.getcwd() for p in sys.path)
    return {**os.environ, "PYTHONPATH": path, "CUDA_VISIBLE_DEVICES": "-1",
            "TF_CPP_MIN_LOG_LEVEL": "3"}
