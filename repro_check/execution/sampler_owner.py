"""Which library call built a sampler the script did not build itself, and how the script seeds it.

An integration that owns its sampler (``LightGBMTunerCV`` builds a ``TPESampler`` inside its
``run()``) is seeded through its own parameter (``optuna_seed=``), set where the script built
the integration's object, not where it called ``run()``. The frames tell which library call
the script made and, for a method, on which object; the script's source tells the line that
built that object (the last assignment of the name the call was made on).
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from repro_check.execution.userframes import is_user_file, shown_path

MAX_SOURCE_BYTES = 2_000_000
"""A script larger than this is not parsed (the owner is then named at the call's line)."""


@dataclass(frozen=True)
class Owner:
    """The library call that built a sampler, as the script wrote it."""

    via: str
    """The class or function the script called, as its code names it (``LightGBMTunerCV``)."""
    param: str | None
    """Its seed-like parameter the script left unset (``optuna_seed``); None: it has none."""
    at: str
    """``file:line`` where the script built that object (or made the call)."""


def is_seed_like(name: str) -> bool:
    """A parameter that seeds something: ``seed``, ``optuna_seed``, ``random_state``."""
    lowered = name.lower()
    return "seed" in lowered or lowered == "random_state"


def _rank(name: str) -> tuple[bool, bool]:
    """Sort key among seed-like parameters: Optuna's or the sampler's own first, then
    ``seed`` itself (``LightGBMTunerCV`` has ``seed`` for LightGBM and ``optuna_seed``)."""
    lowered = name.lower()
    return ("optuna" not in lowered and "sampler" not in lowered, lowered != "seed")


def _pick(candidates: list[str]) -> str | None:
    return min(candidates, key=_rank) if candidates else None


@functools.cache
def _not_integrations() -> tuple[str, ...]:
    """Library code that is no integration: the standard library, Optuna, repro-check."""
    roots = {sysconfig.get_paths().get(key, "") for key in ("stdlib", "platstdlib")}
    roots.add(str(Path(__file__).resolve().parents[1]))
    optuna_file = getattr(sys.modules.get("optuna"), "__file__", None)
    if isinstance(optuna_file, str):
        roots.add(str(Path(optuna_file).resolve().parent))
    return tuple(os.path.realpath(r) + os.sep for r in roots if r)


def _is_integration(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return False
    path = os.path.realpath(filename)
    return not any(path.startswith(root) for root in _not_integrations())


def library_owner(frame: FrameType | None) -> Owner | None:
    """The integration call that is building a sampler (or a study) now, out from ``frame``:
    the library function the script's innermost frame called, when it is neither Optuna's,
    the standard library's nor repro-check's. None when the script built it itself."""
    entry: FrameType | None = None
    while frame is not None and not is_user_file(frame.f_code.co_filename):
        entry, frame = frame, frame.f_back
    if frame is None or entry is None or not _is_integration(entry.f_code.co_filename):
        return None
    try:
        return _owner(entry, frame)
    except Exception:  # a hostile object's signature or source: name the call's line alone
        return Owner(entry.f_code.co_name, None, _where(frame, frame.f_lineno))


def _where(frame: FrameType, line: int) -> str:
    return f"{shown_path(frame.f_code.co_filename)}:{line}"


def _owner(entry: FrameType, user: FrameType) -> Owner:
    code = entry.f_code
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    values = entry.f_locals
    unset = [n for n in names if is_seed_like(n) and values.get(n, 0) is None]
    self_ = values.get(names[0]) if names and names[0] == "self" else None
    site = _site(user)
    line = site[1].lineno if site is not None else user.f_lineno
    if self_ is None or (code.co_name != "__init__" and unset):
        # a function (or a method's own seed parameter): set where the script called it
        return Owner(code.co_name, _pick(unset), _where(user, line))
    cls = type(self_)
    if code.co_name == "__init__":  # the script's statement builds the object now
        called = _called_in(site[1], cls, user) if site is not None else None
        return Owner(called or cls.__name__, _pick(unset), _where(user, line))
    built = _built_before(site, code.co_name, cls, user) if site is not None else None
    line, via = built if built is not None else (line, cls.__name__)
    return Owner(via, _pick(_unset_init_params(cls)), _where(user, line))


def _unset_init_params(cls: type) -> list[str]:
    """The seed-like parameters of ``cls.__init__`` that default to None."""
    try:
        parameters = inspect.signature(getattr(cls, "__init__")).parameters  # noqa: B009
    except (TypeError, ValueError):
        return []
    return [n for n, p in parameters.items() if is_seed_like(n) and p.default is None]


# -- the line that built the object: read from the script's source


def _site(user: FrameType) -> tuple[ast.AST, ast.stmt] | None:
    """The function (or module) and the simple statement the script's frame is running."""
    tree = _parsed(user.f_code.co_filename)
    if tree is None:
        return None
    scope = _scope(tree, user.f_lineno)
    stmt = _statement(scope, user.f_lineno)
    return (scope, stmt) if stmt is not None else None


def _builds(node: ast.AST | None, cls: type, user: FrameType) -> str | None:
    """The name ``node`` calls when it is a call of ``cls`` (by its name, or another name the
    script bound it to), else None."""
    if not isinstance(node, ast.Call):
        return None
    name = _called_name(node.func)
    if name is None:
        return None
    return name if name == cls.__name__ or user.f_globals.get(name) is cls else None


def _called_in(stmt: ast.stmt, cls: type, user: FrameType) -> str | None:
    """The name ``stmt`` calls ``cls`` by, if it does."""
    return next((name for node in ast.walk(stmt) if (name := _builds(node, cls, user))), None)


def _built_before(
    site: tuple[ast.AST, ast.stmt], method: str, cls: type, user: FrameType
) -> tuple[int, str] | None:
    """(line, name called) of the statement that built the object on which the script calls
    ``method`` now: that statement itself for ``Cls(...).method()``, else the last assignment
    ``name = Cls(...)`` before it in the same function (or module)."""
    scope, stmt = site
    receiver = next(
        (
            node.func.value
            for node in ast.walk(stmt)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == method
        ),
        None,
    )
    direct = _builds(receiver, cls, user)
    if direct is not None:
        return stmt.lineno, direct
    if not isinstance(receiver, ast.Name):
        return None
    found: tuple[int, str] | None = None
    for node in _own_statements(scope):
        if node.lineno >= stmt.lineno or not _assigns(node, receiver.id):
            continue
        name = _builds(getattr(node, "value", None), cls, user)
        if name is not None and (found is None or node.lineno > found[0]):
            found = (node.lineno, name)
    return found


@functools.lru_cache(maxsize=8)
def _parsed_at(filename: str, mtime_ns: int) -> ast.Module | None:
    try:
        with open(filename, "rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
        if len(data) > MAX_SOURCE_BYTES:
            return None
        return ast.parse(data, filename)
    except (OSError, SyntaxError, ValueError):
        return None


def _parsed(filename: str) -> ast.Module | None:
    try:
        mtime = os.stat(filename).st_mtime_ns
    except OSError:
        return None
    return _parsed_at(filename, mtime)


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _scope(tree: ast.Module, line: int) -> ast.AST:
    """The innermost function spanning ``line`` (else the module)."""
    found: ast.AST = tree
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            end = node.end_lineno or node.lineno
            if node.lineno <= line <= end and node.lineno >= getattr(found, "lineno", 0):
                found = node
    return found


def _own_statements(scope: ast.AST) -> list[ast.stmt]:
    """The statements of ``scope``, nested blocks included, not those of inner functions."""
    out: list[ast.stmt] = []
    stack = list(getattr(scope, "body", []))
    while stack:
        node = stack.pop()
        if isinstance(node, _SCOPES):
            continue
        out.append(node)
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(node, field, []):
                if isinstance(child, ast.stmt):
                    stack.append(child)
                elif isinstance(child, ast.ExceptHandler | ast.match_case):
                    stack.extend(child.body)
    return out


def _statement(scope: ast.AST, line: int) -> ast.stmt | None:
    """The innermost simple statement of ``scope`` spanning ``line``."""
    found: ast.stmt | None = None
    for node in _own_statements(scope):
        if hasattr(node, "body"):
            continue
        end = node.end_lineno or node.lineno
        if node.lineno <= line <= end and (found is None or node.lineno >= found.lineno):
            found = node
    return found


def _assigns(node: ast.stmt, name: str) -> bool:
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.target.id == name
    return False


def _called_name(func: Any) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None
