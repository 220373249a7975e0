"""The entropy audit's view of randomness drawn inside libraries: each ``rng_hooks`` event,
from the script's process or from a Python process it started (joblib's loky workers), is
attributed to a line of the user's code, with the callee and the parameter left unset.

An event becomes a site of one of these kinds:
- ``global`` (``GLOBAL``): the user's own line drew from the global ``random``/NumPy stream
  (``np.random.normal()``); seeding the stream in this process makes it reproducible.
- ``library`` (``LIBRARY``): a library the user called drew from NumPy's global stream
  because a seed was left unset. The line is where the user built the object that drew
  (``RandomForestClassifier(...)`` whose ``random_state`` is None; a clone keeps its
  original's line), or where the user called the function that took the seed
  (``train_test_split(...)`` without ``random_state``). Its source reads
  ``RandomForestClassifier() without random_state`` (``library_source``), and ends with
  ``WORKER`` when it drew in a worker process, where seeding the script's own stream does not
  reach (the estimator was cloned and pickled there; the line is where the script built it).
- ``random`` (the audit's ``CERTAIN``): the user's own line drew from a worker process's
  global stream, which every process seeds from the OS.
A draw no user line can be blamed for (a library's own) is not a site.

A child's events arrive through a file in a private folder, which the child's
``sitecustomize`` (on its ``PYTHONPATH``) appends to; the audit reads it at each trial's end.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import linecache
import os
import re
import shutil
import sysconfig
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from repro_check.execution import rng_hooks
from repro_check.execution.script_children import CHAIN_SITECUSTOMIZE
from repro_check.execution.userframes import is_user_file

GLOBAL = "global"
"""The user's own line drew from a global stream (in the script's own process)."""
LIBRARY = "library"
"""A library drew from NumPy's global stream because the user's line left its seed unset."""
CERTAIN = "random"
"""The audit's kind for a source that differs in every process."""
WORKER = " in a worker process"
"""A site's source ends with this when the draw happened in a process the script started."""
MAX_CHILD_BYTES = 4_000_000
"""The most bytes of child events read (each child also stops at ``rng_hooks.MAX_EVENTS``)."""

_SOURCE = re.compile(
    r"^([A-Za-z_][A-Za-z0-9_]*)\(\) without ([A-Za-z_][A-Za-z0-9_]*)( in a worker process)?$"
)

_CHILD_SITE = (
    '''"""repro-check's entropy audit (diagnose only): a Python process the checked
code started. Its draws from the global random streams, and scikit-learn's
check_random_state(None), are reported to the file the environment names (the audit
attributes them to the user's lines).
Then the sitecustomize this one shadows, if any, runs."""
import os
import sys


def _library_rng():
    path = os.environ.get("REPRO_CHECK_LIBRARY_RNG")
    if not path:
        return
    try:
        import importlib.util

        here = os.path.dirname(os.path.abspath(__file__))
        hooks = os.path.join(here, "repro-check-rng-hooks.py")
        spec = importlib.util.spec_from_file_location("_repro_check_rng_hooks", hooks)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.install_in_child(path)
    except Exception:
        pass


'''
    + CHAIN_SITECUSTOMIZE
    + """


_library_rng()
_chain()
"""
)


def library_source(callee: str, keyword: str, worker: bool = False) -> str:
    """A library site's source: ``RandomForestClassifier() without random_state``."""
    return f"{callee}() without {keyword}" + (WORKER if worker else "")


def parse_library_source(source: str) -> tuple[str, str, bool] | None:
    """(callee, keyword, drew in a worker process) of a library site's source, else None."""
    match = _SOURCE.match(source)
    if match is None:
        return None
    return match.group(1), match.group(2), match.group(3) is not None


@dataclass(frozen=True)
class Attributed:
    """One event as a site of the user's code."""

    source: str
    kind: str
    file: str
    line: int


@cache
def _stdlib_roots() -> tuple[tuple[str, ...], tuple[str, ...]]:
    paths = sysconfig.get_paths()
    stdlib = tuple(os.path.realpath(paths[k]) + os.sep for k in ("stdlib", "platstdlib"))
    packages = tuple(os.path.realpath(paths[k]) + os.sep for k in ("purelib", "platlib"))
    return stdlib, packages


@cache
def _is_stdlib(filename: str) -> bool:
    if filename.startswith("<"):
        return filename.startswith("<frozen")
    real = os.path.realpath(filename)
    stdlib, packages = _stdlib_roots()
    return real.startswith(stdlib) and not real.startswith(packages)


def _called(name: str, file: str, line: int) -> bool:
    """Whether the user's line calls ``name`` (so that the seed can be passed there)."""
    text = linecache.getline(file, line)
    return re.search(rf"\b{re.escape(name)}\s*\(", text) is not None


