"""Run jobs in worker processes, a few at a time: ``run_jobs`` and its ``Scheduler``.

The pieces live beside this one: what a job is and returns (``execution.jobs``), the wire
types (``execution.protocol``), the check of each worker's stream (``execution.stream``) and
the worker process itself (``execution.process``). Here: which job waits, runs or ended, GPUs
placed one worker each, stop rules per group, timeouts, set-up errors that stop the check, and
Ctrl-C, which keeps every trial that already arrived.
"""

from __future__ import annotations

import json
import os
import queue
import time
from collections.abc import Sequence
from typing import Any

from repro_check.errors import ConfigError, DeviceError, ReproCheckError, TargetError
from repro_check.execution import controls as ctl
from repro_check.execution.gpus import ASSIGNED_ENV, Gpu
from repro_check.execution.jobs import (
    EveryStudy,
    Interrupted,
    Job,
    JobResult,
    Progress,
    ProgressCallback,
    RunOptions,
    StopRule,
    StopRuleFactory,
    not_started,
)
from repro_check.execution.process import WorkerProcess
from repro_check.execution.protocol import Error, Trial
from repro_check.execution.stream import MAX_STUDIES
from repro_check.results.records import STATUS_CANCELLED

__all__ = [
    "MAX_STUDIES",
    "EveryStudy",
    "Interrupted",
    "Job",
    "JobResult",
    "Progress",
    "ProgressCallback",
    "Scheduler",
    "StopRule",
    "StopRuleFactory",
    "run_jobs",
]

_SETUP_ERRORS: dict[str, type[ReproCheckError]] = {
    "target": TargetError,
    "config": ConfigError,
    "device": DeviceError,
}
"""Worker errors that stop the whole check (the target, its settings or the device are wrong
for every replicate alike), by their ``protocol.Error`` kind."""

_SWEEP_EVERY = 0.05
"""Seconds between checks of the workers for an exit or a timeout."""


