"""Script mode in the worker: run the user's script as ``python train.py ARGS`` would, and
record every Optuna study it creates or loads.

``Capture`` composes four hook groups, each in its own module, all in this process only:
the Optuna hooks (``script_hooks``: every study, sampler, ``optimize`` and ``ask``, into the
``script_registry``), the storage privatizer (``script_storages``: each replicate reads and
writes its own copy of the script's storage, the user's file is never written), the write
watcher (``script_writes``: files the script writes in the shared working folder) and the child
tripwire (``script_children``: a study made in another process makes the run a crash).

Each study is announced as the script makes it and each trial streams as the script tells it
(``optimize``'s through a callback, an ask/tell loop's through ``tell``). Once the script has
ended, every study's finished trials are read back from its own storage
(``study.get_trials``): those not streamed yet (``enqueue_trial``/``add_trial``, a resumed
storage's) follow, and the parent checks the whole stream against the study's own count,
states and a digest of every trial's fields.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from typing import Any

from repro_check.execution.protocol import ScriptSpec
from repro_check.execution.script_children import ChildTripwire
from repro_check.execution.script_hooks import OptunaHooks
from repro_check.execution.script_registry import StudyRegistry, read_base
from repro_check.execution.script_storages import StoragePrivatizer
from repro_check.execution.script_studies import CapReached, ScriptExit
from repro_check.execution.script_writes import WriteWatcher
from repro_check.execution.target import one_line
from repro_check.execution.userframes import add_user_root, last_user_line

__all__ = [
    "CapReached",
    "Capture",
    "ScriptExit",
    "finish",
    "outcome",
    "private_dir",
    "read_base",
    "run",
]


class Capture:
    """Script mode's hooks, by group, and the run notes they share.

    ``registry`` holds the studies; ``hooks`` (Optuna), ``storages`` (the privatizer),
    ``writes`` (the watcher) and ``children`` (the tripwire) are installed by ``install``."""

    def __init__(
        self,
        seed: int,
        seed_samplers: bool,
        trial_seed: Callable[[int], None] | None,
        cap: int | None,
        private_dir: str,
        keep_copies: bool = False,
        resumed: Mapping[str, int] | None = None,
    ) -> None:
        self.private_dir = private_dir
        self.notes: list[str] = []
        """The run's notes (private storages, racing ``optimize`` calls)."""
        self.writes = WriteWatcher(private_dir)
        self.children = ChildTripwire(private_dir)
        self.registry = StudyRegistry(
            seed,
            seed_samplers,
            cap,
            private_dir,
            self.children,
            lambda: self.writes.watching,
            resumed,
        )
        self.hooks = OptunaHooks(self.registry, self.notes, trial_seed)
        self.storages = StoragePrivatizer(
            private_dir, self.notes, lambda: self.writes.watching, keep_copies
        )

    @property
    def watching(self) -> bool:
        """The script still runs: its writes, storages and unpickled studies are its own
        (after it, the worker writes the check's own storage, which is not the script's
        doing)."""
        return self.writes.watching

    @watching.setter
    def watching(self, on: bool) -> None:
        self.writes.watching = on

    def install(self) -> None:
        """The process hooks now; Optuna's when the script imports it (now, if something
        already did): importing optuna here would load numpy before the script, which then
        could not set its thread variables first, as it can under ``python train.py``."""
        from repro_check.execution.controls import after_import

        self.writes.install()
        self.children.arm()
        after_import("optuna", self._hook_optuna)

    def _hook_optuna(self, optuna: Any) -> None:
        self.hooks.install(optuna)
        self.storages.install(optuna)


def finish() -> None:
    """What ``python`` does after the script's last line, before it exits: join the
    non-daemon threads (after the hooks that wake them, such as an executor left open's), then
    run the ``atexit`` handlers. Studies the script optimizes there are part of what it runs."""
    import atexit

    hooks = getattr(threading, "_threading_atexits", None)
    if isinstance(hooks, list):
        for call in reversed(hooks):
            with contextlib.suppress(Exception):  # as `python` would, it carries on
                call()
        hooks.clear()
    _join_threads()
    atexit._run_exitfuncs()
    _join_threads()


def _join_threads() -> None:
    current = threading.current_thread()
    while True:
        alive = [t for t in threading.enumerate() if t is not current and not t.daemon]
        if not alive:
            return
        for thread in alive:
            thread.join()


