"""Spawn and supervise one worker process per replicate.

Fresh interpreters (not forks, not a pool) are the point: a reused process hides hash-order and
module-state effects and would give false passes. The parent only reads each worker's JSON-lines
stream; it never imports the user's module. Timeouts, crashes and Ctrl-C keep every trial that
already arrived.

The stream is checked, never trusted: a line without the job's nonce or from another process,
one that does not parse, of an unknown kind, out of order or of the wrong shape breaks the run
(status crashed), and a run only counts as finished when it holds trials 0..N-1 exactly once,
as the worker's own study does (fewer only when the study was stopped, and then its notes say
so). Each worker leads its own process group, which is killed on timeout, on cancel and as soon
as the worker exits, so no child of the objective outlives it or holds its pipes open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from repro_check.errors import ConfigError, DeviceError, ReproCheckError, TargetError
from repro_check.execution import controls as ctl
from repro_check.execution.gpus import ASSIGNED_ENV, Gpu
from repro_check.execution.target import one_line
from repro_check.plan.settings import Controls, StudySettings
from repro_check.results.records import (
    STATUS_CANCELLED,
    STATUS_CRASHED,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_TIMEOUT,
    RunRecord,
    StudyRecord,
    TrialRecord,
    stopped_note,
    trials_digest,
)
from repro_check.vocab import RunStatus


@dataclass(frozen=True)
class Job:
    """One worker process: a replicate (or, for probes, several studies in one process)."""

    index: int
    seed: int
    study: StudySettings
    controls: Controls = field(default_factory=Controls)
    studies: int = 1
    """Studies run one after another in the same process (the process-state probe uses 2)."""
    fixed_params: Mapping[str, Any] | None = None
    """Enqueue these params for every trial (the objective-noise probe)."""
    warn_only: bool = False
    """Deterministic algorithms in warn-only mode: name every op that lacks a kernel."""
    threads: int | None = None
    """Overrides the check's thread count (the thread-count portability probe)."""
    group: str = ""
    """Jobs of one experiment share a group; the stop rule stops a group, not the others."""
    storage: str | None = None
    """Run the study in this Optuna storage (URL), in ``study_name``, created by the claim."""
    study_name: str | None = None
    script: Mapping[str, Any] | None = None
    """Script mode: run this script whole (``path`` or ``module``, ``args``); its studies are
    recorded as they come (``studies`` is then unknown in advance)."""
    cap: int | None = None
    """Script mode: ``--trials``, the most trials each of the script's studies may run."""
    audit: bool = False
    """Record the user's calls into sources of variation (``diagnose`` only)."""
    trace: bool = False
    """Trace the first trial line by line (``diagnose``'s line-trace probe only)."""
    trace_at: tuple[int, int] | None = None
    """Script mode: trace this (study index, trial number) instead (with ``trace``)."""

    @property
    def planned_trials(self) -> int:
        """Trials this job is expected to stream, for progress (a script's are unknown)."""
        if self.script is not None:
            return self.cap or 0
        return self.study.trials * self.studies

    first_trial: int = 0
    """The study in ``storage`` already holds trials 0..first_trial-1 (a resumed study): this
    job runs and streams trials first_trial.. only."""

    def payload(self, target: str, threads: int, device: str) -> dict[str, Any]:
        return {
            "target": target,
            "index": self.index,
            "seed": self.seed,
            "study": self.study.to_dict(),
            "controls": self.controls.to_dict(),
            "studies": self.studies,
            "fixed_params": dict(self.fixed_params) if self.fixed_params is not None else None,
            "warn_only": self.warn_only,
            "threads": threads,
            "device": device,
            "storage": self.storage,
            "study_name": self.study_name,
            "script": dict(self.script) if self.script is not None else None,
            "cap": self.cap,
            "audit": self.audit,
            "trace": self.trace,
            "trace_at": list(self.trace_at) if self.trace_at is not None else None,
            "first_trial": self.first_trial,
        }


@dataclass
class JobResult:
    """What one worker produced: a ``RunRecord`` per study, plus what torch named."""

    job: Job
    runs: list[RunRecord]
    nondeterministic_ops: list[str] = field(default_factory=list)
    audit: Mapping[str, Any] | None = None
    """What the entropy audit saw (``execution.audit``; ``Job.audit`` only): the user's calls
    into sources of variation, and which global streams each trial consumed."""
    trace: list[list[Any]] | None = None
    """The line trace of the first trial (``Job.trace`` only)."""
    trace_ops: list[list[str]] = field(default_factory=list)
    """The torch ops of that trial, when it used torch."""
    trace_truncated: str | None = None
    """Why the line trace stopped early (a bound it met), or None."""


@dataclass(frozen=True)
class Progress:
    """A progress report for the CLI: ``job`` has ``done`` of ``total`` trials; ``status``
    is set once the job ended."""

    job: int
    done: int
    total: int
    status: str | None = None
    group: str = ""
    """The job's group (a ``compare`` condition, a ``diagnose`` experiment; "" for ``run``)."""
    queued: bool = False
    """The job waits for a free worker slot (reported once for every job, up front)."""
    output: str = ""
    """Everything the objective printed (its captured stdout and stderr), once the job ended."""


