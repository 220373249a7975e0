"""What a ``diff`` report says, as plain frozen sections (see ``sections``): what was compared
and the result, each side's results side by side, where the runs part, then the environments,
differences first. The console, Markdown and JUnit renderers only draw them.

Every string from the files is shortened here, once for every renderer, so drawing stays fast
(and a table readable) whatever the reports hold. Nothing here imports rich.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from repro_check.render import fmt
from repro_check.render.sections import Divergence
from repro_check.results.baseline import reference
from repro_check.results.report import RunReport
from repro_check.results.report_diff import RESULT_INCOMPLETE, RESULT_SAME, ReportDiff

SHOWN = 200
"""Longest string from a report shown as is (paths, environment values, param names)."""
SHOWN_LINE = 2000
"""Longest line of text built from a report (what was compared, the divergence, settings)."""

Tone = Literal["same", "incomplete", "different"]


def short(text: object, limit: int = SHOWN) -> str:
    value = str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


@dataclass(frozen=True)
class DiffHeadline:
    """``tone``: the result (``ReportDiff.result``): same, incomplete or different."""

    text: str
    tone: Tone


@dataclass(frozen=True)
class Compared:
    """What was compared, in words."""

    text: str


@dataclass(frozen=True)
class DiffResults:
    """Each side's own verdict, reference run, best value and params, side by side: rows of
    (label, A's value, B's value) under the columns ``a`` and ``b``."""

    a: str
    b: str
    rows: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class HistoriesAcross:
    """How many distinct histories every compared run of both reports made."""

    count: int


@dataclass(frozen=True)
class ToleranceNote:
    """A side was saved with another tolerance than the command's (which the diff uses)."""

    text: str


@dataclass(frozen=True)
class SettingsChanged:
    text: str


@dataclass(frozen=True)
class EnvLine:
    key: str
    a: str
    b: str
    differs: bool


@dataclass(frozen=True)
class DiffEnvironment:
    """The environment entries shown (the differing ones first; the identical ones too with
    ``--all-env``), how many identical ones are hidden, and whether none differs."""

    rows: tuple[EnvLine, ...]
    hidden: int
    identical: bool


DiffSection: TypeAlias = (
    DiffHeadline
    | Compared
    | DiffResults
    | Divergence
    | HistoriesAcross
    | ToleranceNote
    | SettingsChanged
    | DiffEnvironment
)


def diff_headline(diff: ReportDiff) -> DiffHeadline:
    if diff.result == RESULT_SAME:
        return DiffHeadline("SAME RESULTS: every run of both reports agrees on every trial", "same")
    if diff.result == RESULT_INCOMPLETE:
        text = "INCOMPLETE: the finished runs agree, but not every run finished"
        return DiffHeadline(text, "incomplete")
    d = diff.divergence
    if d is None:  # the runs agree, but a side is not reproducible by its own verdict
        own = "; ".join(
            f"{name} is {report.verdict}"
            for name, report in (("A", diff.a), ("B", diff.b))
            if not report.reproducible
        )
        return DiffHeadline(f"DIFFERENT RESULTS: {own}", "different")
    if diff.across:
        where = "they part"
    else:
        side = diff.divergence_runs[0][0] if diff.divergence_runs else "?"
        where = f"{side}'s own runs part"
    return DiffHeadline(f"DIFFERENT RESULTS: {where} at trial {d.trial} ({d.field})", "different")


def _results(diff: ReportDiff) -> DiffResults:
    ref_a, ref_b = reference(diff.a.runs), reference(diff.b.runs)
    rows = [
        ("own verdict", diff.a.verdict, diff.b.verdict),
        ("reference run", str(ref_a.index), str(ref_b.index)),
        ("best value", fmt.num(ref_a.best_value, 10), fmt.num(ref_b.best_value, 10)),
    ]
    params_a, params_b = ref_a.best_params or {}, ref_b.best_params or {}
    for name in sorted(params_a.keys() | params_b.keys()):
        rows.append(
            (
                f"param {short(name)}",
                short(fmt.param(params_a[name])) if name in params_a else "-",
                short(fmt.param(params_b[name])) if name in params_b else "-",
            )
        )
    histories = (diff.a.comparison.distinct_histories, diff.b.comparison.distinct_histories)
    rows.append(("distinct histories", str(histories[0]), str(histories[1])))
    return DiffResults(f"A: {short(diff.path_a)}", f"B: {short(diff.path_b)}", tuple(rows))


def _tolerance_note(name: str, report: RunReport, diff: ReportDiff) -> ToleranceNote | None:
    tol = report.saved_tolerance
    if tol is None or tol == diff.tolerance:
        return None
    return ToleranceNote(
        f"{name} was saved with atol={tol.atol:g}, rtol={tol.rtol:g}; this diff "
        "uses the command's (--atol/--rtol), not the file's"
    )


def _environment(diff: ReportDiff, all_env: bool) -> DiffEnvironment:
    differing = [row for row in diff.environment if row.differs]
    shown = diff.environment if all_env else differing
    rows = tuple(
        EnvLine(short(row.key), short(row.a or "-"), short(row.b or "-"), row.differs)
        for row in shown
    )
    return DiffEnvironment(rows, len(diff.environment) - len(shown), not differing)


def diff_sections(diff: ReportDiff, all_env: bool = False) -> tuple[DiffSection, ...]:
    """The diff's sections, in the order every renderer shows them; ``all_env``: the identical
    environment entries too (``--all-env``), else only the differing ones."""
    parts: list[DiffSection] = [
        diff_headline(diff),
        Compared(short(diff.compared, SHOWN_LINE)),
        _results(diff),
    ]
    if diff.divergence is not None:
        parts.append(Divergence(short(fmt.divergence_line(diff.divergence), SHOWN_LINE)))
    parts.append(HistoriesAcross(diff.distinct_histories))
    for name, report in (("A", diff.a), ("B", diff.b)):
        note = _tolerance_note(name, report, diff)
        if note is not None:
            parts.append(note)
    if diff.settings_changed:
        parts.append(SettingsChanged(short("; ".join(diff.settings_changed), SHOWN_LINE)))
    parts.append(_environment(diff, all_env))
    return tuple(parts)
