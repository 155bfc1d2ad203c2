"""What a Hydra ``_target_`` takes, found without importing it in the sweep process.

The sweep process never imports TensorFlow, and a model builder's module or a Keras optimizer
would bring it in (seconds). So the targets a command needs are imported together in one short
child process, which answers with :func:`inspect.signature` (for a class whose ``__init__`` takes
``**kwargs``, its base classes' arguments too, as Keras's optimizers pass theirs on). The answers
are kept in the user's cache folder (``$XDG_CACHE_HOME/sweeper/signatures.json``) for the
installed version of the distribution the target comes from, so the next command starts no child.
A module of the user's own (not installed) is not kept, as it changes between commands: a plain
``def`` in it is read from its source with :mod:`ast`, and anything else asks the child.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import json
import os
import site
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

from sweeper.atomic import write_atomic

__all__ = ["Param", "Signature", "TargetNotFound", "signature", "signatures"]


class TargetNotFound(LookupError):
    """The target cannot be located or does not take keyword arguments we can name."""


@dataclass(frozen=True)
class Param:
    """A keyword argument of the target."""

    name: str
    required: bool  # no default value
    annotation: str | None = None  # as written in the source, e.g. "int | None"


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


def signature(target: str) -> Signature:
    """The keyword arguments of the function or class ``target`` (a dotted import path, as in
    ``_target_``); raises :class:`TargetNotFound` when there is no such target."""
    found = signatures([target])[target]
    if isinstance(found, TargetNotFound):
        raise TargetNotFound(*found.args)
    return found


# This process's answers: a command checks the same targets once per trial it composes.
_known: dict[str, Signature | TargetNotFound] = {}


def signatures(targets: Iterable[str]) -> dict[str, Signature | TargetNotFound]:
    """The signature of each target, or why it has none; those neither known to this process,
    cached nor read from the user's own source are asked of one child process, together."""
    wanted = list(dict.fromkeys(targets))
    cache = _cache_file()
    cached = _load(cache) if set(wanted) - set(_known) else {}
    keys: dict[str, str | None] = {}
    ask: list[str] = []
    for target in (t for t in wanted if t not in _known):
        read: Signature | TargetNotFound | None
        try:
            keys[target] = key = _cache_key(target)
            read = _read_def(target) if key is None else _from_json(target, cached[key])
        except TargetNotFound as e:
            read = e
        except (KeyError, TypeError, ValueError):  # not cached yet, or an entry gone bad
            read = None
        if read is not None:
            _known[target] = read
        else:
            ask.append(target)
    if ask:
        answers = _ask_child(ask)
        _known.update({t: _from_json(t, a) if "params" in a else TargetNotFound(a["missing"])
                       for t, a in answers.items()})
        new = {key: a for t, a in answers.items() if "params" in a and (key := keys[t])}
        if new:  # read again: another command may have added its own since; one version each
            kept = {k: v for k, v in _load(cache).items() if k.split()[0] not in answers}
            try:
                write_atomic(cache, json.dumps({**kept, **new}, sort_keys=True) + "\n")
            except OSError:
                pass  # a read-only home: the next command asks again
    return {t: _known[t] for t in wanted}


def _cache_file() -> Path:
    home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(home, "sweeper", "signatures.json")


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _from_json(target: str, answer: dict[str, Any]) -> Signature:
    params = tuple(Param(str(name), bool(required), annotation)
                   for name, required, annotation in answer["params"])
    return Signature(target, params, bool(answer["open"]))


def _cache_key(target: str) -> str | None:
    """``target`` and the installed distribution its top-level module comes from, e.g.
    ``keras.optimizers.Adam keras==3.5.0``; None for a module of the user's own: one outside
    site-packages (a checkout, an editable install) changes under the same version."""
    top = target.partition(".")[0]
    spec = _spec(top)
    where = spec.origin if spec.has_location else next(iter(spec.submodule_search_locations or
                                                            ()), None)
    site_folders = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib"),
                    *site.getsitepackages(), site.getusersitepackages()}
    if where is None or not any(Path(where).resolve().is_relative_to(Path(f).resolve())
                                for f in site_folders):
        return None
    dist = _distribution(top)
    return None if dist is None else f"{target} {dist}=={importlib.metadata.version(dist)}"


