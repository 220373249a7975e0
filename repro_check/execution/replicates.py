"""Replicates of one plan as runner jobs, and running them: shared by every check and by shared
(storage-backed) checks, so both import it downward."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from repro_check.execution import gpus as gpu_layer
from repro_check.execution.gpus import Gpu
from repro_check.execution.jobs import RunOptions
from repro_check.execution.runner import (
    EveryStudy,
    Job,
    JobResult,
    ProgressCallback,
    StopRuleFactory,
    run_jobs,
)
from repro_check.plan import targets
from repro_check.plan.settings import CheckPlan, Controls, StudySettings
from repro_check.results.comparison import DivergenceWatch
from repro_check.results.records import RunRecord


class JobRunner(Protocol):
    """What runs a check's jobs: ``execution.runner.run_jobs`` (fresh worker processes), or, in
    tests, a fake that makes each job's results in process (``tests/fakes.py``). Every check
    takes one (``runner=None``: the real one, looked up when called), so the decisions made
    from the results can be tested without starting a process."""

    def __call__(
        self, target: str, jobs: Sequence[Job], options: RunOptions
    ) -> list[JobResult]: ...


def resolve_runner(runner: JobRunner | None) -> JobRunner:
    """``runner``, or the real process runner when None (looked up at call time)."""
    return runner if runner is not None else run_jobs


def default_workers(plan: CheckPlan, device: str, jobs: int, gpus: int = 0) -> int:
    """One per core, capped at the number of jobs; on CUDA one per placed GPU (never more: a
    GPU runs one replicate at a time), or 1 when no GPU could be listed."""
    if gpus:
        return max(1, min(plan.workers or gpus, gpus, jobs))
    if plan.workers is not None:
        return min(plan.workers, jobs)
    if device == "cuda":
        return 1
    return max(1, min(os.cpu_count() or 1, jobs))


def placement(plan: CheckPlan, device: str) -> list[Gpu]:
    """The GPUs the plan's replicates are placed on ([] off CUDA); ``DeviceError`` for an
    explicit ``--gpus`` without CUDA or naming a GPU that is not there."""
    return gpu_layer.select(plan.gpus, device, plan.device)


def replicate_jobs(
    plan: CheckPlan,
    *,
    controls: Controls | None = None,
    seeds: Sequence[int] | None = None,
    study: StudySettings | None = None,
) -> list[Job]:
    """One job per replicate: same seed for all unless ``seeds`` says otherwise."""
    seeds = seeds if seeds is not None else [plan.seed] * plan.runs
    script = script_spec(plan)
    return [
        Job(
            index=i,
            seed=seed,
            study=study or plan.study,
            controls=controls or plan.controls,
            studies=0 if script is not None else 1,
            script=script,
            cap=plan.cap,
        )
        for i, seed in enumerate(seeds)
    ]


def script_spec(plan: CheckPlan) -> dict[str, Any] | None:
    """What a worker needs to run the plan's script (None for an objective target)."""
    kind = targets.kind(plan.target)
    if kind == targets.OBJECTIVE:
        return None
    spec: dict[str, Any] = {"args": list(plan.args), "name": targets.script_name(plan.target)}
    if kind == targets.MODULE:
        spec["module"] = plan.target[len(targets.MODULE_PREFIX) :].strip()
    else:
        spec["path"] = plan.target
    if plan.parameters:
        spec["parameters"] = dict(plan.parameters)
    return spec


def run_plan_jobs(
    plan: CheckPlan,
    device: str,
    jobs: Sequence[Job],
    runner: JobRunner | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    stop_when: StopRuleFactory | None = None,
    claim: Callable[[Job], Job | None] | None = None,
    on_end: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Run ``jobs`` with ``runner`` (None: fresh worker processes) as ``plan`` says, the one
    place every check does: its target, thread count and timeout, its GPUs placed (or hidden,
    for an asked ``--device cpu``) and as many workers at once as they and the cores allow."""
    gpus = placement(plan, device)
    options = RunOptions(
        workers=default_workers(plan, device, len(jobs), len(gpus)),
        threads=plan.threads,
        device=device,
        timeout=plan.timeout,
        on_progress=on_progress,
        stop_when=stop_when,
        claim=claim,
        gpus=gpus,
        on_end=on_end,
        hide_gpus=plan.device == "cpu",
    )
    return resolve_runner(runner)(plan.target, jobs, options)


def run_replicates(
    plan: CheckPlan,
    device: str,
    jobs: Sequence[Job],
    on_progress: ProgressCallback | None = None,
    claim: Callable[[Job], Job | None] | None = None,
    on_end: Callable[[JobResult], None] | None = None,
    runner: JobRunner | None = None,
) -> list[RunRecord]:
    tol = plan.tolerance
    results = run_plan_jobs(
        plan,
        device,
        jobs,
        runner,
        on_progress=on_progress,
        stop_when=EveryStudy(lambda: DivergenceWatch(tol).add) if plan.fail_fast else None,
        claim=claim,
        on_end=on_end,
    )
    return [run for result in results for run in result.runs]
