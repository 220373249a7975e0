"""The line tracer ``diagnose`` runs when the objective gives two fresh processes different
values at the same params: each line the user's code runs (their files only) is recorded
with a digest of its frame's numeric, string, array and tensor locals, so the parent can find
the first line after which the two processes hold different values (``first_split``).

Two backends, one output: ``sys.monitoring`` LINE events on Python 3.12+ (a free tool id;
code outside the user's files is switched off with ``DISABLE`` at its first event, so library
code runs at full speed), ``sys.settrace`` on 3.11 (or when every tool id is taken). Either
traces only the thread that started it.

Bounded: at most ``MAX_EVENTS`` line events, ``MAX_LOCALS`` locals each, ``MAX_SECONDS`` of
tracing, ``MAX_BYTES`` of array, tensor and string data digested; past a bound the trace
stops (the objective runs on untraced) and ``truncated`` says which bound it met. A digest
or a local that cannot be read never reaches the objective: the trace stops instead. Never
active in ``run``.
"""

from __future__ import annotations

import hashlib
import linecache
import reprlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

from repro_check.execution.userframes import is_user_file, shown_path

MAX_EVENTS = 5_000
MAX_LOCALS = 12
MAX_SECONDS = 30.0
MAX_BYTES = 256 << 20
"""Array, tensor and string bytes digested in one trace (a large array held across a loop is
hashed at every line)."""
MAX_ITEMS = 1_000
"""The most elements of a list or tuple (nested ones counted together) digested as one value."""
MAX_SHOWN = 60

SETTRACE = "settrace"
MONITORING = "monitoring"
TOOL_NAME = "repro-check line trace"
_MONITORING: Any = getattr(sys, "monitoring", None)
"""``sys.monitoring`` (Python 3.12+), else None."""


def default_backend() -> str:
    """``monitoring`` on Python 3.12+, else ``settrace``."""
    return MONITORING if _MONITORING is not None else SETTRACE


def _hash(data: Any) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def nbytes(value: Any) -> int:
    """The bytes ``digest`` hashes for ``value`` (about: 8 per list item), without reading it."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        return 8 * len(value)
    kind = type(value).__module__.split(".")[0]
    try:
        if kind == "numpy":
            return int(getattr(value, "nbytes", 0))
        if kind == "torch" and hasattr(value, "element_size"):
            return int(value.numel()) * int(value.element_size())
    except Exception:
        return 0
    return 0


def digest(value: Any) -> str | None:
    """A short, exact fingerprint of a number, string, array or tensor (None: not traced).
    Arrays of Python objects are not traced: their bytes are addresses, which differ in every
    process whatever the values."""
    return _digest(value, [MAX_ITEMS])


def _digest(value: Any, items: list[int]) -> str | None:
    if isinstance(value, bool | int):
        if abs(value) < 1 << 64:
            return f"i:{value}"
        return f"i#{_hash(value.to_bytes(value.bit_length() // 8 + 1, 'little', signed=True))}"
    if isinstance(value, float):
        return f"f:{value.hex()}"
    if isinstance(value, str):
        return f"s:{_hash(value.encode('utf-8', 'backslashreplace'))}"
    kind = type(value).__module__.split(".")[0]
    try:
        if kind == "numpy" and hasattr(value, "tobytes") and hasattr(value, "dtype"):
            if value.dtype.hasobject:
                return None
            meta = f"{value.dtype}{getattr(value, 'shape', ())}".encode()
            return f"a:{_hash(meta + value.tobytes())}"
        if kind == "torch" and hasattr(value, "detach"):
            array = value.detach().cpu().contiguous().numpy()
            return f"t:{_hash(f'{array.dtype}{array.shape}'.encode() + array.tobytes())}"
    except Exception:  # an exotic array type: not traced
        return None
    if isinstance(value, list | tuple) and len(value) <= items[0]:
        items[0] -= len(value)
        parts = [_digest(v, items) for v in value]
        if all(p is not None for p in parts):
            return f"l:{_hash(repr(parts).encode())}"
    return None


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple = 2, 8, 8
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_SHOWN


def _shown(value: Any) -> str:
    try:
        text = repr(value) if isinstance(value, float) else _REPR.repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


class _Halt(Exception):
    """A bound was met while reading a frame's locals."""


