"""The causes no control removes, found with every control on: trials racing in threads
(``parallel_trials``) and noise in the objective or script itself (``objective_noise``), located
at the user's line by the entropy audit or the line tracer when they can."""

from __future__ import annotations

from repro_check.checks.causes.edits import add_keyword, fix_text
from repro_check.checks.causes.model import (
    AuditSite,
    Finding,
    KnownCause,
    script_path,
    trial_list,
    where_runs_part,
)
from repro_check.checks.causes.seeding import (
    global_seeding,
    global_sites,
    in_worker,
    library_call,
    library_edit,
    library_why,
    merged_sites,
    optimize_calls,
    shown_trials,
    statement_at,
)
from repro_check.checks.causes.tolerance_advice import NOISE_SOURCES, noise_fix
from repro_check.execution.audit_library import LIBRARY
from repro_check.results.diagnosis import Edit, Experiment, Location
from repro_check.vocab import CauseId

# -- parallel_trials


def _parallel_evidence(finding: Finding) -> str:
    where = where_runs_part(finding.experiment)
    if finding.context.script:
        return f"optimize(n_jobs={finding.n_jobs}): trials run in threads and race; {where}"
    return (
        f"n_jobs={finding.n_jobs}: Optuna reseeds the sampler in every "
        f"thread and trials race; {where}"
    )


def _optimize_line(finding: Finding) -> Location | None:
    """A script's ``optimize`` call with ``n_jobs`` other than 1: in the script, or in the
    file that created its study."""
    ctx = finding.context
    if not ctx.script:
        return None
    files = [script_path(ctx.target)]
    files += [
        study.at.rpartition(":")[0]
        for run in finding.experiment.runs
        for study in run.studies
        if study.at and ":" in study.at
    ]
    found = optimize_calls(files)
    return found[0] if found else None


def _parallel_edit(finding: Finding) -> Edit | None:
    where = _optimize_line(finding)
    if where is None:
        return None
    return add_keyword(where, "optimize", "n_jobs", "1", replace=True)  # n_jobs=4 -> n_jobs=1


def _parallel_fix(finding: Finding) -> str:
    ctx = finding.context
    why = f"n_jobs={finding.n_jobs} runs the trials in threads that race: run them one at a time"
    edit = _parallel_edit(finding)
    if edit is not None:
        return fix_text(edit, why)
    if ctx.script:  # its own optimize call sets its trial count, which the plan does not know
        return f"# {why}: pass n_jobs=1 to the script's study.optimize call"
    return (
        f"# {why}\nstudy.optimize(objective, n_trials={ctx.study.trials}, n_jobs=1)\n"
        f"# checked so: repro-check run {ctx.target} --n-jobs 1"
    )


PARALLEL_TRIALS = KnownCause(
    CauseId.PARALLEL_TRIALS,
    "full control under n_jobs > 1 (then retried with n_jobs=1)",
    _parallel_evidence,
    _parallel_fix,
    _optimize_line,
    _parallel_edit,
)

_CERTAIN_FIXES = {
    "random.Random() without a seed": "random.Random() has no seed: random.Random(0)",
    "np.random.default_rng() without a seed": (
        "np.random.default_rng() has no seed: np.random.default_rng(0)"
    ),
    "random.seed() without a seed": "random.seed() has no seed: random.seed(0)",
    "np.random.seed() without a seed": "np.random.seed() has no seed: np.random.seed(0)",
    "np.random.RandomState() without a seed": (
        "np.random.RandomState() has no seed: np.random.RandomState(0)"
    ),
    "np.random.SeedSequence() without entropy": (
        "np.random.SeedSequence() has no entropy: np.random.SeedSequence(0)"
    ),
    "torch.seed()": "torch.seed() seeds torch from the OS: torch.manual_seed(0)",
    "torch.Generator().seed()": (
        "torch.Generator().seed() seeds the generator from the OS: call .manual_seed(0) "
        "instead, e.g. torch.Generator().manual_seed(0)"
    ),
}


