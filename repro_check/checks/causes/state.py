"""The causes that live in state a process or a storage keeps: a second study in the same
process that differs (``process_state``), and a study stopped and resumed from its storage
that differs (``resume_sampler_state`` when the sampler lost its random state, else
``resume_state``)."""

from __future__ import annotations

import shlex

from repro_check.checks.causes.model import Finding, KnownCause, where_runs_part
from repro_check.plan.settings import StudySettings
from repro_check.results.resume import TPE_STARTUP, ResumeCheck
from repro_check.vocab import CauseId, Sampler, sampler_spec

# -- process_state


def _process_state_evidence(finding: Finding) -> str:
    return f"the second study in the same process differs: {where_runs_part(finding.experiment)}"


def _process_state_fix(_finding: Finding) -> str:
    return (
        "# reset module-level state at the start of the objective (caches, counters,\n"
        "# global models), or run each study in a fresh process"
    )


PROCESS_STATE = KnownCause(
    CauseId.PROCESS_STATE,
    "process_state (one fresh process runs the study's first quarter twice)",
    _process_state_evidence,
    _process_state_fix,
)

# -- resume_sampler_state, resume_state


def sampler_state_lost(check: ResumeCheck) -> bool:
    """The resumed runs got other params from the resume on, while the straight-through runs
    reproduce: the sampler's random state was not in the storage."""
    d = check.first_difference
    return (
        d is not None
        and d.field == "params"
        and d.trial >= check.at
        and check.straight_reproducible
    )


def _resume_evidence(finding: Finding) -> str:
    check = finding.resume
    assert check is not None and check.first_difference is not None
    d = check.first_difference
    return (
        f"stopped after {check.at} trials and resumed in a fresh process (load_study, the same "
        f"sampler set-up), the {check.between} runs part at trial {d.trial} ({d.field}: "
        f"{d.detail}): {check.reason}"
    )


def resume_sampler_fix(
    study: StudySettings, seed: int, at: int, target: str, startup: int | None = None
) -> str:
    """The paste-able fix for a sampler that lost its random state on resume: reseed it from
    the seed and the trials done (``startup``: TPE's start-up trials, when stopping right
    after them is the other way out). Complete code and commands: no placeholder to fill."""
    spec = sampler_spec(study.sampler)
    made = (
        f"optuna.samplers.{spec.optuna_class}" if spec is not None else study.sampler.split(":")[-1]
    )
    text = (
        "# the sampler's random state is not in the storage: reseed it on resume from the\n"
        "# seed and the trials done (deterministic again, though it is not a straight-through\n"
        "# run); the line goes right after your optuna.load_study(...) call:\n"
        f"study.sampler = {made}(seed={seed} + len(study.trials))"
    )
    if startup is not None:
        text += (
            f"\n# or stop and resume only right after its {startup} start-up trials\n"
            f"# (n_startup_trials), not at trial {at}"
        )
    command = shlex.join(["repro-check", "diagnose", target, "--resume-at", str(at)])
    return text + (
        "\n# or a sampler that resumes identically (a scrambled QMC sampler's points follow\n"
        f"# from its seed and the trial count); check it with:\n# {command} --sampler qmc"
    )


def _resume_sampler_state_fix(finding: Finding) -> str:
    check, ctx = finding.resume, finding.context
    assert check is not None
    if ctx.script:  # the resume comparison names the script's own sampler, at its line
        return check.fix or ""
    study = ctx.study
    startup = None
    if study.sampler == Sampler.TPE:  # measured: TPE resumes identically right after these
        configured = study.sampler_kwargs.get("n_startup_trials", TPE_STARTUP)
        startup = configured if isinstance(configured, int) and configured > 0 else None
    startup = startup if startup != check.at else None
    return resume_sampler_fix(study, ctx.seed, check.at, ctx.target, startup)


def _resume_state_fix(finding: Finding) -> str:
    check = finding.resume
    assert check is not None
    return "\n".join(f"# {line}" for line in (check.fix or "").splitlines())


RESUME_SAMPLER_STATE = KnownCause(
    CauseId.RESUME_SAMPLER_STATE,
    "resume (each replicate stopped after K trials and resumed in a fresh process)",
    _resume_evidence,
    _resume_sampler_state_fix,
)

RESUME_STATE = KnownCause(
    CauseId.RESUME_STATE,
    "resume (each replicate stopped after K trials and resumed in a fresh process)",
    _resume_evidence,
    _resume_state_fix,
)

CAUSES = (PROCESS_STATE, RESUME_SAMPLER_STATE, RESUME_STATE)