def _spec(top: str) -> ModuleSpec:
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: found, never executed
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise TargetNotFound(f"no module named {top!r}")
    return spec


@functools.cache
def _distribution(top: str) -> str | None:
    """The name of the installed distribution that provides the module ``top``."""
    try:  # most are named after their module, and this is quicker than listing them all
        dist = importlib.metadata.distribution(top)
        if any(f.parts[0] in (top, f"{top}.py") for f in dist.files or ()):
            return str(dist.metadata["Name"])
    except importlib.metadata.PackageNotFoundError:
        pass
    return next(iter(importlib.metadata.packages_distributions().get(top, [])), None)


# -- a plain def in the user's own module ---------------------------------------------------------


def _read_def(target: str) -> Signature | None:
    """The signature of a plain top-level ``def`` in a module of the user's own, read from its
    source; None when only running the module would tell (a decorated or rebound name, a callable
    made at import time, a package's attribute)."""
    module, _, name = target.rpartition(".")
    path = _module_file(module) if module else None
    if path is None:
        return None
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return None  # the child says what is wrong
    bound = _bindings(tree)
    if "*" in bound or "__getattr__" in bound:
        return None
    if name not in bound and path.name != "__init__.py":
        raise TargetNotFound(f"module {module} has no {name!r}")
    fn = next((s for s in tree.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)
               and s.name == name), None)
    if fn is None or fn.decorator_list or bound.count(name) > 1:
        return None
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    named = list(zip(positional, defaults, strict=True))[len(a.posonlyargs):] + \
        list(zip(a.kwonlyargs, a.kw_defaults, strict=True))
    params = tuple(Param(arg.arg, default is None,
                         None if arg.annotation is None else ast.unparse(arg.annotation))
                   for arg, default in named)
    return Signature(target, params, a.kwarg is not None)


def _module_file(dotted: str) -> Path | None:
    """The source file of the module ``dotted``, found in folders without running its
    packages; None when it is not one ``.py`` file in the user's own folders."""
    top, *rest = dotted.split(".")
    spec = _spec(top)
    path = Path(spec.origin) if spec.has_location and spec.origin else None
    folders = list(spec.submodule_search_locations or [])
    for part in rest:
        path = next((f for d in folders for f in (Path(d, part, "__init__.py"),
                                                  Path(d, f"{part}.py")) if f.is_file()), None)
        if path is None:
            return None
        folders = [str(path.parent)] if path.name == "__init__.py" else []
    return path if path is not None and path.suffix == ".py" else None


def _bindings(tree: ast.Module) -> list[str]:
    """Every name the module binds at its top level, once per binding ("*": a star import)."""
    names: list[str] = []
    for stmt in tree.body:
        defs = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        for node in [stmt] if isinstance(stmt, defs) else ast.walk(stmt):
            if isinstance(node, defs):
                names.append(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.append(node.id)
            elif isinstance(node, ast.alias):
                names.append((node.asname or node.name).partition(".")[0])
    return names


# -- asking a child process ----------------------------------------------------------------------

CHILD = Path(__file__).with_name("signature_child.py")  # run by path: no sweeper import


def _ask_child(targets: list[str]) -> dict[str, dict[str, Any]]:
    """Import ``targets`` in one child process and read their signatures there."""
    done = subprocess.run([sys.executable, str(CHILD), *targets], capture_output=True,
                          text=True, timeout=300, env=_child_env())
    try:
        answers = json.loads(done.stdout.strip().splitlines()[-1])
        return {t: answers[t] for t in targets}
    except (ValueError, IndexError, KeyError, TypeError):
        tail = " | ".join(done.stderr.strip().splitlines()[-2:]) or "no answer"
        return {t: {"missing": f"cannot import {t} ({tail})"} for t in targets}


def _child_env() -> dict[str, str]:
    # The child may import TensorFlow: keep it off the accelerators and quiet. It looks for the
    # target where this process would (the working directory, PYTHONPATH, sys.path changes).
    path = os.pathsep.join(p or os.getcwd() for p in sys.path)
    return {**os.environ, "PYTHONPATH": path, "CUDA_VISIBLE_DEVICES": "-1",
            "TF_CPP_MIN_LOG_LEVEL": "3"}