ProgressCallback = Callable[[Progress], None]
StopRule = Callable[[int, TrialRecord], bool]
"""Called with (worker position, trial) for each first-study trial of one group; True stops
that group. The runner makes one per group from a ``StopRuleFactory``."""
StopRuleFactory = Callable[[], StopRule]

_SETUP_ERRORS: dict[str, type[ReproCheckError]] = {
    "target": TargetError,
    "config": ConfigError,
    "device": DeviceError,
}


class Interrupted(Exception):
    """Ctrl-C: the workers were stopped; ``results`` holds what had finished."""

    def __init__(self, results: list[JobResult]) -> None:
        super().__init__("interrupted")
        self.results = results


_STARTUP_GRACE = 300.0
"""Seconds a worker may take to start its job (interpreter start-up, which the timeout does
not count) before it is killed as timed out anyway."""
_EOF_GRACE = 5.0
"""Seconds to wait for the end of a worker's stream after it exited and its group was killed
(a child that left the group may still hold the pipe)."""

_SWEEP_EVERY = 0.05
"""Seconds between checks of the workers for an exit or a timeout."""

_EVENTS = frozenset({"started", "trial", "study_done", "done", "error", "audit", "trace"})
_ERROR_KINDS = frozenset({"target", "config", "device", "determinism", "objective", "script"})
MAX_STUDIES = 10_000
"""The most studies one script run may stream (more is a broken stream, not a long report)."""
_STATES = frozenset({"COMPLETE", "PRUNED", "FAIL"})


class _Violation(Exception):
    """A protocol line that breaks the run; the message says what was wrong, in one line."""


def _preview(raw: bytes) -> str:
    text = repr(raw[:60])
    return text + "..." if len(raw) > 60 else text


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, str) for i in value)


