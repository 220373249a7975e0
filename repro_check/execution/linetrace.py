"""The line tracer ``diagnose`` runs when the objective gives two fresh processes different
values at the same params: each line the user's code runs (their files only) is recorded
with a digest of its frame's numeric, string, array and tensor locals, so the parent can find
the first line after which the two processes hold different values (``first_split``).

Bounded: at most ``MAX_EVENTS`` line events, ``MAX_LOCALS`` locals each, ``MAX_SECONDS`` of
tracing; past a bound the trace stops (and says so). Never active in ``run``.
"""

from __future__ import annotations

import hashlib
import linecache
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from repro_check.execution.userframes import is_user_file, shown_path

MAX_EVENTS = 5_000
MAX_LOCALS = 12
MAX_SECONDS = 30.0
MAX_SHOWN = 60


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def digest(value: Any) -> str | None:
    """A short, exact fingerprint of a number, string, array or tensor (None: not traced)."""
    if isinstance(value, bool | int):
        return f"i:{value}" if abs(value) < 1 << 64 else f"i#{_hash(str(value).encode())}"
    if isinstance(value, float):
        return f"f:{value.hex()}"
    if isinstance(value, str):
        return f"s:{_hash(value.encode('utf-8', 'backslashreplace'))}"
    kind = type(value).__module__.split(".")[0]
    try:
        if kind == "numpy" and hasattr(value, "tobytes") and hasattr(value, "dtype"):
            meta = f"{value.dtype}{getattr(value, 'shape', ())}".encode()
            return f"a:{_hash(meta + value.tobytes())}"
        if kind == "torch" and hasattr(value, "detach"):
            array = value.detach().cpu().contiguous().numpy()
            return f"t:{_hash(f'{array.dtype}{array.shape}'.encode() + array.tobytes())}"
    except Exception:  # an exotic array type: not traced
        return None
    if isinstance(value, list | tuple) and len(value) <= 1000:
        parts = [digest(v) for v in value]
        if all(p is not None for p in parts):
            return f"l:{_hash(repr(parts).encode())}"
    return None


def _shown(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


class LineTrace:
    """``sys.settrace`` restricted to the user's files; ``events`` once ``stop`` is called:
    [file, line, {local: [digest, shown]}] per line event."""

    def __init__(self) -> None:
        self.events: list[list[Any]] = []
        self.truncated: str | None = None
        self._deadline = 0.0

    def _locals(self, frame: FrameType) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, value in sorted(frame.f_locals.items()):
            if len(found) >= MAX_LOCALS:
                break
            fingerprint = digest(value)
            if fingerprint is not None:
                found[name] = [fingerprint, _shown(value)]
        return found

    def _local_trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event in ("line", "return") and self.truncated is None:
            if len(self.events) >= MAX_EVENTS:
                self.truncated = f"the trace stopped after {MAX_EVENTS} lines"
            elif time.monotonic() > self._deadline:
                self.truncated = f"the trace stopped after {MAX_SECONDS:g} s"
            else:
                file = shown_path(frame.f_code.co_filename)
                self.events.append([file, frame.f_lineno, self._locals(frame)])
        return self._local_trace

    def _global_trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and is_user_file(frame.f_code.co_filename):
            return self._local_trace
        return None

    def start(self) -> None:
        self._deadline = time.monotonic() + MAX_SECONDS
        sys.settrace(self._global_trace)

    def stop(self) -> None:
        sys.settrace(None)


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
