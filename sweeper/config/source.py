"""A function's or class's keyword arguments, read from its Python source without running it.

The module is located with importlib's finders (a top-level name is found, never executed; the
rest of the dotted path is looked up in the folders), and the ``def`` is read with :mod:`ast`.
Re-exports (``from x import y as y``, as ``keras.optimizers`` re-exports
``keras.src.optimizers.adam.Adam``) are followed, and so are the base classes of a class whose
``__init__`` takes ``**kwargs``. What the source does not say (a callable made at import time, a
compiled module) is left to the caller (:mod:`sweeper.config.signatures` asks a child process).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

# How deep re-exports and base classes are followed before giving up on reading the source.
_MAX_HOPS = 12


class TargetNotFound(LookupError):
    """The target cannot be located or does not take keyword arguments we can name."""


@dataclass(frozen=True)
class Param:
    """A keyword argument of the target."""

    name: str
    required: bool  # no default value
    annotation: str | None = None  # as written in the source, e.g. "int | None"


@dataclass(frozen=True)
class _Module:
    name: str
    file: Path | None  # None: a namespace package
    package: bool
    locations: tuple[str, ...] = ()  # where its submodules are

    @functools.cached_property
    def tree(self) -> ast.Module:
        if self.file is None:
            return ast.Module(body=[], type_ignores=[])
        return ast.parse(self.file.read_bytes(), str(self.file))


class _Unreadable(Exception):
    """The source does not say (an assignment, a star import, a compiled module)."""


def read_source(target: str) -> tuple[list[Param], bool] | None:
    """The keyword arguments of ``target`` and whether it takes any keyword (``**kwargs`` of a
    function); None when its source does not say; raises :class:`TargetNotFound` when there is
    no such target."""
    parts = target.split(".")
    try:
        module = _top_module(parts[0])
    except _Unreadable:
        return None
    if module is None:
        raise TargetNotFound(f"no module named {parts[0]!r}")
    try:
        node, where = _walk(module, parts[1:], 0)
    except _Unreadable:
        return None
    if isinstance(node, _Module):
        raise TargetNotFound(f"{target} is a module, not a function or class")
    try:
        if isinstance(node, ast.ClassDef):
            params, is_open = _class_params(node, where, 0)
            if is_open is None:  # no __init__ anywhere we can read
                return None
            return params, False
        return _function_params(node, skip_first=False)
    except _Unreadable:
        return None


def _top_module(name: str) -> _Module | None:
    try:
        spec = importlib.util.find_spec(name)  # a top-level name: found, never executed
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = tuple(spec.submodule_search_locations or ())
    if spec.origin in (None, "namespace"):
        return _Module(name, None, True, locations)
    origin = Path(spec.origin)
    if origin.suffix != ".py":
        raise _Unreadable(name)  # compiled or frozen
    return _Module(name, origin, bool(locations), locations)


def _submodule(module: _Module, name: str) -> _Module | None:
    for location in module.locations:
        folder = Path(location) / name
        if (folder / "__init__.py").is_file():
            return _Module(f"{module.name}.{name}", folder / "__init__.py", True, (str(folder),))
        if (folder.with_suffix(".py")).is_file():
            return _Module(f"{module.name}.{name}", folder.with_suffix(".py"), False)
        if folder.is_dir():
            return _Module(f"{module.name}.{name}", None, True, (str(folder),))
    return None


def _module(dotted: str) -> _Module:
    parts = dotted.split(".")
    module = _top_module(parts[0])
    for part in parts[1:]:
        if module is None:
            break
        module = _submodule(module, part)
    if module is None:
        raise _Unreadable(dotted)
    return module


Node = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _walk(module: _Module, attrs: list[str], hops: int) -> tuple[Node | _Module, _Module]:
    """Follow ``attrs`` from ``module`` as Python's attribute lookup (and Hydra's ``_locate``)
    would: a name bound in the module first, else a submodule."""
    if not attrs:
        return module, module
    if hops > _MAX_HOPS:
        raise _Unreadable(module.name)
    name, rest = attrs[0], attrs[1:]
    bound = _binding(module, name, hops)
    if bound is None:
        sub = _submodule(module, name) if module.package else None
        if sub is None:
            raise TargetNotFound(f"module {module.name} has no {name!r}")
        return _walk(sub, rest, hops + 1)
    node, where = bound
    if isinstance(node, _Module):
        return _walk(node, rest, hops + 1)
    if not rest:
        return node, where
    if isinstance(node, ast.ClassDef) and len(rest) == 1:  # Class.constructor
        method = _method(node, rest[0])
        if method is not None:
            return method, where
    raise _Unreadable(name)


def _binding(module: _Module, name: str, hops: int) -> tuple[Node | _Module, _Module] | None:
    """What ``name`` is bound to at the top level of ``module`` (inside ``if``/``try`` blocks
    too, first binding wins); None when it is not bound there."""
    for stmt in _top_statements(module.tree.body):
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) \
                and stmt.name == name:
            return stmt, module
        if isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if alias.name == "*":
                    source = _module(_absolute(module, stmt))
                    found = _binding(source, name, hops + 1)
                    if found is not None:
                        return found
                elif (alias.asname or alias.name) == name:
                    source = _module(_absolute(module, stmt))
                    sub = _submodule(source, alias.name) if source.package else None
                    if sub is not None and source.name == module.name:
                        return sub, sub  # a package importing its own submodule
                    return _walk(source, [alias.name], hops + 1)
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname == name:
                    return _module(alias.name), module
                if alias.asname is None and alias.name.split(".")[0] == name:
                    return _module(name), module
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                raise _Unreadable(name)  # made at import time: only running it tells
    return None


def _top_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, ast.If):
            out += _top_statements(stmt.body) + _top_statements(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            out += _top_statements(stmt.body)
            for handler in stmt.handlers:
                out += _top_statements(handler.body)
        else:
            out.append(stmt)
    return out


def _absolute(module: _Module, stmt: ast.ImportFrom) -> str:
    if not stmt.level:
        return stmt.module or ""
    package = module.name if module.package else module.name.rpartition(".")[0]
    for _ in range(stmt.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{stmt.module}" if stmt.module else package


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for stmt in cls.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == name:
            return stmt
    return None


def _function_params(fn: ast.FunctionDef | ast.AsyncFunctionDef,
                     skip_first: bool) -> tuple[list[Param], bool]:
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    named = list(zip(positional, defaults, strict=True))[len(a.posonlyargs):]
    if skip_first and positional and not a.posonlyargs:
        named = named[1:]
    named += list(zip(a.kwonlyargs, a.kw_defaults, strict=True))
    params = [Param(arg.arg, default is None,
                    ast.unparse(arg.annotation) if arg.annotation is not None else None)
              for arg, default in named]
    return params, a.kwarg is not None


def _class_params(cls: ast.ClassDef, where: _Module, hops: int) -> tuple[list[Param], bool | None]:
    """A class's keyword arguments: its ``__init__``'s, and, where that takes ``**kwargs`` (or
    there is none), its bases'. Arguments that only reach a base through ``**kwargs`` are never
    required: the class may pass them itself. The second value is None when no ``__init__``
    could be read at all."""
    if hops > _MAX_HOPS:
        raise _Unreadable(cls.name)
    init = _method(cls, "__init__")
    params: list[Param] = []
    if init is not None:
        params, passes_on = _function_params(init, skip_first=True)
        if not passes_on:
            return params, False
    read_any = init is not None
    for base in cls.bases:
        found = _base_class(base, where, hops)
        if found is None:
            continue  # a base we cannot read (outside Python source, made at import time)
        inherited, read = _class_params(found[0], found[1], hops + 1)
        read_any = read_any or read is not None
        known = {p.name for p in params}
        params += [Param(p.name, False, p.annotation) for p in inherited if p.name not in known]
    if not read_any and cls.bases:
        return params, None
    # The end of the chain: object takes no keywords, and a base taking **kwargs there (as
    # Keras's optimizers and layers do) refuses the ones it does not know.
    return params, False


def _base_class(expr: ast.expr, where: _Module, hops: int) -> tuple[ast.ClassDef, _Module] | None:
    dotted: list[str] = []
    while isinstance(expr, ast.Attribute):
        dotted.insert(0, expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name) or expr.id == "object":
        return None
    try:
        node, module = _walk(where, [expr.id, *dotted], hops + 1)
    except (_Unreadable, TargetNotFound, OSError, SyntaxError):
        return None
    return (node, module) if isinstance(node, ast.ClassDef) else None


