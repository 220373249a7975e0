"""The ``run`` check as a Python call: ``repro_check.check(objective, runs=3, trials=20, ...)``.

It is the same engine as the command line (``build_plan`` validates, ``run_check`` runs each
replicate in a fresh worker process), so it raises the same errors and returns the same
``RunReport``. The objective may be a target string or a module-level function; a function is
turned back into a target the workers can import, because this process never hands them code.
"""

from __future__ import annotations

import functools
import importlib.machinery
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from repro_check.checks.run import run_check
from repro_check.errors import ConfigError, TargetError
from repro_check.execution.target import check_attribute
from repro_check.plan.config import build_plan
from repro_check.plan.inert import InertSettingError, check_settings_apply
from repro_check.plan.settings import PLAN_KEYS, CheckPlan
from repro_check.plan.targets import is_script
from repro_check.results.report import RunReport
from repro_check.vocab import Pruner, Sampler

Objective = str | Callable[..., Any]

__all__ = ["check", "resolve_target"]


def check(
    objective: Objective,
    *,
    runs: int = 3,
    trials: int | None = None,
    seed: int = 0,
    directions: str | Sequence[str] = ("minimize",),
    sampler: str = Sampler.TPE,
    pruner: str = Pruner.NONE,
    n_jobs: int = 1,
    atol: float = 0.0,
    rtol: float = 0.0,
    device: str = "auto",
    gpus: str | Sequence[int] | None = None,
    threads: int = 1,
    workers: int | None = None,
    timeout: float | None = None,
    sampler_kwargs: Mapping[str, Any] | None = None,
    pruner_kwargs: Mapping[str, Any] | None = None,
    controls: str | Sequence[str] | None = None,
    direction: str | Sequence[str] | None = None,
    resume_at: int | None = None,
    args: Sequence[str] | None = None,
) -> RunReport:
    """Run the study ``runs`` times, each in a fresh process with the same seed, and compare.

    ``objective`` is ``"pkg.module:attr"``, ``"path/to/file.py:attr"``, or a module-level
    function (see ``resolve_target``); a script (``"train.py"``, ``"-m pkg.mod"``) is checked as
    ``repro-check run train.py -- ARGS`` checks it, with only the arguments given here as its
    flags (as written, its own n_trials, unless ``controls=`` or ``trials=`` say otherwise) and
    ``args=`` (a list of strings) as the script's own command-line arguments. The
    keyword arguments mean what the ``repro-check run`` flags of the same name mean
    (``direction=`` is an alias of ``directions=``, as the flag is ``--direction``);
    ``trials`` defaults to 20 (a script: its own n_trials); ``controls``
    is ``"all"`` (the default for an objective), ``"none"`` (for a script) or control names;
    ``resume_at=K`` (1 <= K < ``trials``; a script needs ``trials=``) also stops each
    replicate after K trials and resumes it in a fresh process, and ``report.resume`` says
    whether that changed the study (the report is then not reproducible when it did).
    They are the whole configuration (defaults < arguments): ``[tool.repro-check]`` in any
    pyproject.toml is not read, so a check never fails fast, never uses an Optuna storage and
    never writes a file because of a project's config (a ``resume_at`` check keeps its
    resumed studies in private SQLite files in a temporary folder, removed afterwards).

    Returns the report whatever the verdict (``report.reproducible``, ``report.verdict``,
    ``report.comparison.divergence``). Raises ``ConfigError`` for a bad setting and
    ``TargetError`` when the objective cannot be resolved or a worker cannot load it.
    """
    if _in_worker():
        raise TargetError(
            "repro_check.check() was called while a repro-check worker imported the objective's "
            'module: put the call under `if __name__ == "__main__":`'
        )
    target = resolve_target(objective)
    if direction is not None:  # the CLI's flag is --direction: accept its name too
        if directions != ("minimize",):
            raise ConfigError("give direction= or directions=, not both")
        directions = direction
    if isinstance(directions, str):
        directions = (directions,)
    if not directions:
        raise ConfigError("directions must be a direction or a list of them, got ()")
    if controls is not None and not isinstance(controls, str):
        controls = list(controls) or "none"  # an empty list means every control off
    if isinstance(args, str):  # "--seed 42" would reach the script as one argument
        raise ConfigError(f"args= takes a list of strings, e.g. {args.split()!r}, got a string")
    args = list(args) if args is not None else None

    directions = list(directions)
    sampler_kwargs = dict(sampler_kwargs or {})
    pruner_kwargs = dict(pruner_kwargs or {})
    arguments = locals()
    flags: dict[str, Any] = {key: arguments[key] for key in PLAN_KEYS if key in arguments}
    # trials and controls left out (None) take the command's defaults: 20 trials and every
    # control for an objective; for a script, its own n_trials and the script as written
    flags = {
        key: value
        for key, value in flags.items()
        if value is not None or key not in ("trials", "controls")
    }
    if is_script(target):
        flags = _given(flags)
    plan = build_plan(target, flags, pyproject=False)
    _check_settings_apply(plan, seed, threads, args)
    check_attribute(plan.target)
    return run_check(plan)


