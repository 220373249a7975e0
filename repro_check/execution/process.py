"""One worker process, from spawn to result: ``WorkerProcess``.

Fresh interpreters (not forks, not a pool) are the point: a reused process hides hash-order and
module-state effects and would give false passes. A worker is spawned ahead of its turn (it
imports while another replicate runs), handed its job as one line on stdin, and its stdout is
pumped, line by line, to the scheduler's inbox; each line is checked by its ``StreamCheck``
before it counts. The worker leads its own process group, which is killed on timeout, on
cancel and as soon as the worker exits, so no child of the objective outlives it or holds its
pipes open. ``finish`` turns what arrived into the job's ``JobResult``: a run only counts as
finished when it holds trials 0..N-1 exactly once, as the worker's own study does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any

from repro_check.execution.jobs import Job, JobResult
from repro_check.execution.protocol import (
    SCRIPT_ARG,
    WORKER_BOOTSTRAP,
    Done,
    Error,
    Event,
    JobSpec,
    Started,
    job_line,
)
from repro_check.execution.stream import StreamCheck
from repro_check.results.records import (
    STATUS_CANCELLED,
    STATUS_CRASHED,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_TIMEOUT,
    RunRecord,
    StudyRecord,
    stopped_note,
)
from repro_check.results.trial_record import TrialRecord
from repro_check.vocab import RunStatus

STARTUP_GRACE = 300.0
"""Seconds a worker may take to start its job (interpreter start-up, which the timeout does
not count) before it is killed as timed out anyway."""
EOF_GRACE = 5.0
"""Seconds to wait for the end of a worker's stream after it exited and its group was killed
(a child that left the group may still hold the pipe)."""
TAIL_LINES = 5
"""The last lines of a failed run's output shown in its error (argparse's complaint, a
traceback's last frames): enough to say why, without ``-v``."""
TAIL_WIDTH = 200
_OUTPUT_HEAD = "; its output ended with:"
"""Each of those lines is cut to this many characters."""
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""Terminal controls (ESC, CSI, ``\\r``, tabs, lone surrogates), written as ``\\xNN`` the way
``render.safe.one_line`` does (the render layer sits above this one)."""


def worker_command(job: Job) -> list[str]:
    """The worker's command line (``WORKER_BOOTSTRAP``, plus ``SCRIPT_ARG`` for a script)."""
    return [sys.executable, "-c", WORKER_BOOTSTRAP, *([SCRIPT_ARG] if job.script else [])]


