"""Turn ``pkg.module:attr`` or ``path/to/file.py:attr`` into the objective callable, and tell
script targets (``train.py``, ``-m pkg.module``: run as ``python`` would) from objective ones.

Only workers call ``load``: the parent process never imports the user's module (it would run
module-level code and hide process-state effects). Every failure becomes a one-line
``TargetError`` naming the problem.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
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
        raise TargetError(f"{where} has no attribute {target.attr!r}") from None
    if not callable(objective):
        raise TargetError(f"{target} is not callable (it is a {type(objective).__name__})")
    return objective  # type: ignore[no-any-return]


def load_attr(path: str) -> Any:
    """Resolve ``pkg.mod:attr`` for helpers such as a sampler factory."""
    target = parse(path)
    module = (
        _import_file(Path(target.location)) if target.is_file else _import_module(target.location)
    )
    return getattr(module, target.attr)
