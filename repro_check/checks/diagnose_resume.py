"""``diagnose``'s resume experiment (objectives and scripts): each replicate stopped after K
trials in a storage and resumed in a fresh process (``checks.resume``), against the runs of the
experiment that reproduced (the straight-through replicates, reused), with a cause and its fix
when resuming changes the study (worded by the registry's resume causes)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from repro_check.checks.causes import Finding, FixContext, known
from repro_check.checks.causes.state import sampler_state_lost
from repro_check.checks.lab import Found, Lab
from repro_check.checks.resume import resumed_runs
from repro_check.errors import ConfigError
from repro_check.execution.replicates import script_spec
from repro_check.execution.runner import Job
from repro_check.plan.settings import CheckPlan, Controls, StudySettings
from repro_check.redact import redact
from repro_check.results import report
from repro_check.results.diagnosis import Cause, Experiment
from repro_check.results.records import RunRecord
from repro_check.results.resume import ResumeCheck, compare_resumed
from repro_check.vocab import CauseId

RESUME_EXPERIMENT = "resume"
NO_RESUME_ONE_TRIAL = "a 1-trial study cannot be stopped and resumed: no resume experiment"


def resume_point(plan: CheckPlan) -> tuple[int, bool] | None:
    """(K, picked here) for the resume experiment: ``--resume-at K``, or, when the study uses
    a storage without it, half the trials; None: no resume experiment."""
    if plan.resume_at is not None:
        return plan.resume_at, False
    if script_spec(plan) is not None:  # a script: only --resume-at (its --trials is the cap)
        return None
    if plan.storage is None or plan.study.trials < 2:
        return None
    return plan.study.trials // 2, True


def _resume_verdict(check: ResumeCheck) -> str:
    d = check.first_difference
    broken = any(not run.finished for run in check.runs)
    if broken and (d is None or d.field == "trial_count"):
        return report.VERDICT_INCOMPLETE
    return report.VERDICT_REPRODUCIBLE if d is None else report.VERDICT_NOT_REPRODUCIBLE


def _resume_cause(
    check: ResumeCheck, experiment: Experiment, context: FixContext
) -> tuple[Cause, ...]:
    """The cause the registry words for a resume that changed the study, if it did."""
    d = check.first_difference
    if d is None or experiment.verdict != report.VERDICT_NOT_REPRODUCIBLE:
        return ()
    cause_id = CauseId.RESUME_SAMPLER_STATE if sampler_state_lost(check) else CauseId.RESUME_STATE
    finding = Finding(experiment, context, d.trial, resume=check)
    return (known(cause_id).found(finding),)


def resume_experiment(
    lab: Lab, full: Experiment, study: StudySettings, controls: Controls | None = None
) -> Found:
    """Each replicate stopped after K trials in a storage and resumed in a fresh process, with
    ``full``'s controls (every control, unless given), compared with ``full``'s runs (the
    straight-through replicates, reused: same study, same controls) and with each other. A
    script is resumed in private copies of its own storages (``checks.resume``). Returns the
    experiment (none when it could not run, with a warning saying why), its cause if resuming
    changed the study, and its warnings."""
    controls = controls if controls is not None else Controls()
    script = script_spec(lab.plan) is not None
    point = resume_point(lab.plan)
    if point is None:
        if lab.plan.storage is not None:
            return Found(warnings=(NO_RESUME_ONE_TRIAL,))
        return Found()
    at, chosen = point
    if full.verdict != report.VERDICT_REPRODUCIBLE:
        return Found(
            warnings=(
                f"the resume experiment (stop after {at} trials, resume in a fresh process) did "
                "not run: the fully controlled runs differ already, so a resume cannot be judged",
            )
        )
    plan = dataclasses.replace(lab.plan, resume_at=at)

    def execute(jobs: Sequence[Job]) -> list[RunRecord]:
        return [run for result in lab.run(jobs, stop_early=False) for run in result.runs]

    jobs = lab.jobs(RESUME_EXPERIMENT, controls, study, lab.replicates)
    try:
        resumed = resumed_runs(plan, jobs, execute)
    except ConfigError as exc:  # a script that keeps its studies in memory: nothing to resume
        return Found(warnings=(f"no resume experiment: {exc}",))
    resumed = [dataclasses.replace(run, index=i) for i, run in enumerate(resumed)]
    check = compare_resumed(full.runs, resumed, at, study, lab.plan.seed, lab.plan.tolerance)
    if script:
        where = "private copies of the script's storages"
    else:
        where = "a private SQLite file each" if plan.storage is None else redact(plan.storage)
    total = plan.cap if script and plan.cap is not None else study.trials
    picked = " (half the trials: the study uses a storage; pick K with --resume-at)"
    experiment = Experiment(
        RESUME_EXPERIMENT,
        f"stopped after {at} of {total} trials{picked if chosen else ''} in {where}, "
        "resumed in a fresh process",
        controls,
        _resume_verdict(check),
        check.first_difference,
        tuple(check.runs),
        study.n_jobs,
        resume=check,
        resume_chosen=chosen,
        straight_through=full.id,
    )
    causes = _resume_cause(check, experiment, lab.context(study))
    warnings = [
        f"resumed run {run.index} {run.status}: {run.error}" for run in resumed if not run.finished
    ]
    if chosen:
        warnings.append(
            f"the study uses a storage: the resume experiment stopped each replicate after "
            f"{at} of {study.trials} trials (half) and resumed it; --resume-at K picks another K"
        )
    return Found((experiment,), causes, tuple(warnings))