_SEEDED_BY = {
    "random.Random() without a seed": ("Random", "x"),
    "np.random.default_rng() without a seed": ("default_rng", "seed"),
    "random.seed() without a seed": ("seed", "a"),
    "np.random.seed() without a seed": ("seed", "seed"),
    "np.random.RandomState() without a seed": ("RandomState", "seed"),
    "np.random.SeedSequence() without entropy": ("SeedSequence", "entropy"),
}
"""The call and keyword that seed each audited source, for an edit of its line."""


def located_edit(source: str, where: Location, seed: int) -> Edit | None:
    """The audited line with its generator seeded (``np.random.default_rng(seed=0)``)."""
    seeded = _SEEDED_BY.get(source)
    if seeded is None:
        return None
    return add_keyword(statement_at(where), seeded[0], seeded[1], str(seed))


def located_fix(source: str, kind: str, where: Location, seed: int = 0) -> str:
    """The fix for one audited call, written for its line: the line seeded, where an
    argument seeds it, else a comment that says what to do there."""
    if source in _CERTAIN_FIXES:
        edit = located_edit(source, where, seed)
        if edit is not None:
            return fix_text(edit, _CERTAIN_FIXES[source])
    head = f"# {where}: "
    if source in _CERTAIN_FIXES:
        return head + _CERTAIN_FIXES[source]
    if kind == "random":
        return (
            head + f"{source} differs in every process: draw from a generator seeded per "
            "trial instead, e.g. random.Random(seed * 100_003 + trial.number)"
        )
    if kind == "clock":
        return (
            head + f"{source}() reads the clock: results that depend on it (a time budget, "
            "an early stop on elapsed time) change with the machine's speed; bound the work "
            "by steps or epochs instead"
        )
    return (
        head + f"{source}: results that depend on the order in which threads or processes "
        "finish can differ; collect results in a fixed order, or use one worker"
    )


# -- objective_noise: where it enters


def audit_sites(full: Experiment) -> list[AuditSite]:
    """The lines of the user's code the audit saw call a source of variation in the fully
    controlled runs: the certain ones (an unseeded generator, os.urandom, an estimator left
    without ``random_state`` that draws in joblib's worker processes...), or, when there are
    none, the suspects (clock reads, threads and process pools), earliest trial first. A
    draw from this process's global streams is no noise here: full control seeded them."""
    sites = merged_sites(full.audits, ("random", "clock", "parallel", LIBRARY))
    certain = [s for s in sites if s.kind == "random" or in_worker(s)]
    chosen = certain or [s for s in sites if s.kind in ("clock", "parallel")]
    chosen.sort(key=lambda s: (min(shown_trials(s), default=1 << 30), s.location.line))
    return chosen


def _trace_words(finding: Finding) -> str:
    if finding.traced is not None:
        return f"; the first line where two processes part: {finding.traced.describe()}"
    if finding.trace_stopped is not None:
        return f"; the line tracer found no line where two processes part ({finding.trace_stopped})"
    return ""


def _noise_evidence(finding: Finding) -> str:
    full, site, probe = finding.experiment, finding.site, finding.probe
    if site is not None and site.kind == LIBRARY:
        drawn = shown_trials(site)
        callee, keyword = library_call(site)
        return (
            f"with every control on, {where_runs_part(full)}; {callee}(), built or called at "
            f"{statement_at(site.location)} without {keyword}, draws from NumPy's global stream "
            "in joblib's worker processes"
            + (f" (trials {trial_list(drawn)})" if drawn else "")
            + ", which every process seeds from the OS"
        )
    if site is not None:
        seen = f" (trials {trial_list(site.trials)})" if site.trials else ""
        verb = "calls" if site.kind == "random" else "may depend on"
        where = site.location
        return (
            f"with every control on, {where_runs_part(full)}; your code {verb} "
            f"{site.source} at {where}{seen}: {where.source}"
        )
    if probe is not None:
        stats = probe.stats
        spread = f"std {stats.std:.3g}" if stats else ""
        return (
            f"at fixed params {dict(probe.params)} (from trial {probe.trial}) the objective "
            f"returned {len(probe.values)} values across {probe.processes} fresh processes "
            f"spreading by {probe.max_abs_diff:.3g} ({spread}); every control was on"
            + _trace_words(finding)
        )
    if finding.context.script:  # no probe for a script: the line tracer looked instead
        return f"with every control on, {where_runs_part(full)}" + _trace_words(finding)
    return (
        f"with every control on, {where_runs_part(full)}; the objective at fixed params did not "
        "vary, so the noise is intermittent or depends on earlier trials"
    )


