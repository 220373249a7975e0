"""Replicates of one plan as runner jobs, and running them: shared by every check and by shared
(storage-backed) checks, so both import it downward."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from repro_check.execution.runner import Job, ProgressCallback, run_jobs
from repro_check.plan.settings import CheckPlan, Controls, StudySettings
from repro_check.results.comparison import DivergenceWatch
from repro_check.results.records import RunRecord


def default_workers(plan: CheckPlan, device: str, jobs: int) -> int:
    """One per core, capped at the number of jobs; 1 on CUDA (replicates would share a GPU)."""
    if plan.workers is not None:
        return min(plan.workers, jobs)
    if device == "cuda":
        return 1
    return max(1, min(os.cpu_count() or 1, jobs))


def replicate_jobs(
    plan: CheckPlan,
    *,
    controls: Controls | None = None,
    seeds: Sequence[int] | None = None,
    study: StudySettings | None = None,
) -> list[Job]:
    """One job per replicate: same seed for all unless ``seeds`` says otherwise."""
    seeds = seeds if seeds is not None else [plan.seed] * plan.runs
    return [
        Job(index=i, seed=seed, study=study or plan.study, controls=controls or plan.controls)
        for i, seed in enumerate(seeds)
    ]


def run_replicates(
    plan: CheckPlan,
    device: str,
    jobs: Sequence[Job],
    on_progress: ProgressCallback | None = None,
    claim: Callable[[Job], Job | None] | None = None,
) -> list[RunRecord]:
    tol = plan.tolerance
    results = run_jobs(
        plan.target,
        jobs,
        workers=default_workers(plan, device, len(jobs)),
        threads=plan.threads,
        device=device,
        timeout=plan.timeout,
        on_progress=on_progress,
        stop_when=(lambda: DivergenceWatch(tol).add) if plan.fail_fast else None,
        claim=claim,
    )
    return [run for result in results for run in result.runs]
