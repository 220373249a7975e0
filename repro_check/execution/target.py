"""Turn ``pkg.module:attr`` or ``path/to/file.py:attr`` into the objective callable, and tell
script targets (``train.py``, ``-m pkg.module``: run as ``python`` would) from objective ones.

Only workers call ``load``: the parent process never imports the user's module (it would run
module-level code and hide process-state effects). Every failure becomes a one-line
``TargetError`` naming the problem.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro_check.errors import TargetError

DEFAULT_ATTR = "objective"


@dataclass(frozen=True)
class TargetSpec:
    """A parsed target: where the code lives and which attribute is the objective."""

    location: str
    attr: str
    is_file: bool

    def __str__(self) -> str:
        return f"{self.location}:{self.attr}"


def parse(spec: str) -> TargetSpec:
    """Split ``location[:attr]``; a missing ``:attr`` means ``:objective``."""
    location, sep, attr = spec.rpartition(":")
    if not sep or not attr.isidentifier() or not location:
        location, attr = spec, DEFAULT_ATTR
    is_file = location.endswith(".py") or "/" in location or os.sep in location
    if not is_file and not all(part.isidentifier() for part in location.split(".")):
        raise TargetError(f"not a module path or .py file: {location!r}")
    return TargetSpec(location, attr, is_file)


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``: how errors are shown everywhere."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _module_name(path: Path) -> str:
    """The name the target file is registered under: its stem, unless that names another
    module (``optuna.py``, ``json.py``): then a private one, so the real module stays what
    ``import optuna`` gives, for the worker and for the user's code."""
    stem = path.stem
    if not stem.isidentifier():
        return "repro_check_target"
    if stem in sys.modules:
        loaded = getattr(sys.modules[stem], "__file__", None)
        if loaded is None or Path(loaded).resolve() != path.resolve():
            return f"repro_check_target_{stem}"
        return stem
    try:
        found = importlib.util.find_spec(stem)
    except (ImportError, ValueError):
        found = None
    origin = getattr(found, "origin", None)
    if found is not None and (origin is None or Path(origin).resolve() != path.resolve()):
        return f"repro_check_target_{stem}"
    return stem


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise TargetError(f"no such file: {path}")
    name = _module_name(path)  # before the file's folder is on sys.path
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # sibling imports work as in `python file.py`
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {path} as Python source")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module


def _import_module(name: str) -> Any:
    # importable from the current folder, as pytest does. Workers start with ``python -P``
    # (their own imports never see this folder): it joins sys.path only now, for the target.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise TargetError(f"no such module: {name!r}{_did_you_mean(name, missing)}") from None
        raise


def _did_you_mean(name: str, missing: str) -> str:
    """``; did you mean 'pkg.mod'?`` when a module of a close name exists where the missing one
    was looked for (as flag typos get), else ""."""
    import difflib
    import pkgutil

    parent, _, leaf = missing.rpartition(".")
    if parent:
        try:
            where = getattr(importlib.import_module(parent), "__path__", None)
        except Exception:
            return ""
        if where is None:
            return ""
        names = {module.name for module in pkgutil.iter_modules(where)}
    else:
        names = {module.name for module in pkgutil.iter_modules()} | set(sys.builtin_module_names)
    close = difflib.get_close_matches(leaf, sorted(names), n=1)
    if not close:
        return ""
    guess = f"{parent}.{close[0]}" if parent else close[0]
    return f"; did you mean {guess + name[len(missing) :]!r}?"


def load(spec: str) -> Callable[..., Any]:
    """Import the target and return its objective. Raises ``TargetError`` with one line."""
    target = parse(spec)
    where = target.location
    try:
        if target.is_file:
            module = _import_file(Path(target.location))
        else:
            module = _import_module(target.location)
    except TargetError:
        raise
    except SyntaxError as exc:
        raise TargetError(
            f"syntax error in {exc.filename or where}, line {exc.lineno}: {exc.msg}"
        ) from None
    except SystemExit as exc:
        raise TargetError(f"importing {where} called sys.exit({exc.code!r})") from None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise TargetError(f"importing {where} raised {one_line(exc)}") from None
    try:
        objective = getattr(module, target.attr)
    except AttributeError:
        raise TargetError(no_attribute(target, closest(target.attr, dir(module)))) from None
    if not callable(objective):
        kind = type(objective).__name__
        raise TargetError(f"{target} is not callable (it is {_article(kind)} {kind})")
    return objective  # type: ignore[no-any-return]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def closest(attr: str, names: Iterable[str]) -> str | None:
    """The module's name closest to the misspelt ``attr`` (dunder names aside), if any."""
    import difflib

    candidates = sorted({name for name in names if not name.startswith("__")})
    close = difflib.get_close_matches(attr, candidates, n=1)
    return close[0] if close else None


