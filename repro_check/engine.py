"""The ``run`` check as a library call: plan in, report out. Never prints, never exits."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

from repro_check import devices, report
from repro_check.baseline import check_against, finished_reference, settings_mismatches
from repro_check.compare import DivergenceWatch
from repro_check.errors import ConfigError
from repro_check.records import STATUS_CANCELLED, RunRecord
from repro_check.runner import Interrupted, Job, ProgressCallback, run_jobs
from repro_check.settings import CheckPlan, Controls, StudySettings


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


def run_check(
    plan: CheckPlan,
    on_progress: ProgressCallback | None = None,
    baseline: report.RunReport | None = None,
    baseline_path: str = "",
    allow_settings_change: bool = False,
) -> report.RunReport:
    """Run ``plan.runs`` replicates in fresh processes and compare them (and, given a
    baseline, compare them with it too). A baseline made with other study settings is refused
    before anything runs, unless ``allow_settings_change``."""
    changed: list[str] = []
    if baseline is not None:
        finished_reference(baseline.runs, f"baseline {baseline_path}")  # before any run starts
        changed = settings_mismatches(baseline.plan, plan)
        if changed and not allow_settings_change:
            raise ConfigError(
                f"baseline {baseline_path} was made with other settings ({'; '.join(changed)}); "
                "pass --allow-settings-change to compare anyway"
            )
    device = devices.resolve(plan.device)
    if plan.storage is not None:
        from repro_check.shared import run_shared

        result = run_shared(plan, device, on_progress)
    else:
        try:
            runs = run_replicates(plan, device, replicate_jobs(plan), on_progress)
        except Interrupted as stop:
            stop.device = device  # so the partial report names the real device
            raise
        stopped = plan.fail_fast and any(run.status == STATUS_CANCELLED for run in runs)
        result = report.build("run", plan, device, runs, stopped_early=stopped)
    if baseline is None:
        return result
    check = check_against(baseline_path, baseline.runs, result.runs, plan.tolerance, changed)
    return dataclasses.replace(result, baseline=check)
