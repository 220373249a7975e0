"""What ``objective_noise``'s fix says about a tolerance: the one tried against the fully
controlled runs, or why none rescues the check. Apart from the cause's wording so that the
advice (its margin, the trial count it names) is one module."""

from __future__ import annotations

from repro_check.checks.causes.model import ToleranceCheck

NOISE_SOURCES = (
    "# remove the noise source in the objective: clock reads, unseeded RNGs such as\n"
    "# np.random.default_rng() without a seed, thread-order float reductions"
)


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
            f"(checked: {check.runs} runs × {check.trials} trials agree with it):\n"
            f"# repro-check run ... --atol {atol}"
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
    # a split beyond a tolerance 5-10x the measured noise, or different params: the trials
    # themselves differ, the sampler steered apart by the noise it saw in earlier values
    text = (
        NOISE_SOURCES + ".\n"
        "# no tolerance rescues this check: the noise changes which params the sampler\n"
        f"# suggests next ({where})"
    )
    first = check.agree_until
    if first > 0:
        text += (
            f";\n# or compare only the first {first} trials, which agree within it:\n"
            f"# repro-check run ... --trials {first} --atol {atol}"
        )
    return text


def _reorder_fix(check: ToleranceCheck) -> str:
    noise, gap = check.reorder or (0.0, 0.0)
    atol = check.atol_text
    text = (
        NOISE_SOURCES + ".\n"
        "# no tolerance rescues this check: the noise (about "
        f"{noise:.2g}) is larger than the gaps\n# between trials' values (down to {gap:.2g}), "
        "so it can reorder the trials and the sampler\n# then suggests other params "
        f"({check.runs} runs × {check.trials} trials agreed within --atol {atol} by luck)"
    )
    if check.startup:
        text += (
            f";\n# or compare only the sampler's {check.startup} start-up trials, which do not "
            f"use the values:\n# repro-check run ... --trials {check.startup} --atol {atol}"
        )
    return text