def no_attribute(target: TargetSpec, close: str | None) -> str:
    """``train.py has no attribute 'objectiv'; did you mean 'train.py:objective'?``: the
    closest name suggested, as flag and module typos get."""
    guess = f"; did you mean {f'{target.location}:{close}'!r}?" if close else ""
    return f"{target.location} has no attribute {target.attr!r}{guess}"


MAX_SOURCE_BYTES = 4 * 1024 * 1024
"""Larger sources are left to the worker (reading them in the parent is a courtesy)."""

_DYNAMIC = frozenset(
    {"globals", "vars", "locals", "exec", "eval", "__import__", "import_module", "__dict__"}
)
"""Names through which a module can bind attributes its source does not show (``sys.modules``
too: ``setattr(sys.modules[__name__], ...)``)."""


def _bound_names(tree: ast.Module) -> set[str] | None:
    """The names a module's top level binds, read from its source; None when it may bind
    others the source does not show (``from x import *``, a module ``__getattr__``,
    ``globals()``, ``exec``, ``sys.modules``): then only running it can tell."""
    names: set[str] = set()
    for node in ast.walk(tree):  # a `global` statement in a function binds a top-level name
        if isinstance(node, ast.Global):
            names.update(node.names)
        elif _binds_unseen(node):
            return None
    pending: list[ast.AST] = list(tree.body)
    while pending:  # the top level, into if/try/for/with bodies, not into functions or classes
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == "__getattr__":
                return None
            names.add(node.name)
            pending.extend(node.decorator_list)
        elif not isinstance(node, ast.Lambda):
            names.update(_bound_by(node))
            pending.extend(ast.iter_child_nodes(node))
    # a module __getattr__ bound any way (`__getattr__ = _lazy`, lazy_loader's tuple, an
    # import) answers names the source never binds (PEP 562)
    return None if "__getattr__" in names else names


def _binds_unseen(node: ast.AST) -> bool:
    """``node`` may bind module attributes the source does not name."""
    if isinstance(node, ast.alias):
        return node.name in ("*", "modules")
    if isinstance(node, ast.Name):
        return node.id in _DYNAMIC
    return isinstance(node, ast.Attribute) and (node.attr in _DYNAMIC or _is_sys_modules(node))


def _bound_by(node: ast.AST) -> list[str]:
    """The name ``node`` itself binds (not its children's), if any."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return [node.id]
    if isinstance(node, ast.alias):
        return [node.asname or node.name.split(".")[0]]
    if isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
        return [node.name]
    if isinstance(node, ast.MatchMapping) and node.rest:
        return [node.rest]
    return []


def _is_sys_modules(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "modules"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def _source_of(target: TargetSpec) -> Path | None:
    """The source file a worker would import the target's module from, found without running
    anything: the file itself, or a plain module (not a package) under the current folder
    (which a worker puts first on its path). None when that is not certain."""
    if target.is_file:
        return Path(target.location)
    import importlib.machinery

    top = target.location.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.modules:
        return None  # a worker may import the module already loaded, not the folder's file
    folders: list[str] | None = [os.getcwd()]
    spec = None
    for part in target.location.split("."):
        if folders is None:
            return None
        name = f"{spec.name}.{part}" if spec is not None else part
        spec = importlib.machinery.PathFinder.find_spec(name, folders)
        if spec is None:
            return None
        locations = spec.submodule_search_locations
        folders = list(locations) if locations is not None else None
    if spec is None or spec.submodule_search_locations is not None or not spec.origin:
        return None  # a package: its submodules are attributes once imported
    return Path(spec.origin) if spec.origin.endswith(".py") else None


def check_attribute(spec: str) -> None:
    """Refuse, in the parent and in milliseconds, a misspelt objective (``train.py:objectiv``):
    its module certainly has no such attribute and has one of a close name, which the error
    suggests. Otherwise nothing: a worker imports the module and tells (importing a training
    script can take seconds, and the parent never runs the user's code); an attribute with no
    close name is left to it too, since importing the module may fail first, and that is the
    error to show. A script target is run whole: nothing to check. Raises ``TargetError``."""
    from repro_check.plan.targets import is_script

    if is_script(spec):
        return
    try:
        target = parse(spec)
        path = _source_of(target)
        if path is None or not path.is_file() or path.stat().st_size > MAX_SOURCE_BYTES:
            return
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError, TargetError, ImportError):
        return  # the worker reports it as it finds it
    names = _bound_names(tree)
    if names is None or target.attr in names:
        return
    close = closest(target.attr, names)
    if close is not None:
        raise TargetError(no_attribute(target, close))


def load_attr(path: str) -> Any:
    """Resolve ``pkg.mod:attr`` for helpers such as a sampler factory."""
    target = parse(path)
    module = (
        _import_file(Path(target.location)) if target.is_file else _import_module(target.location)
    )
    return getattr(module, target.attr)
