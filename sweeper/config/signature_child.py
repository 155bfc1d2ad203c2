"""The child process of :mod:`sweeper.config.signatures`: run as a script (``python
signature_child.py TARGET...``), it imports the targets and prints their keyword arguments as
JSON. It imports nothing of sweeper's, so what the targets import stays in this process."""

import importlib
import inspect
import json
import sys
from typing import Any

if sys.path and sys.path[0] == __file__.rpartition("/")[0]:
    del sys.path[0]  # this folder is not where targets are looked for (PYTHONPATH is)

KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def locate(target: str) -> Any:
    # as Hydra's instantiate will: an attribute first, else a submodule
    parts = target.split(".")
    obj = importlib.import_module(parts[0])  # found by the parent
    for i, part in enumerate(parts[1:], 1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            try:
                obj = importlib.import_module(name := ".".join(parts[:i + 1]))
            except ModuleNotFoundError as e:
                if e.name != name:
                    raise
                what = "module " if inspect.ismodule(obj) else ""
                raise LookupError(f"{what}{'.'.join(parts[:i])} has no {part!r}") from None
    if inspect.ismodule(obj):
        raise LookupError(f"{target} is a module, not a function or class")
    return obj


def annotation(p: inspect.Parameter) -> str | None:
    a = p.annotation
    return None if a is p.empty else a if isinstance(a, str) else getattr(a, "__name__", str(a))


def answer(target: str) -> dict:
    obj: Any = locate(target)
    sig = inspect.signature(obj)
    params = [[p.name, p.default is p.empty, annotation(p)] for p in sig.parameters.values()
              if p.kind in KINDS]
    opened = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if inspect.isclass(obj):
        # Arguments that only reach a base through **kwargs are never required: the class may
        # pass them itself. object takes no keywords, and a base taking **kwargs at the end of
        # the chain (as Keras's optimizers and layers do) refuses the ones it does not know.
        for base in obj.__mro__:
            if not opened:
                break
            if base is object or "__init__" not in vars(base):
                continue
            try:
                init = list(inspect.signature(vars(base)["__init__"]).parameters.values())[1:]
            except (TypeError, ValueError):  # a base written in C
                break
            known = {name for name, _, _ in params}
            params += [[p.name, False, annotation(p)] for p in init
                       if p.kind in KINDS and p.name not in known]
            opened = any(p.kind is p.VAR_KEYWORD for p in init)
        opened = False
    return {"params": params, "open": opened}


answers: dict[str, dict] = {}
for target in sys.argv[1:]:
    try:
        answers[target] = answer(target)
    except LookupError as e:
        answers[target] = {"missing": str(e)}
    except Exception as e:
        answers[target] = {"missing": f"cannot import {target} ({type(e).__name__}: {e})"}
print(json.dumps(answers))
