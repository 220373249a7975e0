"""The parent's side of one worker's stream: every line is checked before it counts.

A line must end in a newline, parse as a JSON object, carry the job's nonce and the worker's
pid, and convert to one of ``protocol.Event``'s types exactly (which events exist and what each
holds is read from those types, not listed here). What the types cannot say is checked here,
one handler per event, found by the event's name (``_on_<name>``): ``started`` comes first and
once, nothing follows ``done`` or ``error``, trials and ``study_done`` belong to the study that
runs, a trial arrives once, and a study holds what its ``study_done`` says.

A script's stream (``studies`` 0) is live: each study is announced (``study_info``) when the
script makes it, its trials stream as the script tells them, in any interleaving of its
studies, and at the script's end every study's ``study_done`` comes in creation order, with a
digest of each finished trial's every field as the study then holds it: a trial streamed
earlier that the study's final state disagrees with makes the run a crash.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from typing import Any

import msgspec

from repro_check.execution.protocol import (
    EVENT_NAMES,
    EVENT_TYPES,
    MAX_AUDIT_SITES,
    PROTOCOL_VERSION,
    Audit,
    Done,
    Error,
    Event,
    Started,
    StudyDone,
    StudyInfo,
    Trace,
    Trial,
    content_digest,
    event_name,
    read_event,
    trial_hash,
)
from repro_check.execution.target import one_line
from repro_check.results.records import StudyRecord, trials_digest
from repro_check.results.trial_record import TrialRecord

MAX_STUDIES = 10_000
"""The most studies one script run may stream (more is a broken stream, not a long report)."""
_STATES = frozenset({"COMPLETE", "PRUNED", "FAIL"})


class _Violation(Exception):
    """A protocol line that breaks the run; the message says what was wrong, in one line."""


def _preview(raw: bytes) -> str:
    text = repr(raw[:60])
    return text + "..." if len(raw) > 60 else text


class StreamCheck:
    """One worker's stream, as checked so far.

    ``feed`` takes one raw line; a bad one sets ``broken`` (one line: why) and every later line
    is ignored. A malformed event never raises."""

    def __init__(self, nonce: str, pid: int, studies: int) -> None:
        """``studies`` 0: a script, whose studies are counted as they come."""
        self.nonce = nonce
        self.pid = pid
        self.studies = studies
        self.dynamic = studies == 0
        self.started = False
        self.trials: list[list[TrialRecord]] = [[] for _ in range(studies)]
        self._numbers: list[set[int]] = [set() for _ in range(studies)]
        self.summaries: list[StudyDone] = []
        """The ``study_done`` events, one per finished study."""
        self.records: list[StudyRecord] = []
        """A script's studies, from their ``study_done`` info (one per summary)."""
        self.opened: list[StudyRecord] = []
        """A script's studies as announced while it ran (``study_info``), with no trials."""
        self.planned: list[int | None] = []
        """Trials each announced study's ``optimize`` calls asked for (None: unknown)."""
        self.last: tuple[int, int] | None = None
        """(study, trial number) of the last trial that arrived: where a stopped run stopped."""
        self._hashes: list[dict[int, str]] = []
        """A script's trials, each as ``protocol.trial_hash``, by study and number."""
        self.done: Done | None = None
        self.error: Error | None = None
        self.broken: str | None = None
        self.trace: list[list[Any]] | None = None
        """The line trace of a ``Job.trace`` job (``execution.linetrace``)."""
        self.trace_ops: list[list[str]] = []
        """Its torch ops: [op, user line, output digest] each."""
        self.trace_truncated: str | None = None
        self.audit_sites: list[dict[str, Any]] = []
        """Sites the entropy audit streamed as it found them (kept if the run is stopped)."""
        self._handlers = {cls: getattr(self, f"_on_{event_name(cls)}") for cls in EVENT_TYPES}

    def _preview(self, raw: bytes) -> str:
        """The start of a line for a message, with the job's nonce masked."""
        return _preview(raw.replace(self.nonce.encode(), b"<nonce>"))

    def feed(self, raw: bytes) -> Event | None:
        """The event of a valid line; None when the line broke the stream (or it was broken)."""
        if self.broken is not None:
            return None
        try:
            event = self._event(raw)
            if not isinstance(event, Started):
                self._check_order(event)
            self._handlers[type(event)](event)
        except _Violation as exc:
            self.broken = str(exc)
        except Exception as exc:  # a malformed event must never become a traceback
            self.broken = f"malformed event {self._preview(raw)} ({one_line(exc)})"
        else:
            return event
        return None

    def _event(self, raw: bytes) -> Event:
        """The event of one line, once it is a JSON object written by this job's worker and
        one of the protocol's events, exactly."""
        if not raw.endswith(b"\n"):
            raise _Violation(f"an unterminated line {self._preview(raw)}")
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise _Violation(
                f"an unparseable line {self._preview(raw)} (something else wrote to its pipe)"
            ) from None
        if not isinstance(data, dict):
            raise _Violation(f"a line that is not an event: {self._preview(raw)}")
        nonce = data.pop("nonce", None)
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce, self.nonce):
            raise _Violation(
                f"a line without this job's nonce, not written by the worker: {self._preview(raw)}"
            )
        pid = data.pop("pid", None)
        if pid != self.pid:
            raise _Violation(
                f"an event from process {pid!r}, not the worker ({self.pid}): a process "
                "forked by the objective carried on with the study"
            )
        kind = data.get("event")
        if kind not in EVENT_NAMES:
            raise _Violation(f"an unknown event {kind!r}")
        try:
            return read_event(data)
        except msgspec.ValidationError as exc:
            why = str(exc).splitlines()[0][:200] if str(exc) else "invalid"
            raise _Violation(f"a malformed {kind!r} event ({why})") from None

    def _check_order(self, event: Event) -> None:
        """A non-'started' event comes after 'started', before the end, in the running study."""
        kind = event_name(type(event))
        if not self.started:
            raise _Violation(f"a {kind!r} event before 'started'")
        if self.done is not None or self.error is not None:
            last = "done" if self.done is not None else "error"
            raise _Violation(f"a {kind!r} event after {last!r}")
        if self.dynamic and isinstance(event, StudyInfo | Trial | StudyDone):
            self._check_script_order(event, kind)
            return
        if isinstance(event, StudyInfo):
            raise _Violation("a 'study_info' event for a job that runs no script")
        if not isinstance(event, Trial | StudyDone):
            return
        current = len(self.summaries)
        if event.study != current or current >= self.studies:
            raise _Violation(
                f"a {kind!r} event for study {event.study!r} while study {current} ran"
            )

    def _check_script_order(self, event: StudyInfo | Trial | StudyDone, kind: str) -> None:
        """A script's stream: studies announced in order (an announced one may be updated),
        trials of any announced study not yet done, ``study_done`` in creation order."""
        opened, finished = len(self.opened), len(self.summaries)
        if isinstance(event, StudyInfo):
            fits = finished <= event.study <= opened and event.study < MAX_STUDIES
        elif isinstance(event, Trial):
            fits = finished <= event.study < opened
        else:
            fits = event.study == finished < opened
        if not fits:
            raise _Violation(
                f"a {kind!r} event for study {event.study!r} while {opened} studies were "
                f"announced and {finished} done"
            )

    # -- one handler per event type (``_on_`` + its name)

    def _on_started(self, event: Started) -> None:
        if self.started:
            raise _Violation("a second 'started' event")
        if event.version != PROTOCOL_VERSION:
            raise _Violation(
                f"a worker speaking protocol version {event.version}, not {PROTOCOL_VERSION} "
                "(another repro-check on the worker's path?)"
            )
        self.started = True

    def _on_study_info(self, event: StudyInfo) -> None:
        try:
            record = StudyRecord.from_dict(event.info, ())
        except Exception as exc:
            raise _Violation(f"a 'study_info' event with a malformed info ({exc})") from None
        if event.study == len(self.opened):
            self.opened.append(record)
            self.planned.append(event.planned)
            self.trials.append([])
            self._numbers.append(set())
            self._hashes.append({})
        else:
            self.opened[event.study] = record
            self.planned[event.study] = event.planned

    def _on_trial(self, event: Trial) -> None:
        self._add_trial(event.study, event.trial)
        if self.dynamic:
            self._hashes[event.study][event.trial["number"]] = trial_hash(event.trial)
        self.last = (event.study, event.trial["number"])

    def _on_study_done(self, event: StudyDone) -> None:
        if self.dynamic:
            try:
                if event.info is None:
                    raise TypeError("none")
                self.records.append(StudyRecord.from_dict(event.info, ()))
            except Exception as exc:
                raise _Violation(f"a 'study_done' event with a malformed info ({exc})") from None
        self.summaries.append(event)

    def _on_done(self, event: Done) -> None:
        current = len(self.summaries)
        if self.dynamic:
            if current == 0 or event.studies != current or current != len(self.opened):
                raise _Violation(f"'done' after {current} studies, saying {event.studies!r}")
        elif current != self.studies:
            raise _Violation(f"'done' after {current} of {self.studies} studies")
        self.done = event

    def _on_error(self, event: Error) -> None:
        self.error = event

    def _on_audit(self, event: Audit) -> None:
        if len(self.audit_sites) >= MAX_AUDIT_SITES:
            raise _Violation(f"more than {MAX_AUDIT_SITES} 'audit' events")
        self.audit_sites.append(msgspec.to_builtins(event.site))

    def _on_trace(self, event: Trace) -> None:
        if self.trace is not None:
            raise _Violation("a second 'trace' event")
        self.trace = [
            [file, line, {name: list(pair) for name, pair in local.items()}]
            for file, line, local in event.events
        ]
        self.trace_ops = [list(op) for op in event.ops]
        self.trace_truncated = event.truncated

    def _add_trial(self, study: int, data: dict[str, Any]) -> None:
        number = data.get("number")
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise _Violation(f"a trial numbered {number!r}")
        if data.get("state") not in _STATES:
            raise _Violation(f"trial {number} in state {data.get('state')!r}")
        if number in self._numbers[study]:
            raise _Violation(f"trial {number} streamed twice")
        try:
            record = TrialRecord.from_dict(data)
        except Exception as exc:
            raise _Violation(f"a malformed trial {number} ({one_line(exc)})") from None
        self._numbers[study].add(number)
        self.trials[study].append(record)

    # -- after the stream

    def study_problem(self, study: int, expected: int | None, first: int = 0) -> str | None:
        """Why finished study ``study`` does not hold what it should, or None. The invariant:
        trials F..F+N-1 once each (F = ``first``, 0 unless the study was resumed from a
        storage; N = ``expected``, or fewer when the study was stopped), and exactly the trials
        from F on that the worker's own study holds (a script's study: ``expected`` None,
        exactly those; trials it asked for and never told are not among them)."""
        trials = self.trials[study]
        summary = self.summaries[study]
        numbers = sorted(t.number for t in trials)
        if summary.emitted != len(trials):
            return f"the worker streamed {summary.emitted} trials, {len(trials)} arrived"
        if summary.count != len(trials):
            return (
                f"the worker's study holds {summary.count} trials but {len(trials)} were streamed"
            )
        if summary.digest != trials_digest((t.number, t.state) for t in trials):
            return "the worker's study holds other trials than the ones streamed"
        if self.dynamic and summary.content != content_digest(self._hashes[study].items()):
            return (
                "a trial streamed while the script ran differs from what the study held at "
                "the script's end"
            )
        if expected is None:
            return None
        want = min(len(trials), expected) if summary.stopped else expected
        if numbers != list(range(first, first + want)):
            asked = f"{expected}" if not first else f"{expected} from trial {first}"
            return f"worker streamed trials {_spans(numbers)} but the study asked for {asked}"
        return None

    def planned_total(self) -> int:
        """A script's trials as far as known: each announced study's planned count (its own
        trials so far where unknown), never fewer than arrived; 0 when no study's is known."""
        if all(p is None for p in self.planned):
            return 0
        arrived = [len(t) for t in self.trials]
        total = sum(p if p is not None else n for p, n in zip(self.planned, arrived, strict=True))
        return max(total, sum(arrived))

    def nondeterministic_ops(self) -> list[str]:
        """The ops torch named (at ``done``, or in the ``error`` that ended the job)."""
        if self.done is not None and self.done.nondeterministic_ops:
            return list(self.done.nondeterministic_ops)
        return list(self.error.ops) if self.error is not None else []

    def audit(self) -> dict[str, Any] | None:
        """The audit of the whole job, or what it streamed before it was stopped."""
        if self.done is not None and self.done.audit is not None:
            found: dict[str, Any] = msgspec.to_builtins(self.done.audit)
            return found
        if self.audit_sites:
            return {"sites": list(self.audit_sites), "consumed": {}}
        return None


def _spans(numbers: Sequence[int]) -> str:
    """``[0..4, 7]``: sorted trial numbers as ranges, shortened past a few."""
    spans: list[str] = []
    start = prev = None
    for n in [*numbers, None]:
        if n is not None and prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            spans.append(str(start) if start == prev else f"{start}..{prev}")
        start = prev = n
    shown = spans if len(spans) <= 6 else [*spans[:5], "...", spans[-1]]
    return "[" + ", ".join(shown) + "]"