def _library_sites(finding: Finding) -> list[AuditSite]:
    """The worker's library site first, then every other line that left a library's seed
    unset, each statement once: full control seeded this process's global stream, so those
    draws did not part its runs, but ``run`` as written seeds nothing, and a fix that pastes
    must seed them all."""
    site = finding.site
    assert site is not None
    first = statement_at(site.location)
    seen = {(first.file, first.line)}
    sites = [site]
    for other in merged_sites(finding.experiment.audits, (LIBRARY,)):
        where = statement_at(other.location)
        if (where.file, where.line) not in seen:
            seen.add((where.file, where.line))
            sites.append(other)
    return sites


def _seeding_too(finding: Finding) -> tuple[Edit, str] | None:
    """The global streams seeded where the user's own code drew from them: full control
    seeded those draws, ``run`` as written does not (torch's too, which no hook sees)."""
    ctx, audits = finding.context, finding.experiment.audits
    if not (global_sites(audits) or ctx.torch_used):
        return None
    return global_seeding(ctx, audits, finding.runs_as_written)


def _library_parts(finding: Finding) -> list[tuple[Edit | None, str]]:
    """Each line the library fix changes, as (its edit, its printed text): every library
    call left unseeded, then the global streams' seeding; the fix prints them all, the
    cause's edits are those that are code (a line that cannot be rewritten gets words)."""
    seed = finding.context.seed
    parts: list[tuple[Edit | None, str]] = []
    for site in _library_sites(finding):
        edit = library_edit(site, seed)
        if edit is not None:
            parts.append((edit, fix_text(edit, library_why(site))))
        else:
            callee, keyword = library_call(site)
            where = statement_at(site.location)
            words = f"# {where}: {library_why(site)}; pass {keyword}={seed} to {callee}()"
            parts.append((None, words))
    seeding = _seeding_too(finding)
    if seeding is not None:
        parts.append((seeding[0], fix_text(*seeding)))
    return parts


def _noise_fix(finding: Finding) -> str:
    ctx, site, traced = finding.context, finding.site, finding.traced
    generic = noise_fix(ctx.tolerance)
    # then what the tolerance check found (a tolerance tried, or why none rescues it)
    tail = "" if ctx.script else "\n" + generic.removeprefix(NOISE_SOURCES).lstrip(";.\n")
    if site is not None and site.kind == LIBRARY:
        return "\n".join(text for _edit, text in _library_parts(finding)) + tail
    if site is not None:
        return located_fix(site.source, site.kind, site.location, ctx.seed) + tail
    if traced is not None:
        return f"# {traced.file}:{traced.line}: {traced.source}\n{generic}"
    return generic


def _noise_edits(finding: Finding) -> tuple[Edit, ...]:
    site, seed = finding.site, finding.context.seed
    if site is None:
        return ()
    if site.kind == LIBRARY:
        return tuple(edit for edit, _text in _library_parts(finding) if edit is not None)
    edit = located_edit(site.source, site.location, seed)
    return (edit,) if edit is not None else ()


def _noise_location(finding: Finding) -> Location | None:
    if finding.site is not None and finding.site.kind == LIBRARY:
        return statement_at(finding.site.location)
    if finding.site is not None:
        return finding.site.location
    traced = finding.traced
    return Location(traced.file, traced.line, traced.source) if traced is not None else None


OBJECTIVE_NOISE = KnownCause(
    CauseId.OBJECTIVE_NOISE,
    "full control (its entropy audit), the noise probe at fixed params, the line tracer",
    _noise_evidence,
    _noise_fix,
    _noise_location,
    edits=_noise_edits,
)

CAUSES = (PARALLEL_TRIALS, OBJECTIVE_NOISE)
