"""What ``objective_noise``'s fix says about a tolerance: the one tried against the fully
controlled runs, or why none rescues the check. Apart from the cause's wording so that the
advice (its margin, the trial count it names, the command to paste) is one module.

Advice holds on the next run only where nothing but the tolerance decides it: the tolerance is
ten times the spread measured at fixed params (rounded up), and a shorter check is offered only
over the sampler's start-up trials, which no run's noise can steer; never over the trials
before where these few runs happened to fork (another run forks sooner).
"""

from __future__ import annotations

import shlex

from repro_check.checks.causes.model import ToleranceCheck
from repro_check.plan.settings import (
    DEFAULT_RUNS,
    DEFAULT_SEED,
    DEFAULT_THREADS,
    CheckPlan,
    Controls,
    StudySettings,
)

NOISE_SOURCES = (
    "# remove the noise source in the objective: clock reads, unseeded RNGs such as\n"
    "# np.random.default_rng() without a seed, thread-order float reductions"
)


def run_command(plan: CheckPlan, study: StudySettings) -> str:
    """``repro-check run`` with the target and every setting of the checked study and
    comparison that is not ``run``'s default (``--trials`` and ``--atol`` are the advice's to
    add): pasted, it runs the check diagnose tried. Settings only a config file can give
    (sampler or pruner keyword arguments) are named in a trailing comment."""
    words = ["repro-check", "run", plan.target]
    default = StudySettings()
    if study.sampler != default.sampler:
        words += ["--sampler", study.sampler]
    if study.pruner != default.pruner:
        words += ["--pruner", study.pruner]
    if study.directions != default.directions:
        for direction in study.directions:
            words += ["--direction", direction]
    if study.n_jobs != plan.study.n_jobs or study.n_jobs != default.n_jobs:
        words += ["--n-jobs", str(study.n_jobs)]
    if plan.seed != DEFAULT_SEED:
        words += ["--seed", str(plan.seed)]
    if plan.runs != DEFAULT_RUNS:
        words += ["--runs", str(plan.runs)]
    if plan.threads != DEFAULT_THREADS:
        words += ["--threads", str(plan.threads)]
    if plan.device != "auto":
        words += ["--device", plan.device]
    if plan.controls != Controls():
        words += ["--controls", "all"]  # diagnose tried it with every control on
    if plan.tolerance.rtol:
        words += ["--rtol", f"{plan.tolerance.rtol:g}"]
    kwargs = [name for name in ("sampler_kwargs", "pruner_kwargs") if getattr(study, name)]
    config = f"  # with your config file's {' and '.join(kwargs)}" if kwargs else ""
    return shlex.join(words) + config


def _command(check: ToleranceCheck, trials: int) -> str:
    base = check.command or "repro-check run"
    command, _, comment = base.partition("  # ")
    text = f"{command} --trials {trials} --atol {check.atol_text}"
    return f"{text}  # {comment}" if comment else text


def noise_fix(check: ToleranceCheck | None) -> str:
    """Remove the noise; a tolerance only when one was tried and made the runs agree."""
    if check is None:
        return (
            NOISE_SOURCES + "\n# (no tolerance suggested: none could be checked against the runs)"
        )
    atol = check.atol_text
    if check.passed:
        return (
            NOISE_SOURCES + ";\n# or, if that much noise is acceptable, compare with a tolerance "
            f"ten times it\n# (checked: {check.runs} runs × {check.trials} trials agree with it):\n"
            f"# {_command(check, check.trials)}"
        )
    d = check.divergence
    if d is None and check.steered_at is None and check.reorder is not None:
        return _reorder_fix(check)
    if d is not None:
        size = f", |Δ| {d.max_abs_diff:.3g}" if d.max_abs_diff else ""
        where = f"with --atol {atol} the runs still part at trial {d.trial}, {d.field}{size}"
    else:
        where = (
            f"from trial {check.steered_at} on the runs get different params; within "
            f"--atol {atol} this time only"
        )
    # a split beyond a tolerance 10x the measured noise, or different params: the trials
    # themselves differ, the sampler steered apart by the noise it saw in earlier values
    text = (
        NOISE_SOURCES + ".\n"
        "# no tolerance rescues this check: the noise changes which params the sampler\n"
        f"# suggests next ({where})"
    )
    return text + _startup_advice(check)


def _reorder_fix(check: ToleranceCheck) -> str:
    noise, gap = check.reorder or (0.0, 0.0)
    atol = check.atol_text
    text = (
        NOISE_SOURCES + ".\n"
        "# no tolerance rescues this check: the noise (about "
        f"{noise:.2g}) can reorder trials whose values\n# are as close as {gap:.2g}, and "
        "the sampler then suggests other params\n"
        f"# ({check.runs} runs × {check.trials} trials agreed within --atol {atol} by luck)"
    )
    return text + _startup_advice(check)


def _startup_advice(check: ToleranceCheck) -> str:
    """The shorter check that holds: only the sampler's start-up trials (see
    ``ToleranceCheck.startup_prefix``), or nothing."""
    first = check.startup_prefix
    if first is None:
        return ""
    return (
        f";\n# or compare only the sampler's {first} start-up trials, which it suggests "
        f"without\n# looking at the values (checked: {check.runs} runs agree on them within "
        f"--atol {check.atol_text}):\n# {_command(check, first)}"
    )
