"""``run --resume-at K``: does stopping a study after K trials and resuming it change it?

Preemptible jobs stop and resume studies from storage. Each resumed replicate runs in two
fresh processes: the first runs K trials in a storage (a private SQLite file per replicate, or
``--storage``) and exits; the second loads the study (``load_study`` with the same sampler
set-up) and runs the other trials. The resumed replicates are compared with each other and with
straight-through replicates (a normal run of the same plan), and the report says where they
part and why. Never prints, never exits.

A script (``run train.py --trials N --resume-at K``) is a preemptible job restarted: per
replicate, the first process runs the script with each of its studies capped at K trials; the
second runs the script again, in the same private copies of the script's storages (one private
folder per replicate, kept between the two processes), with each study capped to end at N in
all (a study it loads with K trials runs N-K more; one it keeps in memory starts over). The
resumed run is the second process's (its studies hold every trial, read from the storage). A
script whose second process loaded no study with trials has nothing to resume: bad input.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from repro_check.errors import ConfigError
from repro_check.execution.replicates import JobRunner, replicate_jobs, run_replicates
from repro_check.execution.runner import Interrupted, Job, ProgressCallback
from repro_check.plan import targets
from repro_check.plan.settings import STUDY_NAME, CheckPlan
from repro_check.results import report
from repro_check.results.records import STATUS_CANCELLED, STATUS_OK, RunRecord
from repro_check.results.resume import compare_resumed, resumed_nothing

RESUMED_GROUP = "resumed"
"""The resumed replicates' progress bars are labelled with this group."""


def in_memory_refusal(name: str) -> str:
    """Why a script's resume check cannot count: its restart loaded no study with trials."""
    return (
        f"{name} keeps its studies in memory: a restart starts them over, there is nothing to "
        "resume (give create_study a storage)"
    )


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
        return _script_resumed(plan, jobs, execute)
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


def _script_phase(job: Job, cap: int, folder: str, phase: int) -> Job:
    assert job.script is not None
    script = {**job.script, "resume": {"dir": folder, "phase": phase}}
    return dataclasses.replace(job, script=script, cap=cap, group=RESUMED_GROUP)


def _script_joined(first: RunRecord, second: RunRecord | None, at: int) -> RunRecord:
    """One resumed replicate of a script: the second process's run (its studies, loaded from
    the storage, hold every trial), with the first process's notes kept."""
    if second is None:  # the first process did not finish: the resume never ran
        return first
    wall = None if first.wall_s is None or second.wall_s is None else first.wall_s + second.wall_s
    notes = tuple(dict.fromkeys((*first.notes, *second.notes)))
    error = second.error
    return dataclasses.replace(
        second,
        error=None if error is None else f"after the resume at trial {at}: {error}",
        wall_s=wall,
        notes=notes,
    )


def _script_resumed(plan: CheckPlan, jobs: Sequence[Job], execute: Execute) -> list[RunRecord]:
    """``resumed_runs`` for a script: both processes of a replicate share its private folder
    (the copies of the script's storages), removed at the end. Raises ``ConfigError`` when no
    resuming process loaded a study with trials (the script keeps them in memory)."""
    at, total = plan.resume_at, plan.cap
    assert at is not None and total is not None and 1 <= at < total  # plan.config checks it
    folders = [tempfile.mkdtemp(prefix="repro-check-resume-") for _ in jobs]
    try:
        firsts = execute([_script_phase(j, at, f, 1) for j, f in zip(jobs, folders, strict=True)])
        # a replicate whose first process crashed is not resumed: it is reported as it is
        go = [r.status == STATUS_OK for r in firsts]
        seconds_jobs = [
            _script_phase(j, total, f, 2) for j, f, ok in zip(jobs, folders, go, strict=True) if ok
        ]
        seconds = execute(seconds_jobs) if seconds_jobs else []
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    ran = [r for r in seconds if r.finished]
    if ran and all(resumed_nothing(r) for r in ran):
        raise ConfigError(in_memory_refusal(targets.script_name(plan.target)))
    rest = iter(seconds)
    return [
        _script_joined(first, next(rest) if ok else None, at)
        for first, ok in zip(firsts, go, strict=True)
    ]


def _resumed(
    plan: CheckPlan,
    device: str,
    on_progress: ProgressCallback | None,
    runner: JobRunner | None = None,
) -> list[RunRecord]:
    quiet = dataclasses.replace(plan, fail_fast=False)  # no stop rule across the two processes

    def execute(jobs: Sequence[Job]) -> list[RunRecord]:
        return run_replicates(quiet, device, jobs, on_progress, runner=runner)

    return resumed_runs(plan, replicate_jobs(plan), execute)


def run_resume_check(
    plan: CheckPlan,
    device: str,
    on_progress: ProgressCallback | None = None,
    runner: JobRunner | None = None,
) -> report.RunReport:
    """The straight-through replicates (a normal run of ``plan``, in memory), then the resumed
    ones; the report is the straight-through one carrying the ``resume`` comparison."""
    assert plan.resume_at is not None
    if plan.storage is not None:
        from repro_check.storage.store import open_storage

        open_storage(plan.storage)  # a storage that cannot open is bad input, before any run
    straight_plan = dataclasses.replace(plan, storage=None, name=None)
    runs: list[RunRecord] = []
    try:
        runs = run_replicates(
            straight_plan, device, replicate_jobs(plan), on_progress, runner=runner
        )
        resumed = _resumed(plan, device, on_progress, runner)
    except Interrupted as stop:
        finished = runs or [run for result in stop.results for run in result.runs]
        raise report.interrupted(plan, device, finished) from stop
    stopped = plan.fail_fast and any(run.status == STATUS_CANCELLED for run in runs)
    result = report.build("run", plan, device, runs, stopped_early=stopped)
    check = compare_resumed(
        result.runs, resumed, plan.resume_at, plan.study, plan.seed, plan.tolerance
    )
    return dataclasses.replace(result, resume=check)