def _check_settings_apply(
    plan: CheckPlan, seed: int, threads: int, args: Sequence[str] | None
) -> None:
    """``seed=``/``threads=`` changed from their defaults while no control reads them are
    refused (``plan.inert``), with the ``args=`` that would pass them to a script instead."""
    given = {"seed": "seed=", "threads": "threads="}
    changed = {"seed": seed != 0, "threads": threads != 1}
    try:
        check_settings_apply(plan, {key: given[key] for key in given if changed[key]})
    except InertSettingError as exc:
        value = {"seed": seed, "threads": threads}[exc.setting]
        if exc.script is not None:
            passed = [*(args or []), f"--{exc.setting}", str(value)]
            advice = f"; to pass it to {exc.script}: args={passed!r}"
        elif exc.setting == "seed":
            advice = ": turn one on in controls=, or leave seed= out"
        else:
            advice = ""
        raise InertSettingError(exc.base, advice, exc.setting, exc.script) from None


def _given(flags: dict[str, Any]) -> dict[str, Any]:
    """A script's check takes only the arguments the caller changed, as the CLI takes only
    the flags given: the script builds its own study (a ``directions=`` or ``sampler=`` given
    is refused, the defaults are not "given"), runs as written unless ``controls=`` says
    otherwise, and its own ``n_trials`` stand unless ``trials=`` caps them."""
    defaults = {
        name: param.default
        for name, param in inspect.signature(check).parameters.items()
        if param.default is not inspect.Parameter.empty
    }
    # as check() normalises them before this
    defaults.update(directions=list(defaults["directions"]), sampler_kwargs={}, pruner_kwargs={})
    return {key: value for key, value in flags.items() if value != defaults.get(key, _UNSET)}


_UNSET = object()


