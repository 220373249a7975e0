"""The worker's side of the stream, and what both of its modes (``worker``, ``script_job``)
need to fill it: the event writer, values bounded as a saved report holds them, the op torch
names as lacking a deterministic kernel, and the traced objective of the line-trace probe.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from typing import IO, Any

from repro_check.bounds import MAX_DEPTH, MAX_TEXT
from repro_check.execution.protocol import AuditReport, AuditSite, Event, Trace, event_line

_NO_DETERMINISTIC_PHRASE = " does not have a deterministic implementation"
_NO_DETERMINISTIC = re.compile(r"(\S{1,256})" + _NO_DETERMINISTIC_PHRASE)
"""Bounded: an unbounded run of non-spaces before the phrase backtracks quadratically, and a
failing trial's 300,000-character message then took minutes to search."""


def named_op(text: str) -> str | None:
    """The op torch's "X does not have a deterministic implementation" names, if any."""
    if _NO_DETERMINISTIC_PHRASE not in text:
        return None
    match = _NO_DETERMINISTIC.search(text)
    return match.group(1) if match else None


class Stream:
    """Thread-safe JSON-lines writer (``n_jobs > 1`` reports trials from several threads).

    Every line carries the job's nonce and the writing process's pid. The nonce lives only in
    ``emit``'s closure (no attribute, no module global), so the objective cannot trivially find
    it and forge events; a forked child that carries on with the study writes its own pid."""

    emit: Callable[[Event], None]
    """Write one event (``protocol.Event``) as one line."""

    def __init__(self, handle: IO[str], nonce: str = "") -> None:
        lock = threading.Lock()

        def emit(event: Event) -> None:
            line = event_line(event, nonce, os.getpid())
            with lock:
                handle.write(line + "\n")
                handle.flush()

        self.emit = emit


def determinism_op(exc: BaseException) -> str | None:
    """The op named by torch's "X does not have a deterministic implementation" error."""
    return named_op(str(exc))


def traced(objective: Callable[..., Any], tracer: Any) -> Callable[..., Any]:
    """``objective`` with its first call traced line by line and, with torch, op by op
    (``execution.linetrace``)."""
    from repro_check.execution.linetrace import TorchOps

    calls = [0]
    if getattr(tracer, "torch_ops", None) is None:
        tracer.torch_ops = TorchOps()

    def first_traced(trial: Any) -> Any:
        calls[0] += 1
        if calls[0] > 1:
            return objective(trial)
        tracer.torch_ops.start()
        tracer.start()
        try:
            return objective(trial)
        finally:
            tracer.stop()
            tracer.torch_ops.stop()

    return first_traced


def emit_trace(out: Stream, tracer: Any) -> None:
    """Stream what ``tracer`` (``execution.linetrace.LineTrace``) recorded."""
    out.emit(
        Trace(
            events=tracer.events,
            ops=tracer.torch_ops.ops,
            truncated=tracer.truncated,
            backend=tracer.backend,
        )
    )


def readable(value: Any, depth: int = 0) -> Any:
    """``value`` (JSON-safe) as a saved report may hold it: strings of at most ``MAX_TEXT``
    characters without lone surrogates, containers nested at most ``MAX_DEPTH`` levels (deeper
    ones become their shortened repr)."""
    if isinstance(value, str):
        if not value.isascii():
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 3] + "..."
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return readable(repr(value)[:MAX_TEXT], depth)
    if isinstance(value, dict):
        return {readable(k, depth): readable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [readable(v, depth + 1) for v in value]
    return value


def refused_op_message(op: str) -> str:
    """The error of a trial torch refused because ``op`` lacks a deterministic kernel."""
    return (
        f"{op} has no deterministic implementation "
        "(refused under torch.use_deterministic_algorithms(True))"
    )


def audit_report(audit: Any) -> AuditReport | None:
    """The entropy audit's report (``execution.audit.Audit``) as ``done`` carries it, or None
    without an audit. Built as is, not validated: the parent checks it, and refuses it."""
    if audit is None:
        return None
    found = audit.to_dict()
    sites = [AuditSite(**site) for site in found["sites"]]
    return AuditReport(sites=sites, consumed=found["consumed"])