def run_jobs(target: str, jobs: Sequence[Job], options: RunOptions) -> list[JobResult]:
    """Run ``jobs`` with at most ``options.workers`` processes at once; results in job order.

    With ``options.gpus``, a job takes a free GPU when its worker is spawned and gives it back
    once that worker has ended (so at most ``len(gpus)`` run at once).

    Raises ``TargetError``/``ConfigError``/``DeviceError`` when a worker reports that the target
    cannot load or the study cannot be built (stopping the rest), and ``Interrupted`` on Ctrl-C.
    When a group's stop rule (``options.stop_when``) says so, that group's workers are
    stopped (an experiment ends at its first divergence, ``--fail-fast`` at the first certain
    one).
    """
    scheduler = Scheduler(target, jobs, options)
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

    def __init__(self, target: str, jobs: Sequence[Job], options: RunOptions) -> None:
        self.target = target
        self.jobs = jobs
        self.options = options
        self.report: ProgressCallback = options.on_progress or (lambda _p: None)
        self.inbox: queue.Queue[tuple[int, Any]] = queue.Queue()
        self.pending: list[int] = list(range(len(jobs)))
        self.live: dict[int, WorkerProcess] = {}
        self.ended: dict[int, WorkerProcess] = {}
        self.warm: dict[int, WorkerProcess] = {}
        self.skipped: set[int] = set()
        self.rules: dict[tuple[str, int], StopRule] = {}
        """One stop rule per (group, study): a script's studies are watched apart."""
        self.stopped_groups: set[str] = set()
        self.last_sweep = 0.0
        self.gpus = tuple(options.gpus)
        self.free_gpus: list[Gpu] = list(options.gpus)
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

    def _total(self, job: Job, worker: WorkerProcess | None = None) -> int:
        """Trials the job is expected to stream: a script's as its studies announce them
        (0 while unknown), else the plan's."""
        if job.script is not None and worker is not None:
            return worker.stream.planned_total() or job.planned_trials
        return job.planned_trials

    def _report_queued(self) -> None:
        """Every job shows as queued until a slot frees for it."""
        for job in self.jobs:
            self.report(Progress(job.index, 0, self._total(job), group=job.group, queued=True))

    def _fill_slots(self) -> None:
        while self.pending and sum(w.busy for w in self.live.values()) < self.options.workers:
            if self.gpus and self.pending[0] not in self.gpu_of and not self.free_gpus:
                return  # every GPU runs a worker: wait for one to end
            self._launch(self.pending.pop(0))

    def _release(self, position: int) -> None:
        """The worker at ``position`` ended (or was dropped): its GPU is free again."""
        gpu = self.gpu_of.pop(position, None)
        if gpu is not None:
            self.free_gpus.append(gpu)

    def _spawn(self, position: int) -> WorkerProcess:
        job = self.jobs[position]
        env = ctl.worker_env(
            os.environ,
            job.controls,
            seed=job.seed,
            threads=job.threads or self.options.threads,
            device=self.options.device,
            hide_gpus=self.options.hide_gpus,
        )
        env.pop(ASSIGNED_ENV, None)  # never an inherited one (a check run inside a worker)
        if self.gpus:
            gpu = self.gpu_of.get(position) or self.free_gpus.pop(0)
            self.gpu_of[position] = gpu
            env["CUDA_VISIBLE_DEVICES"] = gpu.pin
            env[ASSIGNED_ENV] = json.dumps(gpu.to_dict())
        return WorkerProcess(job, env)

    def _launch(self, position: int) -> None:
        job = self.jobs[position]
        # shared checks: take the replicate only if nobody has it
        if self.options.claim is not None:
            claimed = self.options.claim(job)
            if claimed is None:
                self.skipped.add(position)
                self.report(Progress(job.index, 0, 0, status="taken elsewhere", group=job.group))
                if position in self.warm:
                    self.warm.pop(position).discard()
                self._release(position)
                return
            job = claimed
        worker = self.warm.pop(position, None) or self._spawn(position)
        spec = job.spec(self.target, job.threads or self.options.threads, self.options.device)
        worker.start(spec, position, self.inbox)
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

    def _handle(self, position: int, worker: WorkerProcess, raw: bytes) -> None:
        accepted = worker.handle(raw)
        job = worker.job
        total = self._total(job, worker)
        self.report(Progress(job.index, worker.trials_done, total, group=job.group))
        if accepted is None:
            return
        if isinstance(accepted, Error) and accepted.kind in _SETUP_ERRORS:
            self._stop_all("cancelled")
            raise _SETUP_ERRORS[accepted.kind](accepted.message)
        if isinstance(accepted, Trial):
            self._maybe_stop_group(position, accepted)

    def _maybe_stop_group(self, position: int, event: Trial) -> None:
        """Feed the group's stop rule the trial that arrived: the first study's (a probe's
        later studies are compared apart), or, for an ``EveryStudy`` factory, each of a
        script's studies with its own rule (study ``i`` of one run against study ``i`` of the
        others, as ``results.studies`` compares them)."""
        job = self.jobs[position]
        group = job.group
        if self.options.stop_when is None or group in self.stopped_groups:
            return
        if event.study != 0 and not (job.script and isinstance(self.options.stop_when, EveryStudy)):
            return
        rule = self.rules.setdefault((group, event.study), self.options.stop_when())
        if rule(position, self.live[position].trials[event.study][-1]):
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
                self.options.timeout is not None
                and worker.ended_by is None
                and worker.timed_out(now, self.options.timeout)
            ):
                worker.limit = self.options.timeout
                worker.kill("timeout")

    def _end(self, position: int) -> None:
        worker = self.live.pop(position)
        self.ended[position] = worker
        result = worker.finish()
        self._release(position)  # reaped, its group killed: the GPU is free
        if self.options.on_end is not None:
            self.options.on_end(result)
        job = worker.job
        self.report(
            Progress(
                job.index,
                worker.trials_done,
                self._total(job, worker),
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
            self.ended[p].finish() if p in self.ended else not_started(job)
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
                results.append(not_started(job))
        return results