def resolve_target(objective: Objective) -> str:
    """The target string a worker imports ``objective`` from.

    A string is returned as given. A function becomes ``module:name`` when a worker (a fresh
    interpreter in the current folder, with this environment) imports that module from the same
    file; otherwise (a script run as ``__main__``, a pytest test module, a module loaded from a
    file path) it becomes ``/abs/path/file.py:name``. Lambdas, nested functions, methods and
    objects without a module name cannot be re-imported and raise ``TargetError``.
    """
    if isinstance(objective, str):
        return objective
    what = _describe(objective)
    if not callable(objective):
        raise TargetError(f"the objective must be a function or a target string, got {what}")
    if inspect.ismethod(objective):
        raise TargetError(
            f"{what} is a bound method: a worker cannot rebuild its instance; "
            "pass a module-level function"
        )
    name = getattr(objective, "__name__", None)
    qualname = getattr(objective, "__qualname__", None)
    module_name = getattr(objective, "__module__", None)
    if name == "<lambda>":
        raise TargetError(
            "the objective is a lambda: a worker can only import it by name; "
            "define it with `def` at module level"
        )
    if not isinstance(name, str) or not isinstance(qualname, str):
        raise TargetError(
            f"{what} has no name (a functools.partial or callable instance?): "
            "pass a module-level function"
        )
    if "<locals>" in qualname:
        raise TargetError(
            f"{qualname} is a closure or nested function: a worker can only import "
            "module-level functions; move it to module level"
        )
    if not isinstance(module_name, str) or not module_name:
        raise TargetError(f"{qualname} has no module: pass a function defined in a .py file")
    if "." in qualname or not qualname.isidentifier():
        raise TargetError(
            f"{module_name}.{qualname} is not a module-level function; "
            "pass a function defined at module level"
        )
    module = sys.modules.get(module_name)
    if module is not None and getattr(module, qualname, None) is not objective:
        raise TargetError(
            f"{module_name}.{qualname} is not the function passed (renamed or replaced "
            "after definition?): pass the module-level function itself"
        )
    source = _source_file(objective, module)
    import_name = _import_name(module_name, module)
    module_file = source or getattr(module, "__file__", None)  # a sourceless .pyc still imports
    if (
        import_name is not None
        and isinstance(module_file, str)
        and _worker_can_import(import_name, module_file)
    ):
        return f"{import_name}:{qualname}"
    if source is None:
        raise TargetError(
            f"{module_name}.{qualname} has no source file (defined in an interactive session "
            "or notebook?): move it to a .py file"
        )
    return f"{source}:{qualname}"


def _in_worker() -> bool:
    """True inside a repro-check worker (``python -m repro_check.execution.worker``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == "repro_check.execution.worker"


def _describe(obj: object) -> str:
    text = repr(obj)
    return text if len(text) <= 60 else f"a {type(obj).__name__}"


def _source_file(objective: object, module: ModuleType | None) -> str | None:
    """The defining .py file, absolute; the module's own file first (a decorator's wrapper
    has its code in the decorator's file, but its name in the decorated function's module)."""
    for obj in (module, objective):
        if obj is None:
            continue
        try:
            source = inspect.getsourcefile(obj)  # type: ignore[arg-type]
        except TypeError:  # a built-in
            source = None
        if source and os.path.isfile(source):
            return os.path.abspath(source)
    return None


def _import_name(module_name: str, module: ModuleType | None) -> str | None:
    """The name a worker could import the module by; ``__main__`` only when run with ``-m``."""
    if module_name != "__main__":
        return module_name
    spec = getattr(module, "__spec__", None)
    name = getattr(spec, "name", None)
    return name if isinstance(name, str) and name != "__main__" else None


def _worker_can_import(module_name: str, module_file: str) -> bool:
    """Whether ``import module_name`` in a fresh worker finds ``module_file``.

    Searched on the file system only: no package ``__init__`` runs in this process.
    """
    path: Sequence[str] | None = _worker_path(os.getcwd(), os.environ.get("PYTHONPATH", ""))
    parts = module_name.split(".")
    spec = None
    for depth in range(len(parts)):
        if path is None:
            return False
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: depth + 1]), list(path))
        if spec is None:
            return False
        locations = spec.submodule_search_locations
        path = list(locations) if locations is not None else None
    origin = spec.origin if spec is not None else None
    if not origin or not os.path.isfile(origin) or not os.path.isfile(module_file):
        return False
    return os.path.samefile(origin, module_file)


@functools.lru_cache(maxsize=8)
def _worker_path(cwd: str, pythonpath: str) -> tuple[str, ...]:
    """``sys.path`` of a fresh interpreter in ``cwd``, as a worker starts with.

    Not this process's ``sys.path``: pytest and scripts add folders to it at run time (a test
    module is often importable here by a name no worker can import). ``pythonpath`` is only the
    cache key; the probe inherits the whole environment.
    """
    probe = "import json, sys; print(json.dumps(sys.path))"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=60,
            check=True,
        )
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        found = []
    entries = [cwd]  # the worker runs with -m, and target.load puts the folder first anyway
    for entry in found:
        if isinstance(entry, str):
            full = str(Path(cwd, entry)) if entry else cwd
            if full not in entries:
                entries.append(full)
    return tuple(entries)
