"""``run --resume-at K``: does stopping a study after K trials and resuming it change it?

Preemptible jobs stop and resume studies from storage. Each resumed replicate runs in two
fresh processes: the first runs K trials in a storage (a private SQLite file per replicate, or
``--storage``) and exits; the second loads the study (``load_study`` with the same sampler
set-up) and runs the other trials. The resumed replicates are compared with each other and with
straight-through replicates (a normal run of the same plan), and the report says where they
part and why. Never prints, never exits.
"""

from __future__ import annotations

import dataclasses
import secrets
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from repro_check.errors import ConfigError
from repro_check.execution.replicates import replicate_jobs, run_replicates
from repro_check.execution.runner import Interrupted, Job, ProgressCallback
from repro_check.plan import targets
from repro_check.plan.settings import STUDY_NAME, CheckPlan
from repro_check.results import report
from repro_check.results.records import STATUS_CANCELLED, STATUS_OK, RunRecord
from repro_check.results.resume import compare_resumed

RESUMED_GROUP = "resumed"
"""The resumed replicates' progress bars are labelled with this group."""

SCRIPT_REFUSAL = (
    "--resume-at needs an objective target (FILE.py:objective or pkg.mod:attr): a script "
    "runs its own studies, which the check cannot stop after K trials and resume yet"
)
"""Script mode has no resume: its first process would run the whole script and its second
would start the script afresh, so a "resumed" run would be a straight-through one."""


def _study_names(plan: CheckPlan, count: int, directory: Path) -> list[tuple[str, str]]:
    """(storage URL, study name) per replicate, each study created empty, as the claim of a
    shared check creates it: the first process loads it."""
    import optuna

    from repro_check.storage.store import open_storage

    directions = [optuna.study.StudyDirection[d.upper()] for d in plan.study.directions]
    places = []
    token = secrets.token_hex(4)
    for k in range(count):
        if plan.storage is None:
            url, name = f"sqlite:///{directory / f'run-{k}.db'}", STUDY_NAME
        else:  # never <name>/run-<k>: a shared check on the same storage must not see them
            url, name = (
                plan.storage,
                f"{plan.name}/resume-at-{plan.resume_at}/{token}/replicate-{k}",
            )
        open_storage(url).create_new_study(directions, name)
        places.append((url, name))
    return places


def _phase_jobs(
    at: int, jobs: Sequence[Job], places: Sequence[tuple[str, str]], second: bool
) -> list[Job]:
    return [
        dataclasses.replace(
            job,
            study=dataclasses.replace(job.study, trials=job.study.trials - at if second else at),
            storage=url,
            study_name=name,
            first_trial=at if second else 0,
            group=RESUMED_GROUP,
        )
        for job, (url, name) in zip(jobs, places, strict=True)
    ]


def _joined(first: RunRecord, second: RunRecord | None, at: int) -> RunRecord:
    """One resumed replicate: the study's trials from both processes (0..K-1, then K..N-1)."""
    if second is None:  # the first process did not finish: the resume never ran
        return first
    status, error = second.status, second.error
    wall = None if first.wall_s is None or second.wall_s is None else first.wall_s + second.wall_s
    notes = tuple(dict.fromkeys((*first.notes, *second.notes)))
    return dataclasses.replace(
        second,
        trials=first.trials + second.trials,
        status=status,
        error=None if error is None else f"after the resume at trial {at}: {error}",
        wall_s=wall,
        notes=notes,
    )


Execute = Callable[[Sequence[Job]], list[RunRecord]]
"""Runs jobs to completion (no stop rule: it would act across the two processes) and returns
their runs in the jobs' order."""


def resumed_runs(plan: CheckPlan, jobs: Sequence[Job], execute: Execute) -> list[RunRecord]:
    """Each of ``jobs`` (one whole study per replicate, in memory) run instead as two processes:
    ``plan.resume_at`` trials in a storage (``plan.storage``, else a private SQLite file per
    replicate), then a fresh process that loads the study and runs the rest. Returns each
    replicate's joined run (the first process's run alone when it stopped short)."""
    if targets.is_script(plan.target) or any(job.script is not None for job in jobs):
        raise ConfigError(SCRIPT_REFUSAL)  # never a resume that did not happen
    at = plan.resume_at or 0
    with tempfile.TemporaryDirectory(prefix="repro-check-resume-") as tmp:
        places = _study_names(plan, len(jobs), Path(tmp))
        firsts = execute(_phase_jobs(at, jobs, places, False))
        # a replicate whose first process stopped short (crashed, or a study.stop()) is not
        # resumed: it is reported as it is
        go = [r.status == STATUS_OK and len(r.trials) == at for r in firsts]
        seconds_jobs = [
            j for j, ok in zip(_phase_jobs(at, jobs, places, True), go, strict=True) if ok
        ]
        seconds = iter(execute(seconds_jobs) if seconds_jobs else [])
        return [
            _joined(first, next(seconds) if ok else None, at)
            for first, ok in zip(firsts, go, strict=True)
        ]


def _resumed(plan: CheckPlan, device: str, on_progress: ProgressCallback | None) -> list[RunRecord]:
    quiet = dataclasses.replace(plan, fail_fast=False)  # no stop rule across the two processes

    def execute(jobs: Sequence[Job]) -> list[RunRecord]:
        return run_replicates(quiet, device, jobs, on_progress)

    return resumed_runs(plan, replicate_jobs(plan), execute)


def run_resume_check(
    plan: CheckPlan, device: str, on_progress: ProgressCallback | None = None
) -> report.RunReport:
    """The straight-through replicates (a normal run of ``plan``, in memory), then the resumed
    ones; the report is the straight-through one carrying the ``resume`` comparison."""
    assert plan.resume_at is not None
    if targets.is_script(plan.target):
        raise ConfigError(SCRIPT_REFUSAL)  # before any worker starts
    if plan.storage is not None:
        from repro_check.storage.store import open_storage

        open_storage(plan.storage)  # a storage that cannot open is bad input, before any run
    straight_plan = dataclasses.replace(plan, storage=None, name=None)
    runs: list[RunRecord] = []
    try:
        runs = run_replicates(straight_plan, device, replicate_jobs(plan), on_progress)
        resumed = _resumed(plan, device, on_progress)
    except Interrupted as stop:
        finished = runs or [run for result in stop.results for run in result.runs]
        raise report.interrupted(plan, device, finished) from stop
    stopped = plan.fail_fast and any(run.status == STATUS_CANCELLED for run in runs)
    result = report.build("run", plan, device, runs, stopped_early=stopped)
    check = compare_resumed(
        result.runs, resumed, plan.resume_at, plan.study, plan.seed, plan.tolerance
    )
    return dataclasses.replace(result, resume=check)