class Protocol:
    """The parent's side of one worker's stream: every line is checked before it counts.

    ``feed`` takes one raw line; a bad one sets ``broken`` (one line: why) and every later line
    is ignored. A malformed event never raises."""

    def __init__(self, nonce: str, pid: int, studies: int) -> None:
        """``studies`` 0: a script, whose studies are counted as they come."""
        self.nonce = nonce
        self.pid = pid
        self.studies = studies
        self.dynamic = studies == 0
        studies = 1 if self.dynamic else studies
        self.started = False
        self.trials: list[list[TrialRecord]] = [[] for _ in range(studies)]
        self._numbers: list[set[int]] = [set() for _ in range(studies)]
        self.summaries: list[dict[str, Any]] = []
        """The ``study_done`` events, one per finished study."""
        self.done: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.broken: str | None = None
        self.trace: list[list[Any]] | None = None
        """The line trace of a ``Job.trace`` job (``execution.linetrace``)."""
        self.trace_ops: list[list[str]] = []
        """Its torch ops: [op, user line, output digest] each."""
        self.trace_truncated: str | None = None
        self.audit_sites: list[dict[str, Any]] = []
        """Sites the entropy audit streamed as it found them (kept if the run is stopped)."""

    def _preview(self, raw: bytes) -> str:
        """The start of a line for a message, with the job's nonce masked."""
        return _preview(raw.replace(self.nonce.encode(), b"<nonce>"))

    def feed(self, raw: bytes) -> dict[str, Any] | None:
        """The event of a valid line; None when the line broke the stream (or it was broken)."""
        if self.broken is not None:
            return None
        try:
            return self._check(raw)
        except _Violation as exc:
            self.broken = str(exc)
        except Exception as exc:  # a malformed event must never become a traceback
            self.broken = f"malformed event {self._preview(raw)} ({one_line(exc)})"
        return None

    def _check(self, raw: bytes) -> dict[str, Any]:
        event = self._parse(raw)
        kind = event.get("event")
        if kind not in _EVENTS:
            raise _Violation(f"an unknown event {kind!r}")
        if kind == "started":
            if self.started:
                raise _Violation("a second 'started' event")
            self.started = True
            return event
        self._check_order(str(kind), event)
        if kind == "trace":
            events, ops = event.get("events"), event.get("ops", [])
            valid_ops = (
                isinstance(ops, list)
                and len(ops) <= 5000
                and all(
                    isinstance(o, list) and len(o) == 3 and all(isinstance(x, str) for x in o)
                    for o in ops
                )
            )
            truncated = event.get("truncated")
            valid_truncated = truncated is None or (
                isinstance(truncated, str) and len(truncated) < 200
            )
            if (
                self.trace is not None
                or not _valid_trace(events)
                or not valid_ops
                or not valid_truncated
            ):
                raise _Violation("a malformed or second 'trace' event")
            self.trace = events
            self.trace_ops = ops
            self.trace_truncated = truncated
        elif kind == "audit":
            site = event.get("site")
            full = len(self.audit_sites) >= 1000
            if (
                not isinstance(site, dict)
                or full
                or not _valid_audit({"sites": [site], "consumed": {}})
            ):
                raise _Violation("a malformed 'audit' event")
            self.audit_sites.append(site)
        elif kind == "trial":
            self._add_trial(len(self.summaries), event.get("trial"))
        elif kind == "study_done":
            self._on_study_done(event)
        elif kind == "done":
            self._on_done(event)
        else:
            self._on_error(event, raw)
        return event

    def _parse(self, raw: bytes) -> dict[str, Any]:
        """The event of one line, once it is a JSON object written by this job's worker."""
        if not raw.endswith(b"\n"):
            raise _Violation(f"an unterminated line {self._preview(raw)}")
        try:
            event = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise _Violation(
                f"an unparseable line {self._preview(raw)} (something else wrote to its pipe)"
            ) from None
        if not isinstance(event, dict):
            raise _Violation(f"a line that is not an event: {self._preview(raw)}")
        nonce = event.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce, self.nonce):
            raise _Violation(
                f"a line without this job's nonce, not written by the worker: {self._preview(raw)}"
            )
        pid = event.get("pid")
        if pid != self.pid:
            raise _Violation(
                f"an event from process {pid!r}, not the worker ({self.pid}): a process "
                "forked by the objective carried on with the study"
            )
        return event

    def _check_order(self, kind: str, event: dict[str, Any]) -> None:
        """A non-'started' event comes after 'started', before the end, in the running study."""
        if not self.started:
            raise _Violation(f"a {kind!r} event before 'started'")
        if self.done is not None or self.error is not None:
            last = "done" if self.done is not None else "error"
            raise _Violation(f"a {kind!r} event after {last!r}")
        current = len(self.summaries)
        if kind in ("trial", "study_done"):
            study = event.get("study")
            limit = MAX_STUDIES if self.dynamic else self.studies
            if not _is_int(study) or study != current or current >= limit:
                raise _Violation(f"a {kind!r} event for study {study!r} while study {current} ran")
            if self.dynamic and current >= len(self.trials):
                self.trials.append([])
                self._numbers.append(set())

    def _on_study_done(self, event: dict[str, Any]) -> None:
        for key, valid in (("count", _is_int), ("emitted", _is_int)):
            if not valid(event.get(key)):
                raise _Violation(f"a 'study_done' event without a valid {key!r}")
        if not isinstance(event.get("digest"), str) or not isinstance(event.get("stopped"), bool):
            raise _Violation("a 'study_done' event without a valid digest or stopped flag")
        if self.dynamic:
            info = event.get("info")
            try:
                if not isinstance(info, dict):
                    raise TypeError("not an object")
                event["record"] = StudyRecord.from_dict(info, ())
            except Exception as exc:
                raise _Violation(f"a 'study_done' event with a malformed info ({exc})") from None
        self.summaries.append(event)

    def _on_done(self, event: dict[str, Any]) -> None:
        current = len(self.summaries)
        if self.dynamic:
            if current == 0 or event.get("studies") != current:
                raise _Violation(f"'done' after {current} studies, saying {event.get('studies')!r}")
        elif current != self.studies:
            raise _Violation(f"'done' after {current} of {self.studies} studies")
        for key in ("environment",):
            if not isinstance(event.get(key, {}), dict):
                raise _Violation(f"a 'done' event with a malformed {key!r}")
        for key in ("notes", "nondeterministic_ops"):
            if not _is_str_list(event.get(key, [])):
                raise _Violation(f"a 'done' event with a malformed {key!r}")
        if not _valid_audit(event.get("audit")):
            raise _Violation("a 'done' event with a malformed audit")
        self.done = event

    def _on_error(self, event: dict[str, Any], raw: bytes) -> None:
        if event.get("kind") not in _ERROR_KINDS or not isinstance(event.get("message"), str):
            raise _Violation(f"a malformed 'error' event {self._preview(raw)}")
        if not _is_str_list(event.get("ops", [])):
            raise _Violation("an 'error' event with malformed ops")
        self.error = event

    def _add_trial(self, study: int, data: Any) -> None:
        if not isinstance(data, dict):
            raise _Violation("a 'trial' event without a trial")
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

    def study_problem(self, study: int, expected: int | None, first: int = 0) -> str | None:
        """Why finished study ``study`` does not hold what it should, or None. The invariant:
        trials F..F+N-1 once each (F = ``first``, 0 unless the study was resumed from a
        storage; N = ``expected``, or fewer when the study was stopped), and exactly the trials
        from F on that the worker's own study holds (a script's study: ``expected`` None,
        exactly those; trials it asked for and never told are not among them)."""
        trials = self.trials[study]
        summary = self.summaries[study]
        numbers = sorted(t.number for t in trials)
        if summary["emitted"] != len(trials):
            return f"the worker streamed {summary['emitted']} trials, {len(trials)} arrived"
        if summary["count"] != len(trials):
            return (
                f"the worker's study holds {summary['count']} trials but "
                f"{len(trials)} were streamed"
            )
        if summary["digest"] != trials_digest((t.number, t.state) for t in trials):
            return "the worker's study holds other trials than the ones streamed"
        if expected is None:
            return None
        want = min(len(trials), expected) if summary["stopped"] else expected
        if numbers != list(range(first, first + want)):
            asked = f"{expected}" if not first else f"{expected} from trial {first}"
            return f"worker streamed trials {_spans(numbers)} but the study asked for {asked}"
        return None


