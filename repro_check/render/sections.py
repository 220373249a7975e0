"""What a report says, as plain frozen values: computed once, drawn by every text renderer.

``run_sections`` and ``compare_sections`` (and ``diagnose_sections`` and ``diff_sections``, in
modules of their own) turn a report into a tuple of sections, in the order they are shown; the
console, Markdown and JUnit renderers only draw them (each its own way: a rich panel, a ``###``
heading, a plain line). So the three cannot disagree on what a section holds, which sections a
report has, or their order. A renderer may leave a section out (the awaiting hint is
console-only), never add one.

Nothing here imports rich: building sections costs no start-up time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, TypeVar

from repro_check.render import fmt
from repro_check.results.compare_report import (
    DESCRIBED,
    LABELS,
    CompareReport,
    interval_text,
    label,
    own_seeded_samplers,
)
from repro_check.results.comparison import ParamSpread as ParamSpread_
from repro_check.results.report import (
    VERDICT_AWAITING,
    VERDICT_INCOMPLETE,
    VERDICT_NOT_REPRODUCIBLE,
    VERDICT_REPRODUCIBLE,
    RunReport,
)
from repro_check.vocab import GATE
from repro_check.vocab import Condition as ConditionName

TITLES: dict[str, str] = dict(LABELS)
"""How each ``compare`` condition is named in a report: ``compare_report.LABELS``, the one
vocabulary every output shares (a script's and an objective's alike)."""


def title(condition: str, script: bool = False) -> str:
    """``condition``'s label; ``script`` is kept for callers and changes nothing (one name
    for a condition in every mode and every output)."""
    return label(condition)


S = TypeVar("S")


def find(parts: Iterable[object], kind: type[S]) -> S | None:
    """The first section of type ``kind`` among ``parts`` (None when the report has none)."""
    return next((part for part in parts if isinstance(part, kind)), None)


# --- run ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Headline:
    """The verdict line, under ``repro-check {command}``."""

    command: str
    verdict: str
    text: str


@dataclass(frozen=True)
class Settings:
    text: str


@dataclass(frozen=True)
class StudyHeading:
    """Script mode: the study the sections after it describe (up to the next heading):
    which one, how the script built it, and whether the runs agree on it."""

    text: str
    agrees: bool


@dataclass(frozen=True)
class BestTable:
    """Best per run; ``reference`` is the run the ``≠`` marks compare against."""

    table: fmt.BestTable
    reference: int | None


@dataclass(frozen=True)
class ParetoTable:
    table: fmt.ParetoTable


@dataclass(frozen=True)
class Divergence:
    """The first divergence among the runs: shown verbatim (a code span in Markdown)."""

    text: str


@dataclass(frozen=True)
class Baseline:
    text: str


@dataclass(frozen=True)
class Resume:
    """``run --resume-at``: the resumed runs against each other and the straight-through ones;
    the reason and the fix when they part (the fix holds code: never folded)."""

    text: str
    reason: str | None = None
    fix: str | None = None


@dataclass(frozen=True)
class Spread:
    """``Best value: ...`` (or ``Pareto front: ...``) and the distinct histories."""

    label: Literal["Best value", "Pareto front"]
    text: str
    histories: str


@dataclass(frozen=True)
class ParamSpread:
    """The best params that vary across runs: (name, spread) pairs; never empty."""

    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class FailedTrials:
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Notes:
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Environment:
    text: str


@dataclass(frozen=True)
class Hint:
    """What to do next: a command to paste (never folded). ``awaiting``: how to get the
    verdict later (console only); else how to find the cause (``diagnose``)."""

    text: str
    awaiting: bool = False


RunSection: TypeAlias = (
    Headline
    | Settings
    | StudyHeading
    | BestTable
    | ParetoTable
    | Divergence
    | Baseline
    | Resume
    | Spread
    | ParamSpread
    | FailedTrials
    | Notes
    | Environment
    | Hint
)


def _study_parts(report: RunReport, baseline: bool) -> list[RunSection]:
    """One study's table, divergence and spread (a script's report has one set per study)."""
    comparison = report.comparison
    parts: list[RunSection] = [BestTable(fmt.best_table(report), fmt.reference_index(report))]
    front = fmt.pareto_table(report)
    if front is not None:
        parts.append(ParetoTable(front))
    if comparison.divergence is not None:
        parts.append(Divergence(fmt.divergence_line(comparison.divergence)))
    if baseline and report.baseline is not None:
        parts.append(Baseline(fmt.baseline_line(report)))
    if report.resume is not None:
        parts.append(Resume(report.resume.summary(), report.resume.reason, report.resume.fix))
    if front is not None:
        parts.append(Spread("Pareto front", fmt.pareto_line(report), fmt.histories_text(report)))
    else:
        best = fmt.stats_line(comparison.best_value)
        parts.append(Spread("Best value", best, fmt.histories_text(report)))
    varying = tuple(
        (s.name, fmt.spread_line(s)) for s in comparison.best_params.values() if s.varies
    )
    if varying:
        parts.append(ParamSpread(varying))
    return parts


def run_sections(report: RunReport) -> tuple[RunSection, ...]:
    """The run report's sections, in the order every renderer shows them."""
    parts: list[RunSection] = [
        Headline(report.command, report.verdict, fmt.headline(report)),
        Settings(fmt.settings_line(report)),
    ]
    if report.studies is None:
        parts.extend(_study_parts(report, baseline=True))
    else:
        for compared in report.studies.studies:
            parts.append(StudyHeading(fmt.study_heading(compared), compared.agrees))
            parts.extend(_study_parts(fmt.study_report(report, compared), baseline=False))
        if report.baseline is not None:
            parts.append(Baseline(fmt.baseline_line(report)))
    if report.failure_lines:
        parts.append(FailedTrials(tuple(report.failure_lines)))
    if report.notes:
        parts.append(Notes(tuple(report.notes)))
    parts.append(Environment(fmt.environment_line(report.environment)))
    if report.verdict == VERDICT_AWAITING:
        parts.append(Hint(fmt.awaiting_hint(report), awaiting=True))
    elif report.verdict == VERDICT_NOT_REPRODUCIBLE and not fmt.only_resume_differs(report):
        parts.append(Hint(fmt.diagnose_hint(report)))
    return tuple(parts)


