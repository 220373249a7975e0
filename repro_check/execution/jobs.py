"""What the checks hand the runner, and what they get back: ``Job``, ``JobResult``, ``Progress``.

A ``Job`` is the check's side of one worker process; ``Job.spec`` turns it into the
``protocol.JobSpec`` its worker reads. Kept apart from the scheduler so that a fake runner
(``tests/fakes.py``) and the worker handle share them without the process machinery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from repro_check.execution.gpus import Gpu
from repro_check.execution.protocol import JobSpec, ScriptSpec
from repro_check.plan.settings import Controls, StudySettings
from repro_check.results.records import STATUS_CANCELLED, RunRecord
from repro_check.results.trial_record import TrialRecord


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

    def spec(self, target: str, threads: int, device: str) -> JobSpec:
        """What its worker is handed (``protocol.JobSpec``): this job, for ``target``, with
        the check's thread count (unless the job has its own) and device."""
        return JobSpec(
            target=target,
            index=self.index,
            seed=self.seed,
            study=self.study.to_dict(),
            controls=self.controls.to_dict(),
            studies=self.studies,
            fixed_params=dict(self.fixed_params) if self.fixed_params is not None else None,
            warn_only=self.warn_only,
            threads=threads,
            device=device,
            storage=self.storage,
            study_name=self.study_name,
            script=msgspec.convert(dict(self.script), ScriptSpec) if self.script else None,
            cap=self.cap,
            audit=self.audit,
            trace=self.trace,
            trace_at=self.trace_at,
            first_trial=self.first_trial,
        )


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


@dataclass(frozen=True)
class EveryStudy:
    """A stop-rule factory whose rules each watch one study: the runner makes one per
    (group, study) of a script, so study ``i`` of one run is compared with study ``i`` of the
    others (``--fail-fast``). A bare factory watches the first study only (its rules may
    hold a reference run's first study, as ``diagnose``'s do)."""

    make: StopRuleFactory

    def __call__(self) -> StopRule:
        return self.make()


@dataclass(frozen=True)
class RunOptions:
    """How a batch of jobs runs, beside the target and the jobs: what every job runner
    (``runner.run_jobs``, ``replicates.JobRunner``, the tests' fake) takes, declared once.

    ``on_end`` is told each job's final result as soon as its worker has ended (a shared check
    stores that replicate's outcome then). With ``gpus`` each worker is pinned to one of them
    and a GPU runs one worker at a time; ``hide_gpus`` (``--device cpu`` asked for) gives every
    worker an empty ``CUDA_VISIBLE_DEVICES``. ``stop_when`` makes one stop rule per group, fed
    every trial of that group as it arrives. ``claim`` may take a job elsewhere (None: it is
    skipped) or hand back the job to run."""

    workers: int
    threads: int
    device: str
    timeout: float | None = None
    on_progress: ProgressCallback | None = None
    stop_when: StopRuleFactory | None = None
    claim: Callable[[Job], Job | None] | None = None
    gpus: Sequence[Gpu] = ()
    on_end: Callable[[JobResult], None] | None = None
    hide_gpus: bool = False


class Interrupted(Exception):
    """Ctrl-C: the workers were stopped; ``results`` holds what had finished."""

    def __init__(self, results: list[JobResult]) -> None:
        super().__init__("interrupted")
        self.results = results


def not_started(job: Job) -> JobResult:
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