def _valid_trace(events: Any) -> bool:
    """[[file, line, {local: [digest, shown]}], ...], bounded as the worker bounds it."""
    from repro_check.execution.linetrace import MAX_EVENTS, MAX_LOCALS

    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        return False
    for item in events:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)):
            return False
        if not _is_int(item[1]) or not isinstance(item[2], dict) or len(item[2]) > MAX_LOCALS:
            return False
        for name, pair in item[2].items():
            if not (isinstance(name, str) and _is_str_list(pair) and len(pair) == 2):
                return False
    return True


def _valid_audit(audit: Any) -> bool:
    """None, or {"sites": [{source, kind, file, text: str; line, calls: int; trials: [int]}],
    "consumed": {stream: [int]}}, bounded as the worker bounds it."""
    if audit is None:
        return True
    if not isinstance(audit, dict) or set(audit) != {"sites", "consumed"}:
        return False
    sites, consumed = audit["sites"], audit["consumed"]
    if not isinstance(sites, list) or len(sites) > 1000 or not isinstance(consumed, dict):
        return False
    for site in sites:
        if not isinstance(site, dict):
            return False
        if not all(isinstance(site.get(k), str) for k in ("source", "kind", "file", "text")):
            return False
        if not all(_is_int(site.get(k)) for k in ("line", "calls")):
            return False
        trials = site.get("trials")
        if not isinstance(trials, list) or not all(_is_int(t) for t in trials):
            return False
    return all(
        isinstance(k, str) and isinstance(v, list) and all(_is_int(t) for t in v)
        for k, v in consumed.items()
    )


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


WORKER_BOOTSTRAP = (
    "import sys\n"
    "if sys.path and sys.path[0] == '': del sys.path[0]\n"
    "from repro_check.execution.worker import main\n"
    "main()\n"
)
"""How a worker starts: with the flags ``python train.py`` has (not ``-P``, which sets
``sys.flags.safe_path`` for the user's code too), its own imports kept from the user's folder
(a ``json.py`` there) by dropping the current folder ``-c`` puts first on ``sys.path``; the
worker adds the script's (or target's) folder itself, right before it loads it."""


SCRIPT_ARG = "script"
"""The worker's argument when its job will be a script: its warm-up then imports nothing the
script would import itself (optuna, numpy)."""


def worker_command(job: Job) -> list[str]:
    """The worker's command line (``WORKER_BOOTSTRAP``, plus ``SCRIPT_ARG`` for a script)."""
    return [sys.executable, "-c", WORKER_BOOTSTRAP, *([SCRIPT_ARG] if job.script else [])]


