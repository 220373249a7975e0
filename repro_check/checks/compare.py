"""``compare``: the same study under three conditions, side by side.

- ``fixed_seed``: every run the same seed, the plan's controls: exactly ``run`` (for a script
  that is the script as written unless ``controls`` says otherwise; ``plan.defaults``);
- ``seed_sweep``: seeds S, S+1, ..., under the plan's controls (every control, where those
  would leave the seeds nowhere to go): the spread a paper should report;
- ``uncontrolled``: what a user gets with no help: every control off (nothing seeded, the
  shell's PYTHONHASHSEED and thread counts, no deterministic-algorithm flags).
All conditions' replicates run in one pool of workers, so the cores stay busy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from repro_check.execution import devices
from repro_check.execution.replicates import JobRunner, replicate_jobs, run_replicates
from repro_check.execution.runner import Job, ProgressCallback
from repro_check.plan.settings import CheckPlan, Controls
from repro_check.results import report
from repro_check.results.compare_report import CompareReport
from repro_check.results.records import RunRecord
from repro_check.vocab import GATE, Condition

CONDITIONS: tuple[str, ...] = tuple(Condition)
"""``compare``'s conditions (``repro_check.vocab.Condition``); the gate is ``vocab.GATE``."""


def condition_controls(plan: CheckPlan, condition: str) -> Controls:
    """The controls one condition runs under. The gate's are the plan's, the ones ``run``
    applies with the same flags and config (``plan.config`` fills in ``default_controls``), so
    ``compare`` exits as ``run`` does. The seed sweep needs a control that takes the seed (a
    script as written takes none): without one it runs with every control."""
    if condition == Condition.UNCONTROLLED:
        return Controls.none()
    if condition == GATE:
        return plan.controls
    return plan.controls if plan.controls.take_seed else Controls()


def condition_jobs(plan: CheckPlan, condition: str, offset: int) -> list[Job]:
    """The replicates of one condition; job indices start at ``offset`` so they stay unique."""
    controls = condition_controls(plan, condition)
    if condition == Condition.SEED_SWEEP:
        seeds = [(plan.seed + i) % 2**32 for i in range(plan.runs)]  # seeds are 32-bit
    else:
        seeds = [plan.seed] * plan.runs
    return [
        dataclasses.replace(job, index=offset + job.index, group=condition)
        for job in replicate_jobs(plan, controls=controls, seeds=seeds)
    ]


def run_compare(
    plan: CheckPlan,
    conditions: Sequence[str] = CONDITIONS,
    on_progress: ProgressCallback | None = None,
    runner: JobRunner | None = None,
) -> CompareReport:
    """Every condition's replicates in one pool; ``runner`` runs them (None: fresh worker
    processes)."""
    device = devices.resolve(plan.device)
    jobs: list[Job] = []
    for condition in conditions:
        jobs += condition_jobs(plan, condition, offset=len(jobs))
    runs = run_replicates(plan, device, jobs, on_progress, runner=runner)
    by_condition: dict[str, list[RunRecord]] = {name: [] for name in conditions}
    for job, run in zip(jobs, runs, strict=True):
        offset = min(j.index for j in jobs if j.group == job.group)
        by_condition[job.group].append(_renumber(run, run.index - offset))
    reports = {}
    for name in conditions:
        condition_plan = _with_controls(plan, condition_controls(plan, name))
        reports[name] = report.build("compare", condition_plan, device, by_condition[name])
    return CompareReport(plan, device, reports)


def _renumber(run: RunRecord, index: int) -> RunRecord:
    return dataclasses.replace(run, index=index)


def _with_controls(plan: CheckPlan, controls: Controls) -> CheckPlan:
    return dataclasses.replace(plan, controls=controls)