class LineTrace:
    """The user's lines, traced; ``events`` once ``stop`` is called: [file, line, {local:
    [digest, shown]}] per line event (and per return, with the locals as the frame leaves).

    ``traced`` says which files are the user's (``is_user_file``); ``backend`` is
    ``monitoring`` or ``settrace`` (default: ``default_backend()``). ``backend`` is the one
    that ran once ``start`` is called (``settrace`` when no ``sys.monitoring`` tool id is
    free)."""

    def __init__(
        self, traced: Callable[[str], bool] = is_user_file, backend: str | None = None
    ) -> None:
        self.events: list[list[Any]] = []
        self.truncated: str | None = None
        self.backend = backend or default_backend()
        self._traced = traced
        self._deadline = 0.0
        self._bytes = 0
        self._tool: int | None = None
        self._thread = 0
        self._halted = False
        self.started = False
        """``start`` was called (the traced call ran)."""
        self._previous: Any = None
        """The trace function set before ours (settrace), restored by ``stop``."""
        self._outer: tuple[FrameType, ...] = ()
        """The frames running when the trace started (monitoring sees their lines too; as
        settrace, the trace follows only calls made after it started)."""
        self._outer_ids: frozenset[int] = frozenset()

    # -- recording (both backends) -------------------------------------------------------

    def _stop_at(self, reason: str) -> None:
        if self.truncated is None:
            self.truncated = reason
        self._halted = True
        if self.backend == SETTRACE:
            sys.settrace(None)
        elif self._tool is not None:
            _MONITORING.set_events(self._tool, 0)

    def _locals(self, frame: FrameType) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, value in sorted(frame.f_locals.items()):
            if len(found) >= MAX_LOCALS:
                break
            if name.startswith("__"):  # a module frame's __file__, __name__...
                continue
            size = nbytes(value)
            if self._bytes + size > MAX_BYTES:
                raise _Halt(f"the trace stopped after digesting {MAX_BYTES >> 20} MiB of locals")
            self._bytes += size
            fingerprint = digest(value)
            if fingerprint is not None:
                found[name] = [fingerprint, _shown(value)]
        return found

    def _record(self, frame: FrameType) -> None:
        """One event for ``frame`` (at its current line), unless a bound is met: then the
        trace stops and says why."""
        if self._halted:
            return
        if len(self.events) >= MAX_EVENTS:
            self._stop_at(f"the trace stopped after {MAX_EVENTS} lines")
        elif time.monotonic() > self._deadline:
            self._stop_at(f"the trace stopped after {MAX_SECONDS:g} s")
        else:
            try:
                found = self._locals(frame)
            except _Halt as halt:
                self._stop_at(str(halt))
                return
            except Exception as exc:  # a local whose reading raises: stop, never raise
                self._stop_at(f"the trace stopped: reading a local raised {type(exc).__name__}")
                return
            file = shown_path(frame.f_code.co_filename)
            self.events.append([file, frame.f_lineno, found])

    # -- sys.settrace (Python 3.11) ------------------------------------------------------

    def _local_trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if self._halted:
            return None
        if event in ("line", "return"):
            self._record(frame)
        return self._local_trace if not self._halted else None

    def _global_trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and not self._halted and self._traced(frame.f_code.co_filename):
            return self._local_trace
        return None

    # -- sys.monitoring (Python 3.12+) ---------------------------------------------------

    def _event(self) -> None:
        """A monitoring event in a user file: recorded when it is this thread's, in a frame
        called after the trace started."""
        if threading.get_ident() == self._thread:
            frame = sys._getframe(2)  # _event <- the callback <- the user's frame
            if id(frame) not in self._outer_ids:
                self._record(frame)

    def _on_line(self, code: CodeType, line: int) -> Any:
        if not self._traced(code.co_filename):
            return _MONITORING.DISABLE  # this line is not the user's: never again
        self._event()
        return None

    def _on_return(self, code: CodeType, offset: int, value: Any) -> Any:
        if not self._traced(code.co_filename):
            return _MONITORING.DISABLE
        self._event()
        return None

    def _on_unwind(self, code: CodeType, offset: int, exc: BaseException) -> None:
        # as settrace's "return" when an exception leaves the frame (this event cannot be
        # disabled per code object)
        if self._traced(code.co_filename):
            self._event()

    def _start_monitoring(self) -> bool:
        monitoring = _MONITORING
        if monitoring is None:
            return False
        for tool in (3, 4, 2, 1, 0, 5):
            if monitoring.get_tool(tool) is not None:
                continue
            try:
                monitoring.use_tool_id(tool, TOOL_NAME)
            except ValueError:
                continue
            self._tool = tool
            events = monitoring.events
            monitoring.register_callback(tool, events.LINE, self._on_line)
            monitoring.register_callback(tool, events.PY_RETURN, self._on_return)
            monitoring.register_callback(tool, events.PY_YIELD, self._on_return)
            monitoring.register_callback(tool, events.PY_UNWIND, self._on_unwind)
            monitoring.set_events(
                tool, events.LINE | events.PY_RETURN | events.PY_YIELD | events.PY_UNWIND
            )
            return True
        return False

    def _stop_monitoring(self) -> None:
        tool, self._tool = self._tool, None
        if tool is None:
            return
        monitoring = _MONITORING
        monitoring.set_events(tool, 0)
        for event in ("LINE", "PY_RETURN", "PY_YIELD", "PY_UNWIND"):
            monitoring.register_callback(tool, getattr(monitoring.events, event), None)
        monitoring.free_tool_id(tool)

    # -- control -------------------------------------------------------------------------

    def start(self, follow: FrameType | None = None) -> None:
        """Trace every call made from now on in this thread (and ``follow``, a frame already
        running: the script's loop between ``ask`` and ``tell``), until ``stop``."""
        self.started = True
        self._deadline = time.monotonic() + MAX_SECONDS
        self._thread = threading.get_ident()
        outer = []
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame is not follow:
                outer.append(frame)
            frame = frame.f_back
        self._outer = tuple(outer)
        self._outer_ids = frozenset(id(f) for f in outer)
        if self.backend == MONITORING and self._start_monitoring():
            return
        self.backend = SETTRACE
        self._previous = sys.gettrace()
        sys.settrace(self._global_trace)
        if follow is not None and self._traced(follow.f_code.co_filename):
            follow.f_trace = self._local_trace

    def stop(self) -> None:
        self._halted = True
        if self.backend == MONITORING:
            self._stop_monitoring()
        elif self.started:
            sys.settrace(self._previous)
            self._previous = None
        self._outer, self._outer_ids = (), frozenset()