class WorkerProcess:
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
        self.stream = StreamCheck(secrets.token_hex(16), self.proc.pid, job.studies)

    def start(self, spec: JobSpec, position: int, inbox: queue.Queue[Any]) -> None:
        """Hand the worker its job (one line; stdin stays open as the parent pipe)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.handed = time.monotonic()
        line = job_line(spec, self.stream.nonce)
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died while waiting; EOF on stdout reports the crash
        self.pump = threading.Thread(
            target=pump_lines, args=(position, self.proc.stdout, inbox), daemon=True
        )
        self.pump.start()

    @property
    def trials(self) -> list[list[TrialRecord]]:
        return self.stream.trials

    @property
    def done(self) -> Done | None:
        return self.stream.done

    @property
    def error(self) -> Error | None:
        return self.stream.error

    @property
    def busy(self) -> bool:
        """Still running its study (after ``done`` it only exits: its slot is free)."""
        return self.done is None and self.error is None and self.ended_by is None

    @property
    def trials_done(self) -> int:
        return sum(len(t) for t in self.trials)

    def handle(self, raw: bytes) -> Event | None:
        """Check one line of the stream; the event if it counts. A bad line ends the run."""
        event = self.stream.feed(raw)
        if isinstance(event, Started):
            self.clock = time.monotonic()
        if self.stream.broken is not None and self.ended_by is None:
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
        return now - self.handed > timeout + STARTUP_GRACE

    def check_exit(self, now: float) -> bool:
        """Once the worker has exited, kill what is left of its group; True when its stream
        has still not ended ``EOF_GRACE`` s later (a child that left the group holds it)."""
        if self.exited_at is None:
            if self.proc.poll() is None:
                return False
            self.exited_at = now
            self._kill_group()
        return not self.eof and now - self.exited_at > EOF_GRACE

    def _close_stdin(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def stderr_tail(self, count: int = TAIL_LINES) -> list[str]:
        """The last ``count`` non-blank lines of the run's output, each on one line, its
        controls escaped and cut at ``TAIL_WIDTH`` characters (read from the end only)."""
        size = self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, size - 64 * 1024))
        text = self.stderr.read().decode(errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()][-count:]
        shown = [_CONTROLS.sub(_escaped, line) for line in lines]
        return [s if len(s) <= TAIL_WIDTH else s[: TAIL_WIDTH - 3] + "..." for s in shown]

    def with_output(self, error: str) -> str:
        """``error`` followed by the last lines the run printed (why a script stopped is
        often only there: argparse's usage line, a traceback), and where to see all of it."""
        lines = self.stderr_tail()
        if not lines:
            return error
        shown = "\n".join(f"  | {line}" for line in lines)
        return f"{error}{_OUTPUT_HEAD}\n{shown}\n  (-v shows all of its output)"

    def _crash_message(self, when: str = "") -> str:
        """How the worker died (``when``: a few words on when), then its output's last lines."""
        code = self.proc.returncode
        if code is not None and code < 0:
            what = f"worker killed by {signal.Signals(-code).name}"
        else:
            what = f"worker exited with code {code}"
        return self.with_output(what + when)

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
        if self.stream.error is not None:
            return STATUS_ERROR, self.with_output(self.stream.error.message)
        return None

    def _script_result(self, wall: float) -> JobResult:
        """Script mode: one run, holding every study the script made (the first one's trials
        are the run's ``trials``), crashed when any study breaks the invariant. A run stopped
        before the script ended (a timeout, Ctrl-C, --fail-fast, a crash) keeps the trials
        that arrived, in the studies as announced, and is never finished."""
        stream = self.stream
        done = stream.done or Done()
        studies = []
        problem = None
        for index, opened in enumerate(stream.opened):
            trials = tuple(sorted(stream.trials[index], key=lambda t: t.number))
            ended = index < len(stream.summaries)
            base = stream.records[index] if ended else opened
            record = dataclasses.replace(base, trials=trials)
            studies.append(record)
            found = stream.study_problem(index, None) if ended else None
            if found is not None and problem is None:
                problem = f"study {record.name!r}: {found}"
        status, error = STATUS_OK, None
        if self.ended_by == "broken":
            status, error = STATUS_CRASHED, f"worker stream broken: {stream.broken}"
        elif stream.done is None:
            status, error = self._stopped_by() or (STATUS_CRASHED, self._crash_message())
            error = self._where_stopped(error, studies)
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
            environment=done.environment,
            notes=tuple(done.notes),
            studies=tuple(studies),
        )
        return self._job_result([run])

    def _where_stopped(self, error: str, studies: list[StudyRecord]) -> str:
        """A script run that ended before the script did: where, in its error (the last
        trial that arrived; its finished trials are kept and compared)."""
        last = self.stream.last
        if self.stream.summaries or (last is None and not studies):
            return error  # its end had begun (or nothing ran): the error says it all
        if last is None:
            return f"{error}, before any trial finished"
        study, number = last
        name = studies[study].name
        which = f"study {name!r}" if name else f"study {study} (unnamed)"
        head, sep, rest = error.partition(_OUTPUT_HEAD)
        return f"{head}, after trial {number} of {which}{sep}{rest}"

    def _result(self) -> JobResult:
        wall = time.monotonic() - (self.clock if self.clock is not None else self.handed)
        if self.job.script is not None:
            return self._script_result(wall)
        stream = self.stream
        done = stream.done or Done()
        environment = done.environment
        runs = []
        for study_index, trials in enumerate(self.trials):
            status, error = STATUS_OK, None
            notes = list(done.notes)
            problem = None
            if study_index < len(stream.summaries):
                problem = stream.study_problem(
                    study_index, self.job.study.trials, self.job.first_trial
                )
                summary = stream.summaries[study_index]
                if problem is None and summary.stopped and len(trials) < self.job.study.trials:
                    notes.append(stopped_note(len(trials), self.job.study.trials))
            # a study counts only once the worker said how its whole job ended ('done', or an
            # 'error' in a later study): one that died after 'study_done' (os._exit in a thread,
            # a kill, a timeout) lost its notes, environment and the ops torch named
            unfinished = stream.done is None and stream.error is None
            if self.ended_by == "broken":
                status, error = STATUS_CRASHED, f"worker stream broken: {stream.broken}"
            elif study_index >= len(stream.summaries) or unfinished:
                stopped = self._stopped_by()
                if stopped is not None:
                    status, error = stopped
                elif study_index < len(stream.summaries):
                    late = " (after its study, before it reported the end of its job)"
                    status, error = STATUS_CRASHED, self._crash_message(late)
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
        return self._job_result(runs)

    def _job_result(self, runs: list[RunRecord]) -> JobResult:
        stream = self.stream
        return JobResult(
            self.job,
            runs,
            stream.nondeterministic_ops(),
            stream.audit(),
            stream.trace,
            stream.trace_ops,
            stream.trace_truncated,
        )


def _escaped(match: re.Match[str]) -> str:
    point = ord(match.group())
    return f"\\x{point:02x}" if point <= 0xFF else f"\\u{point:04x}"


def pump_lines(index: int, stream: IO[bytes], inbox: queue.Queue[tuple[int, Any]]) -> None:
    """Forward raw lines (checked by the main thread) and then None at the end of the stream."""
    try:
        for raw in stream:
            inbox.put((index, raw))
    except (OSError, ValueError):
        pass
    finally:
        inbox.put((index, None))
