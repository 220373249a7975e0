"""The ``run`` check as a library call: plan in, report out. Never prints, never exits."""

from __future__ import annotations

import dataclasses

from repro_check.checks import script_checks
from repro_check.checks.baseline import check_against, check_mode
from repro_check.errors import ConfigError
from repro_check.execution import devices
from repro_check.execution.replicates import (
    JobRunner,
    default_workers,
    replicate_jobs,
    run_replicates,
)
from repro_check.execution.runner import Interrupted, ProgressCallback
from repro_check.plan.settings import CheckPlan, settings_mismatches
from repro_check.plan.targets import is_script
from repro_check.results import report
from repro_check.results.baseline import finished_reference
from repro_check.results.records import STATUS_CANCELLED


def run_check(
    plan: CheckPlan,
    on_progress: ProgressCallback | None = None,
    baseline: report.RunReport | None = None,
    baseline_path: str = "",
    allow_settings_change: bool = False,
    runner: JobRunner | None = None,
) -> report.RunReport:
    """Run ``plan.runs`` replicates in fresh processes and compare them (and, given a
    baseline, compare them with it too). A baseline made with other study settings is refused
    before anything runs, unless ``allow_settings_change``. Ctrl-C raises
    ``report.CheckInterrupted`` carrying the partial report of the runs that had finished.
    With ``plan.resume_at`` the replicates are also stopped and resumed (``checks.resume``).
    ``runner`` runs the jobs (None: fresh worker processes)."""
    changed: list[str] = []
    if baseline is not None:
        finished_reference(baseline.runs, f"baseline {baseline_path}")  # before any run starts
        check_mode(baseline_path, baseline.mode, baseline.target, plan.target)
        changed = settings_mismatches(baseline.plan, plan)
        if changed and not allow_settings_change:
            raise ConfigError(
                f"baseline {baseline_path} was made with other settings ({'; '.join(changed)}); "
                "pass --allow-settings-change to compare anyway"
            )
    device = devices.resolve(plan.device)
    script = is_script(plan.target)
    if plan.resume_at is not None:
        from repro_check.checks.resume import run_resume_check

        result = run_resume_check(plan, device, on_progress, runner)
    elif plan.storage is not None:
        from repro_check.checks.shared import run_shared

        result = run_shared(plan, device, on_progress, runner)
    else:
        try:
            runs = run_replicates(plan, device, replicate_jobs(plan), on_progress, runner=runner)
        except Interrupted as stop:  # the partial report names the real device
            finished = [run for result in stop.results for run in result.runs]
            raise report.interrupted(plan, device, finished) from stop
        stopped = plan.fail_fast and any(run.status == STATUS_CANCELLED for run in runs)
        result = report.build("run", plan, device, runs, stopped_early=stopped)
    if script:
        workers = default_workers(plan, device, plan.runs)
        found = [
            script_checks.objective_note(plan.target),
            script_checks.folder_note(result.runs, workers),
        ]
        extra = tuple(note for note in found if note is not None)
        result = dataclasses.replace(result, extra_notes=result.extra_notes + extra)
    if baseline is None:
        return result
    check = check_against(
        baseline_path, baseline.runs, result.runs, plan.tolerance, changed, result.mode == "script"
    )
    return dataclasses.replace(result, baseline=check)
