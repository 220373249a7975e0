"""``global_rng`` and ``trial_reseed``: the global ``random``/NumPy/torch streams, found by
switching their seeding off; where the user's code (or a library it calls) draws from them.

Located by the fully controlled runs' audit (``Finding.audits``): a library the user's line
left unseeded (``RandomForestClassifier()`` without ``random_state``, ``train_test_split``
without it) is fixed at that line, each such line an edit of its own; the user's own draws
(``np.random.normal()``) by seeding the streams before the first of them, or before the
script creates its study (``seeding``)."""

from __future__ import annotations

from repro_check.checks.causes.edits import fix_text
from repro_check.checks.causes.model import (
    Ablation,
    AuditSite,
    Finding,
    KnownCause,
    StudyFacts,
    ablation_evidence,
)
from repro_check.checks.causes.seeding import (
    BEFORE_STUDY,
    draws_shown,
    first_line,
    global_seeding,
    global_sites,
    library_edit,
    library_sites,
    library_why,
    objective_name,
    seeding_code,
    seeding_edit,
    statement_at,
    streams_of,
    trial_seed,
)
from repro_check.results.diagnosis import Edit, Location
from repro_check.vocab import CauseId

# -- global_rng, trial_reseed


def _streams_used(facts: StudyFacts) -> bool:
    """An objective that never touches a global stream cannot depend on its seeding."""
    return facts.script or facts.global_streams_used


def _global_rng_parts(finding: Finding) -> list[tuple[Edit, str]]:
    """The fix's edits with why each: every line that left a library unseeded, then the
    seeding of the global streams where the user's own code drew from them (or where
    nothing was located: the seeding alone)."""
    seed = finding.context.seed
    parts = []
    for site in library_sites(finding.audits, worker=False):
        edit = library_edit(site, seed)
        if edit is not None:
            parts.append((edit, library_why(site)))
    # the user's own draws, and torch's (no hook sees a torch draw), are seeded once too
    if not parts or global_sites(finding.audits) or finding.context.torch_used:
        seeding = global_seeding(finding.context, finding.audits, finding.runs_as_written)
        if seeding is not None:
            parts.append(seeding)
    return parts


def _global_rng_fix(finding: Finding) -> str:
    parts = _global_rng_parts(finding)
    if parts:
        return "\n".join(fix_text(edit, why) for edit, why in parts)
    ctx = finding.context
    streams = streams_of([], ctx.torch_used)
    code = seeding_code(script_or_none(ctx.target) or "", streams, str(ctx.seed))
    where = (
        "# seed the global streams once, at the top of the script, before it draws from them"
        if ctx.script
        else "# seed the global streams once where your script starts, before it creates the "
        "study\n# (repro-check run seeds them for you: the global_rng control)"
    )
    return f"{where}\n{code}"


def script_or_none(target: str) -> str | None:
    file = target.rpartition(":")[0] if ":" in target else target
    return file if file.endswith(".py") else None


def _global_rng_edits(finding: Finding) -> tuple[Edit, ...]:
    return tuple(edit for edit, _why in _global_rng_parts(finding))


def _global_rng_location(finding: Finding) -> Location | None:
    """The first line that left a library unseeded, else the user's first draw."""
    located = [*library_sites(finding.audits, worker=False), *global_sites(finding.audits)]
    return statement_at(located[0].location) if located else None


GLOBAL_RNG = KnownCause(
    CauseId.GLOBAL_RNG,
    "no_global_rng",
    ablation_evidence,
    _global_rng_fix,
    _global_rng_location,
    ablations=(
        Ablation(
            "no_global_rng",
            ("global_rng", "trial_reseed"),
            "global RNG seeding",
            wanted=_streams_used,
        ),
    ),
    edits=_global_rng_edits,
)


def _in_trial(finding: Finding) -> AuditSite | None:
    """The user's first draw from a global stream inside a trial."""
    return next((s for s in global_sites(finding.audits) if BEFORE_STUDY not in s.trials), None)


def _trial_reseed_edit(finding: Finding) -> Edit | None:
    ctx, site = finding.context, _in_trial(finding)
    if site is None:
        return None
    where = statement_at(site.location)
    seed = trial_seed(where, objective_name(ctx.target), ctx.seed)
    if seed == str(ctx.seed):
        return None  # not inside the objective: no trial to seed from
    streams = streams_of(global_sites(finding.audits), ctx.torch_used)
    return seeding_edit(where, streams, seed)


def _trial_reseed_fix(finding: Finding) -> str:
    edit = _trial_reseed_edit(finding)
    site = _in_trial(finding)
    if edit is not None and site is not None:
        drawn = draws_shown(first_line([site, *global_sites(finding.audits)]))
        why = f"{drawn} in each trial: seed them from the trial's number"
        return fix_text(edit, why)
    ctx = finding.context
    torch_call = "; torch.manual_seed(seed)" if ctx.torch_used else ""
    return (
        "# seed the global streams from the trial's number, first thing in the objective:\n"
        "def objective(trial):\n"
        f"    seed = {ctx.seed} * 100_003 + trial.number  # depends on the trial only\n"
        f"    random.seed(seed); np.random.seed(seed){torch_call}\n"
        "    # the rest of your objective"
    )


def _trial_reseed_location(finding: Finding) -> Location | None:
    site = _in_trial(finding)
    return statement_at(site.location) if site is not None else None


TRIAL_RESEED = KnownCause(
    CauseId.TRIAL_RESEED,
    "no_trial_reseed",
    ablation_evidence,
    _trial_reseed_fix,
    _trial_reseed_location,
    _trial_reseed_edit,
    ablations=(
        # without per-trial reseeding a run draws other numbers than full control's
        Ablation(
            "no_trial_reseed",
            ("trial_reseed",),
            "per-trial reseeding",
            fresh_runs=True,
            wanted=_streams_used,
        ),
    ),
)

CAUSES = (GLOBAL_RNG, TRIAL_RESEED)
