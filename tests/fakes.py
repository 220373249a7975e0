"""A fake job runner: the checks' decisions tested in process, without a worker process.

``FakeRunner(script)`` has ``run_jobs``' signature (``execution.replicates.JobRunner``); pass
it as a check's ``runner=``. ``script(job)`` says what one job's worker would have streamed:

- a list of floats: one COMPLETE trial per value, numbered from ``job.first_trial``, with the
  params ``{"x": <its number>}`` (the same in every run, so only the values can part);
- a list of ``TrialRecord``: those trials;
- a ``JobResult``: exactly that (a crash, a timeout, an audit; see ``crashed``).

The value usually depends on ``job.controls`` (which control the experiment switched off),
``job.group`` (the experiment or ``compare`` condition) and ``job.index`` (unique per job in
one check: a value that depends on it differs in every run). ``values`` builds the common
case, ``parted`` a run that parts at trial k. Jobs run one after another in job order (as with
one worker); the stop rule is respected the way the real runner does it (the job that trips
it is cancelled with the trials it had, its group's later jobs are never started), as are
``claim`` and ``on_end``. Every job the runner was handed is kept in ``jobs``, each call's
in ``calls``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from repro_check.execution.jobs import RunOptions
from repro_check.execution.runner import (
    Job,
    JobResult,
    Progress,
    StopRule,
)
from repro_check.results.records import (
    STATUS_CANCELLED,
    STATUS_CRASHED,
    STATUS_OK,
    RunRecord,
    SamplerInfo,
    StudyRecord,
)
from repro_check.results.trial_record import TrialRecord

Scripted = Sequence[float] | Sequence[TrialRecord] | JobResult
Script = Callable[[Job], Scripted]


def values(job: Job, base: float = 0.5, shift: float = 0.0) -> list[float]:
    """One value per trial of ``job``'s study, ``base + number / 10 + shift`` each."""
    return [base + n / 10 + shift for n in range(job.first_trial, job.study.trials)]


def parted(job: Job, at: int, shift: float, base: float = 0.5) -> list[float]:
    """``values`` of a run that parts from the others at trial ``at`` by ``shift``."""
    return [
        base + n / 10 + (shift if n >= at else 0.0)
        for n in range(job.first_trial, job.study.trials)
    ]


def trials_of(job: Job, scripted: Sequence[float] | Sequence[TrialRecord]) -> list[TrialRecord]:
    trials = []
    for number, item in enumerate(scripted, job.first_trial):
        if isinstance(item, TrialRecord):
            trials.append(item)
        else:
            assert isinstance(item, float | int)
            trials.append(TrialRecord(number, "COMPLETE", {"x": float(number)}, (float(item),)))
    return trials


def run_of(
    job: Job,
    trials: Sequence[TrialRecord],
    status: str = STATUS_OK,
    error: str | None = None,
    environment: dict[str, Any] | None = None,
) -> RunRecord:
    """The run the real runner would record for ``job`` (a script's: one study, ``study``)."""
    studies: tuple[StudyRecord, ...] = ()
    if job.script is not None:
        sampler = SamplerInfo("TPESampler")
        studies = (StudyRecord("study", job.study.directions, sampler, tuple(trials)),)
    return RunRecord(
        index=job.index,
        job=(job.group, job.index),
        seed=job.seed,
        status=status,
        trials=tuple(trials),
        directions=job.study.directions,
        error=error,
        wall_s=0.0,
        environment=environment or {},
        studies=studies,
    )


def crashed(job: Job, scripted: Sequence[float] = (), why: str = "worker died") -> JobResult:
    """A job whose worker died after streaming ``scripted``."""
    return JobResult(job, [run_of(job, trials_of(job, scripted), STATUS_CRASHED, why)])


class FakeRunner:
    """``run_jobs`` in process: each job's results from ``script`` (see the module)."""

    def __init__(
        self,
        script: Script,
        environment: dict[str, Any] | None = None,
        later_study: Callable[[Job, int], Sequence[float]] | None = None,
    ) -> None:
        """``later_study(job, k)``: what study ``k`` (1, ...) of a job running several studies
        in one process streams (the process-state probe); None: the same as its first."""
        self.script = script
        self.environment = environment or {}
        self.later_study = later_study
        self.jobs: list[Job] = []
        self.calls: list[list[Job]] = []

    def groups(self) -> dict[str, list[Job]]:
        """Every job handed over so far, by group, in order."""
        found: dict[str, list[Job]] = {}
        for job in self.jobs:
            found.setdefault(job.group, []).append(job)
        return found

    def __call__(self, target: str, jobs: Sequence[Job], options: RunOptions) -> list[JobResult]:
        report = options.on_progress or (lambda _p: None)
        claim, stop_when, on_end = options.claim, options.stop_when, options.on_end
        self.calls.append(list(jobs))
        self.jobs += jobs
        rules: dict[str, StopRule] = {}
        stopped: set[str] = set()
        results = []
        for job in jobs:
            report(Progress(job.index, 0, job.planned_trials, group=job.group, queued=True))
        for position, job in enumerate(jobs):
            if job.group in stopped:
                results.append(_not_started(job))
                report(Progress(job.index, 0, 0, status=STATUS_CANCELLED, group=job.group))
                continue
            if claim is not None:
                claimed = claim(job)
                if claimed is None:
                    results.append(JobResult(job, []))
                    continue
                job = claimed
            result = self._result(job)
            if stop_when is not None and result.runs:
                rule = rules.setdefault(job.group, stop_when())
                result = self._watched(result, position, rule, stopped)
            if on_end is not None:
                on_end(result)
            done = len(result.runs[0].trials) if result.runs else 0
            status = result.runs[-1].status if result.runs else None
            report(Progress(job.index, done, job.planned_trials, status=status, group=job.group))
            results.append(result)
        return results

    def _result(self, job: Job) -> JobResult:
        scripted = self.script(job)
        if isinstance(scripted, JobResult):
            return scripted
        runs = [run_of(job, trials_of(job, scripted), environment=self.environment)]
        for k in range(1, 1 if job.script is not None else job.studies):
            later = self.later_study(job, k) if self.later_study is not None else scripted
            runs.append(run_of(job, trials_of(job, later), environment=self.environment))
        return JobResult(job, runs)

    @staticmethod
    def _watched(result: JobResult, position: int, rule: StopRule, stopped: set[str]) -> JobResult:
        """The first study's trials fed to the group's stop rule; if it trips, the run is
        cancelled with the trials up to that one, as a killed worker's would be."""
        first = result.runs[0]
        for kept, trial in enumerate(first.trials, 1):
            if rule(position, trial):
                stopped.add(result.job.group)
                cut = dataclasses.replace(
                    first,
                    status=STATUS_CANCELLED,
                    error="stopped before it finished",
                    trials=first.trials[:kept],
                )
                return dataclasses.replace(result, runs=[cut])
        return result


def _not_started(job: Job) -> JobResult:
    run = run_of(job, (), STATUS_CANCELLED, "not started")
    return JobResult(job, [run])