# --- compare -----------------------------------------------------------------------------------


def gate_verdict(report: CompareReport) -> str:
    """The verdict ``compare`` is judged by: that of the gate (``fixed_seed``); without it,
    only whether every run could finish (as ``CompareReport.exit_code``)."""
    gate = report.conditions.get(GATE)
    if gate is not None:
        return gate.verdict
    return VERDICT_REPRODUCIBLE if report.exit_code == 0 else VERDICT_INCOMPLETE


@dataclass(frozen=True)
class CompareHeadline:
    target: str
    verdict: str
    """``gate_verdict``: what the exit code says."""
    sentence: str


@dataclass(frozen=True)
class Condition:
    """One condition's results, every cell as text."""

    name: str
    title: str
    verdict: str
    """The condition's report's verdict (what its JSON says)."""
    outcome: str
    """What its verdict cell shows: the verdict, or for a described condition (the seed
    sweep, meant to vary) that it is not judged."""
    can_fail: bool
    """It decides whether ``compare`` exits 1 (only the gate does)."""
    can_error: bool
    """It decides whether ``compare`` exits 3: the gate, or every condition when there is none."""
    seeds: str
    best_value: str
    histories: str
    first_part: str
    params: dict[str, str] = field(hash=False)
    """The spread of each best param the condition has."""
    report: RunReport = field(repr=False, compare=False)


@dataclass(frozen=True)
class Conditions:
    rows: tuple[Condition, ...]
    params: tuple[str, ...]
    """Every best param of any condition, sorted."""


@dataclass(frozen=True)
class Divergences:
    """(condition title, divergence line) for each condition whose runs part; never empty."""

    rows: tuple[tuple[str, str], ...]


CompareSection: TypeAlias = CompareHeadline | Settings | Conditions | Divergences | Notes


NOT_JUDGED = "not judged (meant to vary)"
"""The verdict cell of a described condition (``compare_report.DESCRIBED``)."""


