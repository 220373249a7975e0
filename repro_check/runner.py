"""Spawn and supervise one worker process per replicate.

Fresh interpreters (not forks, not a pool) are the point: a reused process hides hash-order and
module-state effects and would give false passes. The parent only reads each worker's JSON-lines
stream; it never imports the user's module. Timeouts, crashes and Ctrl-C keep every trial that
already arrived.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from repro_check import controls as ctl
from repro_check.errors import ConfigError, DeviceError, ReproCheckError, TargetError
from repro_check.records import (
    STATUS_CANCELLED,
    STATUS_CRASHED,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_TIMEOUT,
    RunRecord,
    TrialRecord,
)
from repro_check.settings import Controls, StudySettings


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
        }


@dataclass
class JobResult:
    """What one worker produced: a ``RunRecord`` per study, plus what torch named."""

    job: Job
    runs: list[RunRecord]
    nondeterministic_ops: list[str] = field(default_factory=list)


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
        self.device: str | None = None


class _Live:
    """A worker process and what it has streamed so far.

    It is spawned before its turn (it imports optuna while another replicate runs, then waits
    for its job on stdin) and started when a slot frees: each replicate still gets a fresh
    interpreter, but the start-up cost leaves the critical path.
    """

    def __init__(self, job: Job, env: dict[str, str]) -> None:
        self.job = job
        self.trials: list[list[TrialRecord]] = [[] for _ in range(job.studies)]
        self.studies_done = 0
        self.done: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.ended_by: str | None = None  # timeout / cancelled
        self.limit: float | None = None  # the --timeout that killed it
        self.output = ""  # the objective's captured output, read once it ended
        self.final: JobResult | None = None
        self.pump: threading.Thread | None = None
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "repro_check.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the parent only; it stops the workers
        )

    def start(self, payload: dict[str, Any], position: int, inbox: queue.Queue[Any]) -> None:
        """Hand the worker its job; the timeout counts from here."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.started = time.monotonic()
        try:
            self.proc.stdin.write(json.dumps(payload).encode())
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # it died while waiting; EOF on stdout reports the crash
        self.pump = threading.Thread(
            target=_pump, args=(position, self.proc.stdout, inbox), daemon=True
        )
        self.pump.start()

    @property
    def busy(self) -> bool:
        """Still running its study (after ``done`` it only exits: its slot is free)."""
        return self.done is None and self.error is None and self.ended_by is None

    @property
    def trials_done(self) -> int:
        return sum(len(t) for t in self.trials)

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "trial":
            self.trials[int(event["study"])].append(TrialRecord.from_dict(event["trial"]))
        elif kind == "study_done":
            self.studies_done += 1
        elif kind == "done":
            self.done = event
        elif kind == "error":
            self.error = event

    def discard(self) -> None:
        """Drop a spawned worker that never got its job."""
        self.proc.kill()
        self.proc.wait()
        self.stderr.close()

    def kill(self, reason: str) -> None:
        if self.proc.poll() is None:
            self.ended_by = self.ended_by or reason
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()

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

    def _result(self) -> JobResult:
        wall = time.monotonic() - self.started
        done = self.done or {}
        environment = done.get("environment", {})
        runs = []
        for study_index, trials in enumerate(self.trials):
            status, error = STATUS_OK, None
            if study_index >= self.studies_done:
                if self.ended_by == "timeout":
                    limit = f" after {self.limit:g} s (--timeout)" if self.limit else ""
                    status, error = STATUS_TIMEOUT, f"timed out{limit}"
                elif self.ended_by == "cancelled":
                    status, error = STATUS_CANCELLED, "stopped before it finished"
                elif self.error is not None:
                    status, error = STATUS_ERROR, str(self.error.get("message"))
                else:
                    status, error = STATUS_CRASHED, self._crash_message()
            runs.append(
                RunRecord(
                    index=self.job.index,
                    seed=self.job.seed,
                    status=status,
                    trials=tuple(sorted(trials, key=lambda t: t.number)),
                    directions=self.job.study.directions,
                    error=error,
                    wall_s=wall,
                    environment=environment,
                    notes=tuple(done.get("notes", [])),
                )
            )
        ops = list(done.get("nondeterministic_ops") or (self.error or {}).get("ops") or [])
        return JobResult(self.job, runs, ops)