def run(spec: ScriptSpec) -> None:
    """Run the script (``path`` or ``module``) with ``args``, as ``python`` would: a fresh
    ``__main__``, ``sys.argv``, ``sys.path[0]`` the script's folder (the current folder for
    ``-m``); a notebook's code cells as a fresh kernel runs them (``execution.notebook``)."""
    args = list(spec.args)
    path = spec.path
    if path:
        if not os.path.isfile(path):
            from repro_check.errors import TargetError

            raise TargetError(f"no such file: {path}")
        if path.endswith(".ipynb"):
            from repro_check.execution import notebook

            notebook.run(path, args, spec.parameters)
            return
        sys.argv = [path, *args]
        folder = os.path.dirname(os.path.abspath(path))
        sys.path.insert(0, folder)
        add_user_root(folder)
        _run_file(path)
    else:
        module = str(spec.module)
        sys.argv = [module, *args]
        sys.path.insert(0, os.getcwd())
        problem = _missing_module(module)
        if problem is not None:
            from repro_check.errors import TargetError

            raise TargetError(problem)
        _own_package(module)
        runpy.run_module(module, run_name="__main__", alter_sys=True)


def _run_file(path: str) -> None:
    """Run the file as ``python path`` runs it: a fresh ``__main__`` whose ``__file__`` (and
    code, so tracebacks) name the absolute path, ``__package__`` and ``__spec__`` None, and a
    source loader (``runpy.run_path`` would keep the path as typed and ``__package__`` "")."""
    import builtins
    import importlib.machinery
    import types

    full = os.path.abspath(path)
    with open(full, "rb") as file:
        source = file.read()
    code = compile(source, full, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=full,
        __cached__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", full),
        __package__=None,
        __spec__=None,
        __builtins__=builtins,
    )
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _missing_module(module: str) -> str | None:
    """Why ``-m module`` cannot run at all (no such module), or None."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return f"no such module: {module!r}"
        return None  # a package's __init__ imports something missing: the script's error
    except (ImportError, ValueError):
        return None
    if found is None:
        return f"no such module: {module!r}"
    if found.submodule_search_locations is not None:
        main = importlib.util.find_spec(f"{module}.__main__")
        if main is None:
            return f"{module!r} is a package without __main__: it cannot be run with -m"
    return None


def _own_package(module: str) -> None:
    """The folder of an ``-m`` module is the user's code, wherever it is installed."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return  # runpy says what is wrong, in its own words
    if found is not None and found.origin:
        add_user_root(os.path.dirname(found.origin))


def outcome(exc: BaseException | None, capture: Capture) -> str | None:
    """Why the script's end makes the run a crash (one line), or None when it ended well: it
    returned, hit the ``--trials`` cap in an ask/tell loop, or called ``sys.exit(0)`` with no
    study running."""
    registry, hooks = capture.registry, capture.hooks
    changed = (
        registry.unseen
        or capture.storages.changed()
        or capture.children.reason()
        or registry.reloaded()
        or registry.deleted()
    )
    if changed is not None:
        return changed
    if hooks.optimizing:
        return (
            "the script ended while study.optimize still ran in a daemon thread: `python` "
            "would kill it at exit, so its trials depend on timing"
        )
    if hooks.exit_in_optimize and not isinstance(exc, SystemExit):
        running = registry.running_trial()
        during = f" during {running}" if running else ""
        return (
            f"sys.exit({hooks.exit_code!r}) was called inside study.optimize{during} and did "
            "not end the script (it ended a thread, or the script caught it): the study "
            "stopped before it finished"
        )
    if exc is None or isinstance(exc, CapReached):
        return None
    if isinstance(exc, SystemExit):
        code = exc.code
        if code not in (None, 0):
            return f"the script called sys.exit({code!r})"
        running = registry.running_trial()
        if hooks.exit_in_optimize or running is not None:
            during = f" during {running}" if running else " inside study.optimize"
            return f"the script called sys.exit({code!r}){during}, before its study finished"
        return None
    where = last_user_line(exc)
    return f"the script raised {one_line(exc)}" + (f" at {where}" if where else "")


def private_dir() -> str:
    return tempfile.mkdtemp(prefix="repro-check-script-")