def attribute(
    event: Mapping[str, Any],
    worker: bool = False,
    unseeded: Mapping[str, Sequence[Sequence[Any]]] | None = None,
) -> list[Attributed]:
    """The user's lines an event (``rng_hooks``) is blamed on; ``worker``: it came from a
    process the script started; ``unseeded``: where the script's own process built each class
    without a seed (``LibraryHooks.unseeded``), for an object that drew in a worker. In
    order: the user's own line drew; the object that drew was built at the user's line; the
    user's line called a function that took a seed and got none; (a worker) the lines where
    the script built that class without a seed."""
    draw, stack = str(event.get("draw", "")), event.get("stack") or []
    first = next((i for i, f in enumerate(stack) if not _is_stdlib(str(f[0]))), None)
    if first is None:
        return []
    file, line = str(stack[first][0]), int(stack[first][1])
    if is_user_file(file):
        if worker:
            return [Attributed(draw + WORKER, CERTAIN, file, line)]
        return [Attributed(draw, GLOBAL, file, line)]
    owner = event.get("owner") or {}
    return (
        _built_by_user(owner, worker)
        or _called_without_seed(stack, first, worker)
        or (_built_in_script(owner, unseeded or {}) if worker else [])
    )


def _built_by_user(owner: Mapping[str, Any], worker: bool) -> list[Attributed]:
    built = owner.get("built") or []
    if not built or not is_user_file(str(built[0][0])):
        return []
    source = library_source(str(owner["cls"]), str(owner["param"]), worker)
    return [Attributed(source, LIBRARY, str(built[0][0]), int(built[0][1]))]


def _called_without_seed(stack: Sequence[Any], first: int, worker: bool) -> list[Attributed]:
    """The outermost library frame below the user's line that took a seed parameter left
    None, when the user's line calls it by name."""
    user = next((i for i in range(first, len(stack)) if is_user_file(str(stack[i][0]))), None)
    if user is None:
        return []
    file, line = str(stack[user][0]), int(stack[user][1])
    for frame in reversed(stack[first:user]):
        if frame[3] and _called(str(frame[2]), file, line):
            source = library_source(str(frame[2]), str(frame[3][0]), worker)
            return [Attributed(source, LIBRARY, file, line)]
    return []


def _built_in_script(
    owner: Mapping[str, Any], unseeded: Mapping[str, Sequence[Sequence[Any]]]
) -> list[Attributed]:
    """An object that drew in a worker, which got it cloned and pickled: the lines where the
    script built its class without a seed."""
    if not owner:
        return []
    source = library_source(str(owner["cls"]), str(owner["param"]), True)
    places = [p for p in unseeded.get(str(owner["cls"]), ()) if is_user_file(str(p[0]))]
    return [Attributed(source, LIBRARY, str(p[0]), int(p[1])) for p in places]


class LibraryAudit:
    """The hooks of the script's own process, and the file its child processes report to."""

    def __init__(self, add: Callable[[Attributed, bool], None]) -> None:
        self.add = add
        """Records a site (``Audit.add_site``); the flag: it came from a child (drained)."""
        self.hooks = rng_hooks.LibraryHooks(self._event, own_line=is_user_file)
        self.folder: str | None = None
        self.events: str | None = None
        self._read = 0

    def install(self) -> None:
        self.hooks.install()
        with contextlib.suppress(OSError):
            self._arm_children()

    def _event(self, event: dict[str, Any]) -> None:
        for site in attribute(event):
            self.add(site, False)

    def _arm_children(self) -> None:
        """A ``sitecustomize`` on the ``PYTHONPATH`` the script's children inherit: it runs
        a copy of ``rng_hooks`` there, whose events go to ``self.events``."""
        folder = tempfile.mkdtemp(prefix="repro-check-audit-")
        atexit.register(shutil.rmtree, folder, True)
        site = os.path.join(folder, "site")
        os.makedirs(site)
        shutil.copyfile(rng_hooks.__file__, os.path.join(site, "repro-check-rng-hooks.py"))
        with open(os.path.join(site, "sitecustomize.py"), "w", encoding="utf-8") as file:
            file.write(_CHILD_SITE)
        self.folder, self.events = folder, os.path.join(folder, "events.jsonl")
        paths = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = site + (os.pathsep + paths if paths else "")
        os.environ[rng_hooks.CHILD_ENV] = self.events

    def next_trial(self, number: int | None) -> None:
        """The running trial changes to ``number``: what the children drew so far belongs
        to the one that ran, and every process reports a draw again in the next
        (``rng_hooks.child_epoch``)."""
        self.drain()
        self.hooks.epoch = number
        if self.events is not None:
            with contextlib.suppress(OSError), open(self.events + ".epoch", "ab") as file:
                file.write(b".")

    def drain(self) -> None:
        """Read what the children reported since the last drain (whole lines only)."""
        if self.events is None or self._read >= MAX_CHILD_BYTES:
            return
        try:
            with open(self.events, "rb") as file:
                file.seek(self._read)
                data = file.read(MAX_CHILD_BYTES - self._read)
        except OSError:
            return
        end = data.rfind(b"\n") + 1
        self._read += end
        for raw in data[:end].splitlines():
            try:
                event = json.loads(raw)
            except (ValueError, RecursionError):  # a child's line is untrusted input
                continue
            if not isinstance(event, dict):
                continue
            try:  # a child's line is read as untrusted input: a malformed one is skipped
                sites = attribute(event, worker=True, unseeded=self.hooks.unseeded)
            except (TypeError, ValueError, KeyError, IndexError, AttributeError):
                continue
            for site in sites:
                self.add(site, True)

    def close(self) -> None:
        self.drain()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = self.events = None