def _seeds(name: str, report: RunReport) -> str:
    """The seeds the runs had, as they were: a script's own (its samplers' seeds) where the
    check handed it none, never the plan's placeholder."""
    if report.plan.script and not report.plan.controls.take_seed:
        own = dict.fromkeys(fmt.run_seed(report.plan, run) for run in report.runs)
        return "; ".join(text for text in own if text) or "as the script sets them"
    if name == ConditionName.UNCONTROLLED:
        return "unseeded"
    seeds = sorted({run.seed for run in report.runs})
    text = ", ".join(map(str, seeds)) if len(seeds) <= 4 else f"{seeds[0]}..{seeds[-1]}"
    if report.plan.script:  # a sampler the script seeded itself keeps its seed
        kept = {f"sampler seed {sampler.seed}" for sampler in own_seeded_samplers(report)}
        text = "; ".join([text, *sorted(kept)])
    return text


def _outcome(name: str, report: RunReport) -> str:
    if name in DESCRIBED and report.verdict in (VERDICT_REPRODUCIBLE, VERDICT_NOT_REPRODUCIBLE):
        return NOT_JUDGED
    return report.verdict


def best_value_cell(report: RunReport) -> str:
    """The best value's spread, with how many runs it rests on and the mean's 95% interval."""
    stats = report.comparison.best_value
    return "-" if stats is None else f"{fmt.stats_line(stats)}; {interval_text(stats)}"


def _param_cell(spread: ParamSpread_) -> str:
    line = fmt.spread_line(spread)
    return f"{line}; n={spread.stats.n}" if spread.stats is not None else line


def _first_part(report: RunReport) -> str:
    if report.studies is not None:
        return fmt.script_first_part(report) or "-"
    divergence = report.comparison.divergence
    return f"trial {divergence.trial} ({divergence.field})" if divergence else "-"


def _condition(report: CompareReport, name: str, condition: RunReport) -> Condition:
    spreads = condition.comparison.best_params
    return Condition(
        name=name,
        title=label(name),
        verdict=condition.verdict,
        outcome=_outcome(name, condition),
        can_fail=name == GATE,
        can_error=name == GATE or GATE not in report.conditions,
        seeds=_seeds(name, condition),
        best_value=best_value_cell(condition),
        histories=fmt.histories_text(condition),
        first_part=_first_part(condition),
        params={p: _param_cell(spread) for p, spread in spreads.items()},
        report=condition,
    )


def compare_sections(report: CompareReport) -> tuple[CompareSection, ...]:
    """The ``compare`` report's sections, in the order every renderer shows them."""
    rows = tuple(_condition(report, name, c) for name, c in report.conditions.items())
    params = tuple(sorted({p for row in rows for p in row.params}))
    parts: list[CompareSection] = [
        CompareHeadline(report.plan.target, gate_verdict(report), report.sentence),
        Settings(fmt.compare_settings_line(report)),
        Conditions(rows, params),
    ]
    parted = tuple(
        (label(name), fmt.divergence_line(d))
        for name, c in report.conditions.items()
        if (d := fmt.first_divergence(c)) is not None
    )
    if parted:
        parts.append(Divergences(parted))
    notes = labelled_notes(report)
    if notes:
        parts.append(Notes(notes))
    return tuple(parts)


def labelled_notes(report: CompareReport) -> tuple[str, ...]:
    """Every condition's notes, each once, opening with the conditions it holds for ("fixed
    seed: ...", "every condition: ..."): two conditions' notes may differ (a sampler the check
    seeded in one, left unseeded in the other) and must not read as a contradiction."""
    holders: dict[str, list[str]] = {}
    for name, condition in report.conditions.items():
        for note in condition.notes:
            holders.setdefault(note, [])
            if name not in holders[note]:
                holders[note].append(name)

    def held_by(names: list[str]) -> str:
        if len(report.conditions) > 1 and len(names) == len(report.conditions):
            return "every condition"
        return ", ".join(map(label, names))

    return tuple(f"{held_by(names)}: {note}" for note, names in holders.items())


def condition_sections(row: Condition) -> tuple[RunSection, ...]:
    """One condition's report as run sections (JUnit's per-condition output). A described
    condition (the seed sweep) is not judged: its headline describes the spread instead of a
    verdict, and it gets no hint to diagnose what is meant to vary."""
    parts = run_sections(row.report)
    if row.name not in DESCRIBED or row.outcome != NOT_JUDGED:
        return parts
    described = (
        f"{row.title.upper()} ({NOT_JUDGED}): seeds {row.seeds}; best value {row.best_value}; "
        f"{row.histories} distinct histories"
    )
    return tuple(
        Headline(part.command, part.verdict, described) if isinstance(part, Headline) else part
        for part in parts
        if not isinstance(part, Hint)
    )