class _Live:
    """A worker process and what it has streamed so far.

    It is spawned before its turn (it imports optuna while another replicate runs, then waits
    for its job on stdin) and started when a slot frees: each replicate still gets a fresh
    interpreter, but the start-up cost leaves the critical path. Its stdin stays open as the
    parent pipe: the worker kills its group when it closes (the parent died).
    """

    def __init__(self, job: Job, env: dict[str, str]) -> None:
        self.job = job
        self.ended_by: str | None = None  # timeout / cancelled / broken
        self.limit: float | None = None  # the --timeout that killed it
        self.output = ""  # the objective's captured output, read once it ended
        self.final: JobResult | None = None
        self.pump: threading.Thread | None = None
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
        self.handed = time.monotonic()
        self.clock: float | None = None
        """When the worker said it started the job: the timeout counts from here."""
        self.exited_at: float | None = None
        self.eof = False
        self.proc = subprocess.Popen(
            worker_command(job),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the parent only; it stops the workers
        )
        self.protocol = Protocol(secrets.token_hex(16), self.proc.pid, job.studies)

    def start(self, payload: dict[str, Any], position: int, inbox: queue.Queue[Any]) -> None:
        """Hand the worker its job (one line; stdin stays open as the parent pipe)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.handed = time.monotonic()
        line = json.dumps({**payload, "nonce": self.protocol.nonce}) + "\n"
        try:
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died while waiting; EOF on stdout reports the crash
        self.pump = threading.Thread(
            target=_pump, args=(position, self.proc.stdout, inbox), daemon=True
        )
        self.pump.start()

    @property
    def trials(self) -> list[list[TrialRecord]]:
        return self.protocol.trials

    @property
    def done(self) -> dict[str, Any] | None:
        return self.protocol.done

    @property
    def error(self) -> dict[str, Any] | None:
        return self.protocol.error

    @property
    def busy(self) -> bool:
        """Still running its study (after ``done`` it only exits: its slot is free)."""
        return self.done is None and self.error is None and self.ended_by is None

    @property
    def trials_done(self) -> int:
        return sum(len(t) for t in self.trials)

    def handle(self, raw: bytes) -> dict[str, Any] | None:
        """Check one line of the stream; the event if it counts. A bad line ends the run."""
        event = self.protocol.feed(raw)
        if event is not None and event.get("event") == "started":
            self.clock = time.monotonic()
        if self.protocol.broken is not None and self.ended_by is None:
            self.kill("broken")
        return event

    def discard(self) -> None:
        """Drop a spawned worker that never got its job."""
        self._kill_group()
        self.proc.kill()
        self.proc.wait()
        self._close_stdin()
        self.stderr.close()

    def _kill_group(self) -> None:
        """SIGKILL the worker's process group, even when the worker itself has exited: a child
        of the objective must not live on (nor hold the stream open)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def kill(self, reason: str) -> None:
        self.ended_by = self.ended_by or reason
        self._kill_group()
        if self.proc.poll() is None:
            self.proc.kill()

    def timed_out(self, now: float, timeout: float) -> bool:
        if self.clock is not None:
            return now - self.clock > timeout
        return now - self.handed > timeout + _STARTUP_GRACE

    def check_exit(self, now: float) -> bool:
        """Once the worker has exited, kill what is left of its group; True when its stream
        has still not ended ``_EOF_GRACE`` s later (a child that left the group holds it)."""
        if self.exited_at is None:
            if self.proc.poll() is None:
                return False
            self.exited_at = now
            self._kill_group()
        return not self.eof and now - self.exited_at > _EOF_GRACE

    def _close_stdin(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace")
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""

    def _crash_message(self) -> str:
        code = self.proc.returncode
        if code is not None and code < 0:
            what = f"worker killed by {signal.Signals(-code).name}"
        else:
            what = f"worker exited with code {code}"
        tail = self.stderr_tail()
        return f"{what}: {tail}" if tail else what

    def finish(self) -> JobResult:
        """Reap the process and build its result once (stderr is read for crashes, then closed)."""
        if self.final is None:
            self.proc.wait()
            self._kill_group()
            self._close_stdin()
            self.final = self._result()
            self.output = self._output_tail()
            self.stderr.close()
        return self.final

    def _output_tail(self, limit: int = 256 * 1024) -> str:
        """What the objective printed (for ``--verbose``), its last ``limit`` bytes at most."""
        size = self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, size - limit))
        text = self.stderr.read().decode(errors="replace")
        return f"[... first {size - limit} bytes left out ...]\n{text}" if size > limit else text

    def _stopped_by(self) -> tuple[RunStatus, str] | None:
        """(status, error) of a job that did not finish because of a timeout, a cancel or
        the worker's own error; None when it just died (the caller says how)."""
        if self.ended_by == "timeout":
            limit = f" after {self.limit:g} s (--timeout)" if self.limit else ""
            return STATUS_TIMEOUT, f"timed out{limit}"
        if self.ended_by == "cancelled":
            return STATUS_CANCELLED, "stopped before it finished"
        if self.protocol.error is not None:
            return STATUS_ERROR, str(self.protocol.error.get("message"))
        return None

    def _script_result(self, wall: float) -> JobResult:
        """Script mode: one run, holding every study the script made (the first one's trials
        are the run's ``trials``), crashed when any study breaks the invariant."""
        protocol = self.protocol
        done = protocol.done or {}
        studies = []
        problem = None
        for index, summary in enumerate(protocol.summaries):
            trials = tuple(sorted(protocol.trials[index], key=lambda t: t.number))
            record = dataclasses.replace(summary["record"], trials=trials)
            studies.append(record)
            found = protocol.study_problem(index, None)
            if found is not None and problem is None:
                problem = f"study {record.name!r}: {found}"
        status, error = STATUS_OK, None
        if self.ended_by == "broken":
            status, error = STATUS_CRASHED, f"worker stream broken: {protocol.broken}"
        elif protocol.done is None:
            status, error = self._stopped_by() or (STATUS_CRASHED, self._crash_message())
        elif problem is not None:
            status, error = STATUS_CRASHED, problem
        first = studies[0] if studies else None
        run = RunRecord(
            index=self.job.index,
            job=(self.job.group, self.job.index),
            seed=self.job.seed,
            status=status,
            trials=first.trials if first is not None else (),
            directions=first.directions if first is not None else self.job.study.directions,
            error=error,
            wall_s=wall,
            environment=done.get("environment", {}),
            notes=tuple(done.get("notes", [])),
            studies=tuple(studies),
        )
        ops = list(done.get("nondeterministic_ops") or (protocol.error or {}).get("ops") or [])
        return JobResult(
            self.job,
            [run],
            ops,
            self._audit(done),
            protocol.trace,
            protocol.trace_ops,
            protocol.trace_truncated,
        )

    def _result(self) -> JobResult:
        wall = time.monotonic() - (self.clock if self.clock is not None else self.handed)
        if self.job.script is not None:
            return self._script_result(wall)
        protocol = self.protocol
        done = protocol.done or {}
        environment = done.get("environment", {})
        runs = []
        for study_index, trials in enumerate(self.trials):
            status, error = STATUS_OK, None
            notes = list(done.get("notes", []))
            problem = None
            if study_index < len(protocol.summaries):
                problem = protocol.study_problem(
                    study_index, self.job.study.trials, self.job.first_trial
                )
                summary = protocol.summaries[study_index]
                if problem is None and summary["stopped"] and len(trials) < self.job.study.trials:
                    notes.append(stopped_note(len(trials), self.job.study.trials))
            # a study counts only once the worker said how its whole job ended ('done', or an
            # 'error' in a later study): one that died after 'study_done' (os._exit in a thread,
            # a kill, a timeout) lost its notes, environment and the ops torch named
            unfinished = protocol.done is None and protocol.error is None
            if self.ended_by == "broken":
                status, error = STATUS_CRASHED, f"worker stream broken: {protocol.broken}"
            elif study_index >= len(protocol.summaries) or unfinished:
                stopped = self._stopped_by()
                if stopped is not None:
                    status, error = stopped
                elif study_index < len(protocol.summaries):
                    late = f"{self._crash_message()} (after its study, before it reported"
                    status, error = STATUS_CRASHED, f"{late} the end of its job)"
                else:
                    status, error = STATUS_CRASHED, self._crash_message()
            elif problem is not None:
                status, error = STATUS_CRASHED, problem
            runs.append(
                RunRecord(
                    index=self.job.index,
                    job=(self.job.group, self.job.index),
                    seed=self.job.seed,
                    status=status,
                    trials=tuple(sorted(trials, key=lambda t: t.number)),
                    directions=self.job.study.directions,
                    error=error,
                    wall_s=wall,
                    environment=environment,
                    notes=tuple(notes),
                )
            )
        ops = list(done.get("nondeterministic_ops") or (protocol.error or {}).get("ops") or [])
        return JobResult(
            self.job,
            runs,
            ops,
            self._audit(done),
            self.protocol.trace,
            self.protocol.trace_ops,
            self.protocol.trace_truncated,
        )

    def _audit(self, done: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The audit of the whole job, or what it streamed before it was stopped."""
        if done.get("audit") is not None:
            return dict(done["audit"])
        if self.protocol.audit_sites:
            return {"sites": list(self.protocol.audit_sites), "consumed": {}}
        return None


def _pump(index: int, stream: IO[bytes], inbox: queue.Queue[tuple[int, Any]]) -> None:
    """Forward raw lines (checked by the main thread) and then None at the end of the stream."""
    try:
        for raw in stream:
            inbox.put((index, raw))
    except (OSError, ValueError):
        pass
    finally:
        inbox.put((index, None))


def run_jobs(
    target: str,
    jobs: Sequence[Job],
    *,
    workers: int,
    threads: int,
    device: str,
    timeout: float | None = None,
    on_progress: ProgressCallback | None = None,
    stop_when: StopRuleFactory | None = None,
    claim: Callable[[Job], Job | None] | None = None,
    gpus: Sequence[Gpu] = (),
    on_end: Callable[[JobResult], None] | None = None,
    hide_gpus: bool = False,
) -> list[JobResult]:
    """Run ``jobs`` with at most ``workers`` processes at once; results in job order.

    ``on_end`` is told each job's final result as soon as its worker has ended (a shared check
    stores that replicate's outcome then, not when this process's whole share is done).

    With ``gpus``, each worker is pinned to one of them (``CUDA_VISIBLE_DEVICES``) and a GPU
    runs one worker at a time: a job takes a free GPU when its worker is spawned and gives it
    back once that worker has ended (so at most ``len(gpus)`` run at once). ``hide_gpus``
    (``--device cpu`` asked for) gives every worker an empty ``CUDA_VISIBLE_DEVICES``.

    Raises ``TargetError``/``ConfigError``/``DeviceError`` when a worker reports that the target
    cannot load or the study cannot be built (stopping the rest), and ``Interrupted`` on Ctrl-C.
    ``stop_when`` makes one stop rule per group, fed every trial of that group as it arrives;
    when it says so, that group's workers are stopped (an experiment ends at its first
    divergence, ``--fail-fast`` at the first certain one).
    """
    scheduler = Scheduler(
        target,
        jobs,
        workers=workers,
        threads=threads,
        device=device,
        timeout=timeout,
        on_progress=on_progress,
        stop_when=stop_when,
        claim=claim,
        gpus=gpus,
        on_end=on_end,
        hide_gpus=hide_gpus,
    )
    return scheduler.run()


class Scheduler:
    """One ``run_jobs`` call: which job waits, runs or ended is state here; each step is a method.

    A job's position in ``jobs`` is its key everywhere. It is ``pending`` until a slot frees
    (or its group is stopped), then ``live`` (its worker streams into ``inbox``) until its stream
    ends or is given up, then ``ended``; ``skipped`` when a claim found it taken elsewhere.
    ``warm`` holds the next pending job's worker, spawned ahead of its turn. With GPUs, a
    spawned worker (warm or live) holds one in ``gpu_of`` until it ends; ``free_gpus`` is the
    pool the next spawn takes from.
    """

    def __init__(
        self,
        target: str,
        jobs: Sequence[Job],
        *,
        workers: int,
        threads: int,
        device: str,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        stop_when: StopRuleFactory | None = None,
        claim: Callable[[Job], Job | None] | None = None,
        gpus: Sequence[Gpu] = (),
        on_end: Callable[[JobResult], None] | None = None,
        hide_gpus: bool = False,
    ) -> None:
        self.on_end = on_end
        self.hide_gpus = hide_gpus
        self.target = target
        self.jobs = jobs
        self.workers = workers
        self.threads = threads
        self.device = device
        self.timeout = timeout
        self.report: ProgressCallback = on_progress or (lambda _p: None)
        self.stop_when = stop_when
        self.claim = claim
        self.inbox: queue.Queue[tuple[int, Any]] = queue.Queue()
        self.pending: list[int] = list(range(len(jobs)))
        self.live: dict[int, _Live] = {}
        self.ended: dict[int, _Live] = {}
        self.warm: dict[int, _Live] = {}
        self.skipped: set[int] = set()
        self.rules: dict[str, StopRule] = {}
        self.stopped_groups: set[str] = set()
        self.last_sweep = 0.0
        self.gpus = tuple(gpus)
        self.free_gpus: list[Gpu] = list(gpus)
        self.gpu_of: dict[int, Gpu] = {}

    def run(self) -> list[JobResult]:
        """Start jobs as slots free, check every line that arrives, sweep for exits and
        timeouts; then the results in job order."""
        self._report_queued()
        try:
            while self.pending or self.live:
                self._fill_slots()
                self._prewarm()
                if not self.live and not self.pending:
                    break
                self._receive()
                self._sweep()
        except KeyboardInterrupt:
            raise Interrupted(self._salvage()) from None
        except ReproCheckError:
            self._stop_all("cancelled")
            for worker in self.live.values():
                worker.finish()
            raise
        for worker in self.warm.values():
            worker.discard()
        return self._results()

    # -- starting jobs

    def _total(self, job: Job) -> int:
        return job.planned_trials

    def _report_queued(self) -> None:
        """Every job shows as queued until a slot frees for it."""
        for job in self.jobs:
            self.report(Progress(job.index, 0, self._total(job), group=job.group, queued=True))

    def _fill_slots(self) -> None:
        while self.pending and sum(w.busy for w in self.live.values()) < self.workers:
            if self.gpus and self.pending[0] not in self.gpu_of and not self.free_gpus:
                return  # every GPU runs a worker: wait for one to end
            self._launch(self.pending.pop(0))

    def _release(self, position: int) -> None:
        """The worker at ``position`` ended (or was dropped): its GPU is free again."""
        gpu = self.gpu_of.pop(position, None)
        if gpu is not None:
            self.free_gpus.append(gpu)

    def _spawn(self, position: int) -> _Live:
        job = self.jobs[position]
        env = ctl.worker_env(
            os.environ,
            job.controls,
            seed=job.seed,
            threads=job.threads or self.threads,
            device=self.device,
            hide_gpus=self.hide_gpus,
        )
        env.pop(ASSIGNED_ENV, None)  # never an inherited one (a check run inside a worker)
        if self.gpus:
            gpu = self.gpu_of.get(position) or self.free_gpus.pop(0)
            self.gpu_of[position] = gpu
            env["CUDA_VISIBLE_DEVICES"] = gpu.pin
            env[ASSIGNED_ENV] = json.dumps(gpu.to_dict())
        return _Live(job, env)

    def _launch(self, position: int) -> None:
        job = self.jobs[position]
        if self.claim is not None:  # shared checks: take the replicate only if nobody has it
            claimed = self.claim(job)
            if claimed is None:
                self.skipped.add(position)
                self.report(Progress(job.index, 0, 0, status="taken elsewhere", group=job.group))
                if position in self.warm:
                    self.warm.pop(position).discard()
                self._release(position)
                return
            job = claimed
        worker = self.warm.pop(position, None) or self._spawn(position)
        payload = job.payload(self.target, job.threads or self.threads, self.device)
        worker.start(payload, position, self.inbox)
        self.live[position] = worker
        self.report(Progress(job.index, 0, self._total(job), group=job.group))

    def _prewarm(self) -> None:
        """Keep the next pending job's process spawned and importing while others run."""
        for position in [p for p in self.warm if p not in self.pending]:
            self.warm.pop(position).discard()
            self._release(position)
        if self.gpus and not self.free_gpus:
            return  # a spawned worker holds a GPU: none is free to hold
        if self.pending and not self.warm and self.live:
            self.warm[self.pending[0]] = self._spawn(self.pending[0])

    # -- the stream

    def _receive(self) -> None:
        """Take one line (or a stream's end) from the inbox, waiting 0.1 s at most."""
        try:
            position, raw = self.inbox.get(timeout=0.1)
        except queue.Empty:
            return
        worker = self.live.get(position)
        if worker is None:  # a line after the end of a given-up stream is dropped
            return
        if raw is None:
            worker.eof = True
            self._end(position)
        else:
            self._handle(position, worker, raw)

    def _handle(self, position: int, worker: _Live, raw: bytes) -> None:
        accepted = worker.handle(raw)
        job = worker.job
        self.report(Progress(job.index, worker.trials_done, self._total(job), group=job.group))
        if accepted is None:
            return
        kind = accepted.get("event")
        if kind == "error" and accepted["kind"] in _SETUP_ERRORS:
            self._stop_all("cancelled")
            error_type = _SETUP_ERRORS[str(accepted["kind"])]
            raise error_type(str(accepted["message"]))
        if kind == "trial":
            self._maybe_stop_group(position, accepted)

    def _maybe_stop_group(self, position: int, event: dict[str, Any]) -> None:
        group = self.jobs[position].group
        if self.stop_when is None or group in self.stopped_groups or int(event["study"]) != 0:
            return
        rule = self.rules.setdefault(group, self.stop_when())
        if rule(position, self.live[position].trials[0][-1]):
            self._stop_group(group)

    def _stop_group(self, group: str) -> None:
        """The stop rule ended ``group``: its queued jobs never start, its workers are killed."""
        self.stopped_groups.add(group)
        dropped = [p for p in self.pending if self.jobs[p].group == group]
        self.pending[:] = [p for p in self.pending if self.jobs[p].group != group]
        for p in dropped:
            self.report(Progress(self.jobs[p].index, 0, 0, status=STATUS_CANCELLED, group=group))
        for member in self.live.values():
            if member.job.group == group:
                member.kill("cancelled")

    # -- ending jobs

    def _sweep(self) -> None:
        """Every ``_SWEEP_EVERY`` s (not once per event: 10,000s of trials), end the workers
        whose stream never ended after they exited, and kill the ones past the timeout."""
        now = time.monotonic()
        if now - self.last_sweep < _SWEEP_EVERY:
            return
        self.last_sweep = now
        for position, worker in list(self.live.items()):
            if worker.check_exit(now):
                self._end(position)  # its stream never ended: stop waiting for it
            elif (
                self.timeout is not None
                and worker.ended_by is None
                and worker.timed_out(now, self.timeout)
            ):
                worker.limit = self.timeout
                worker.kill("timeout")

    def _end(self, position: int) -> None:
        worker = self.live.pop(position)
        self.ended[position] = worker
        result = worker.finish()
        self._release(position)  # reaped, its group killed: the GPU is free
        if self.on_end is not None:
            self.on_end(result)
        job = worker.job
        self.report(
            Progress(
                job.index,
                worker.trials_done,
                self._total(job),
                status=result.runs[-1].status,
                group=job.group,
                output=worker.output,
            )
        )

    def _stop_all(self, reason: str) -> None:
        self.pending.clear()
        for worker in self.live.values():
            worker.kill(reason)
        for position, worker in self.warm.items():
            worker.discard()
            self._release(position)
        self.warm.clear()

    def _salvage(self) -> list[JobResult]:
        """Ctrl-C: stop every worker, keep every trial that already arrived."""
        self._stop_all("cancelled")
        for worker in self.live.values():
            if worker.pump is not None:
                worker.pump.join(timeout=5)
        while not self.inbox.empty():
            position, raw = self.inbox.get_nowait()
            if raw is not None and position in self.live:
                self.live[position].handle(raw)
        for position, worker in self.live.items():
            worker.finish()
            self.ended[position] = worker
        return [
            self.ended[p].finish() if p in self.ended else _not_started(job)
            for p, job in enumerate(self.jobs)
            if p not in self.skipped
        ]

    def _results(self) -> list[JobResult]:
        results = []
        for position, job in enumerate(self.jobs):
            if position in self.skipped:
                results.append(JobResult(job, []))  # claimed by another process
            elif position in self.ended:
                results.append(self.ended[position].finish())
            else:  # never started: the stop rule ended the experiment first
                results.append(_not_started(job))
        return results


def _not_started(job: Job) -> JobResult:
    """A job stopped before its worker started (a stop rule, or Ctrl-C): still reported."""
    run = RunRecord(
        job.index,
        job.seed,
        STATUS_CANCELLED,
        (),
        job.study.directions,
        "not started",
        job=(job.group, job.index),
    )
    return JobResult(job, [run])
