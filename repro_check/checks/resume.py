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
from collections.abc import Sequence
from pathlib import Path

from repro_check.execution.replicates import replicate_jobs, run_replicates
from repro_check.execution.runner import Interrupted, Job, ProgressCallback
from repro_check.plan.settings import STUDY_NAME, CheckPlan
from repro_check.results import report
from repro_check.results.records import STATUS_CANCELLED, STATUS_OK, RunRecord
from repro_check.results.resume import compare_resumed

RESUMED_GROUP = "resumed"
"""The resumed replicates' progress bars are labelled with this group."""


def _study_names(plan: CheckPlan, directory: Path) -> list[tuple[str, str]]:
    """(storage URL, study name) per replicate, each study created empty, as the claim of a
    shared check creates it: the first process loads it."""
    import optuna

    from repro_check.storage.store import open_storage

    directions = [optuna.study.StudyDirection[d.upper()] for d in plan.study.directions]
    places = []
    token = secrets.token_hex(4)
    for k in range(plan.runs):
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


def _phase_jobs(plan: CheckPlan, places: Sequence[tuple[str, str]], second: bool) -> list[Job]:
    at = plan.resume_at or 0
    trials = plan.study.trials - at if second else at
    study = dataclasses.replace(plan.study, trials=trials)
    jobs = replicate_jobs(plan, study=study)
    return [
        dataclasses.replace(
            job,
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


def _resumed(plan: CheckPlan, device: str, on_progress: ProgressCallback | None) -> list[RunRecord]:
    at = plan.resume_at or 0
    quiet = dataclasses.replace(plan, fail_fast=False)  # no stop rule across the two processes
    with tempfile.TemporaryDirectory(prefix="repro-check-resume-") as tmp:
        places = _study_names(plan, Path(tmp))
        firsts = run_replicates(quiet, device, _phase_jobs(plan, places, False), on_progress)
        # a replicate whose first process stopped short (crashed, or a study.stop()) is not
        # resumed: it is reported as it is
        go = [r.status == STATUS_OK and len(r.trials) == at for r in firsts]
        jobs = [j for j, ok in zip(_phase_jobs(plan, places, True), go, strict=True) if ok]
        seconds = iter(run_replicates(quiet, device, jobs, on_progress) if jobs else [])
        return [
            _joined(first, next(seconds) if ok else None, at)
            for first, ok in zip(firsts, go, strict=True)
        ]


def run_resume_check(
    plan: CheckPlan, device: str, on_progress: ProgressCallback | None = None
) -> report.RunReport:
    """The straight-through replicates (a normal run of ``plan``, in memory), then the resumed
    ones; the report is the straight-through one carrying the ``resume`` comparison."""
    assert plan.resume_at is not None
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