class TorchOps:
    """Every torch op the traced trial runs, with a digest of its output tensors and the user
    line that called it (a ``TorchDispatchMode``): the first op whose output differs between
    two processes names a nondeterministic kernel even where deterministic mode raises
    nothing. Only when the objective has imported torch."""

    def __init__(self) -> None:
        self.ops: list[list[Any]] = []
        self._mode: Any = None

    def start(self) -> None:
        torch = sys.modules.get("torch")
        if torch is None:
            return
        try:
            from torch.utils._python_dispatch import TorchDispatchMode
        except ImportError:
            return
        ops = self.ops

        class Record(TorchDispatchMode):  # type: ignore[no-untyped-call]
            def __torch_dispatch__(  # type: ignore[no-untyped-def]
                self, func, types, args=(), kwargs=None
            ):
                out = func(*args, **(kwargs or {}))
                if len(ops) < MAX_EVENTS:
                    from repro_check.execution.userframes import user_location

                    items = out if isinstance(out, list | tuple) else [out]
                    digests = [digest(item) or "" for item in items]
                    ops.append(
                        [str(func), user_location() or "", _hash("|".join(digests).encode())]
                    )
                return out

        self._mode = Record()  # type: ignore[no-untyped-call]
        self._mode.__enter__()

    def stop(self) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None


def first_op_split(a: list[list[Any]], b: list[list[Any]]) -> str | None:
    """``aten.randn.default at f.py:9``: the first op whose output differs, or None."""
    for oa, ob in zip(a, b, strict=False):
        if oa[0] != ob[0] or oa[2] != ob[2]:
            return f"{oa[0]} at {oa[1] or 'a line outside your code'}"
    return None


@dataclass(frozen=True)
class Split:
    """Where two traces first part: the line after which a local differs (or the paths do)."""

    file: str
    line: int
    source: str
    local: str | None
    """The local that differs; None when the two processes ran different lines."""
    values: tuple[str, str]
    op: str | None = None
    """The first torch op whose output differs (``aten.randn.generator at f.py:9``), if any."""

    def describe(self) -> str:
        where = f"{self.file}:{self.line}"
        torch = f" (the first torch op whose output differs: {self.op})" if self.op else ""
        if self.local is None:
            return f"{where}: the two processes run different lines after it{torch}"
        return f"{where}: {self.local} = {self.values[0]} vs {self.values[1]}{torch}"


def _source(file: str, line: int) -> str:
    return linecache.getline(file, line).strip()


def first_split(a: list[list[Any]], b: list[list[Any]]) -> Split | None:
    """The first line event after which the two traces differ. A local first seen different
    at event i was set by the line of event i-1 (the line run just before, in that frame)."""
    previous: list[Any] | None = None
    for ea, eb in zip(a, b, strict=False):
        if (ea[0], ea[1]) != (eb[0], eb[1]):
            if previous is None:
                return None
            file, line = previous[0], previous[1]
            return Split(file, line, _source(file, line), None, ("", ""))
        la, lb = ea[2], eb[2]
        for name in sorted(set(la) | set(lb)):
            da, db = la.get(name), lb.get(name)
            if da is not None and db is not None and da[0] != db[0]:
                at = previous if previous is not None and previous[0] == ea[0] else ea
                file, line = at[0], at[1]
                return Split(file, line, _source(file, line), name, (da[1], db[1]))
        previous = ea
    return None