def _pump(index: int, stream: IO[bytes], inbox: queue.Queue[tuple[int, Any]]) -> None:
    for raw in stream:
        try:
            inbox.put((index, json.loads(raw)))
        except json.JSONDecodeError:
            continue
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
) -> list[JobResult]:
    """Run ``jobs`` with at most ``workers`` processes at once; results in job order.

    Raises ``TargetError``/``ConfigError``/``DeviceError`` when a worker reports that the target
    cannot load or the study cannot be built (stopping the rest), and ``Interrupted`` on Ctrl-C.
    ``stop_when`` makes one stop rule per group, fed every trial of that group as it arrives;
    when it says so, that group's workers are stopped (an experiment ends at its first
    divergence, ``--fail-fast`` at the first certain one).
    """
    report = on_progress or (lambda _p: None)
    inbox: queue.Queue[tuple[int, Any]] = queue.Queue()
    pending = list(range(len(jobs)))
    live: dict[int, _Live] = {}
    ended: dict[int, _Live] = {}
    stopped_groups: set[str] = set()

    warm: dict[int, _Live] = {}

    def spawn(position: int) -> _Live:
        job = jobs[position]
        env = ctl.worker_env(
            os.environ, job.controls, seed=job.seed, threads=job.threads or threads, device=device
        )
        return _Live(job, env)

    skipped: set[int] = set()

    def launch(position: int) -> None:
        job = jobs[position]
        if claim is not None:  # shared checks: take the replicate only if nobody has it
            claimed = claim(job)
            if claimed is None:
                skipped.add(position)
                report(Progress(job.index, 0, 0, status="taken elsewhere", group=job.group))
                if position in warm:
                    warm.pop(position).discard()
                return
            job = claimed
        worker = warm.pop(position, None) or spawn(position)
        worker.start(job.payload(target, job.threads or threads, device), position, inbox)
        live[position] = worker
        report(Progress(job.index, 0, job.study.trials * job.studies, group=job.group))

    def prewarm() -> None:
        """Keep the next pending job's process spawned and importing while others run."""
        for position in [p for p in warm if p not in pending]:
            warm.pop(position).discard()
        if pending and not warm and live:
            warm[pending[0]] = spawn(pending[0])

    def stop_all(reason: str) -> None:
        pending.clear()
        for worker in live.values():
            worker.kill(reason)
        for worker in warm.values():
            worker.discard()
        warm.clear()

    rules: dict[str, StopRule] = {}

    def maybe_stop_group(position: int, event: dict[str, Any]) -> None:
        group = jobs[position].group
        if stop_when is None or group in stopped_groups or int(event["study"]) != 0:
            return
        rule = rules.setdefault(group, stop_when())
        if rule(position, live[position].trials[0][-1]):
            stopped_groups.add(group)
            dropped = [p for p in pending if jobs[p].group == group]
            pending[:] = [p for p in pending if jobs[p].group != group]
            for p in dropped:  # a queued job the rule ended never starts
                report(Progress(jobs[p].index, 0, 0, status=STATUS_CANCELLED, group=group))
            for member in live.values():
                if member.job.group == group:
                    member.kill("cancelled")

    for job in jobs:  # every job shows as queued until a slot frees for it
        report(Progress(job.index, 0, job.study.trials * job.studies, group=job.group, queued=True))
    try:
        while pending or live:
            while pending and sum(w.busy for w in live.values()) < workers:
                launch(pending.pop(0))
            prewarm()
            if not live and not pending:
                break
            try:
                position, event = inbox.get(timeout=0.1)
            except queue.Empty:
                position, event = -1, None
            if position >= 0:
                worker = live[position]
                if event is not None:
                    worker.handle(event)
                    total = worker.job.study.trials * worker.job.studies
                    report(
                        Progress(
                            worker.job.index, worker.trials_done, total, group=worker.job.group
                        )
                    )
                    if worker.error and worker.error.get("kind") in _SETUP_ERRORS:
                        stop_all("cancelled")
                        kind = str(worker.error["kind"])
                        raise _SETUP_ERRORS[kind](str(worker.error.get("message")))
                    if event.get("event") == "trial":
                        maybe_stop_group(position, event)
                else:
                    ended[position] = live.pop(position)
                    result = worker.finish()
                    report(
                        Progress(
                            worker.job.index,
                            worker.trials_done,
                            worker.job.study.trials * worker.job.studies,
                            status=result.runs[-1].status,
                            group=worker.job.group,
                            output=worker.output,
                        )
                    )
            if timeout is not None:
                now = time.monotonic()
                for worker in live.values():
                    if now - worker.started > timeout:
                        worker.limit = timeout
                        worker.kill("timeout")
    except KeyboardInterrupt:
        stop_all("cancelled")
        for worker in live.values():  # keep every trial that already arrived
            if worker.pump is not None:
                worker.pump.join(timeout=5)
        while not inbox.empty():
            position, event = inbox.get_nowait()
            if event is not None and position in live:
                live[position].handle(event)
        for position, worker in live.items():
            worker.finish()
            ended[position] = worker
        results = [
            ended[p].finish() if p in ended else _not_started(job)
            for p, job in enumerate(jobs)
            if p not in skipped
        ]
        raise Interrupted(results) from None
    except ReproCheckError:
        stop_all("cancelled")
        for worker in live.values():
            worker.finish()
        raise
    for worker in warm.values():
        worker.discard()
    results = []
    for position, job in enumerate(jobs):
        if position in skipped:
            results.append(JobResult(job, []))  # claimed by another process
        elif position in ended:
            results.append(ended[position].finish())
        else:  # never started: the stop rule ended the experiment first
            results.append(_not_started(job))
    return results


def _not_started(job: Job) -> JobResult:
    """A job stopped before its worker started (a stop rule, or Ctrl-C): still reported."""
    run = RunRecord(job.index, job.seed, STATUS_CANCELLED, (), job.study.directions, "not started")
    return JobResult(job, [run])
