"""GitHub-flavoured Markdown: a compact summary for pull-request comments and
``$GITHUB_STEP_SUMMARY``.

It draws the same ``sections`` as the console and JUnit, so the three always agree; it
computes nothing. Text that can carry user data (the target, params, errors) is
escaped, so it cannot break the table or turn into links, HTML or emphasis.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, assert_never

from repro_check.plan.notebooks import shown_locations
from repro_check.render import fmt, sections, sections_diagnose, sections_diff
from repro_check.render.kinds import Kind, Report, by_kind
from repro_check.results.compare_report import CompareReport
from repro_check.results.report import (
    VERDICT_AWAITING,
    VERDICT_DIFFERS_FROM_BASELINE,
    VERDICT_NOT_REPRODUCIBLE,
    VERDICT_REPRODUCIBLE,
    RunReport,
)
from repro_check.results.report_diff import ReportDiff

if TYPE_CHECKING:
    from repro_check.results.diagnosis import Diagnosis

ICONS: dict[str, str] = {
    VERDICT_REPRODUCIBLE: "✅",
    VERDICT_NOT_REPRODUCIBLE: "❌",
    VERDICT_DIFFERS_FROM_BASELINE: "❌",
    VERDICT_AWAITING: "⏳",
}
"""By verdict (incomplete and interrupted are ⚠️): an awaiting check exits 0 but has not passed."""
TONE_ICONS: dict[str, str] = {
    "clean": "✅",
    "unexplained": "❌",
    "causes": "❌",
    "same": "✅",
    "different": "❌",
}
"""``diagnose`` and ``diff`` headlines by tone (incomplete is ⚠️)."""
MARK = " ≠"

_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#])")
_BLOCK_START = re.compile(r"^([+\-=]|\d+[.)])")
_NEWLINES = re.compile(r"\s*[\r\n]+\s*")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _one_line(text: str) -> str:
    """One line, with control characters (ANSI escapes from a worker's stderr) as ``\\xNN``
    (and a notebook cell's location spelled out: ``tune.ipynb, cell 7 (In [7]), line 3``)."""
    text = _NEWLINES.sub(" ", shown_locations(text)).strip()
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)


def text(value: str, block: bool = False) -> str:
    """``value`` as literal Markdown text on one line: specials (``|`` included) escaped.

    ``block``: the text starts a paragraph or list item, where a leading ``-`` or ``1.`` would
    open a (nested) list.
    """
    escaped = _SPECIAL.sub(r"\\\1", _one_line(value))
    match = _BLOCK_START.match(escaped) if block else None
    if match:
        end = match.end() - 1
        escaped = escaped[:end] + "\\" + escaped[end:]
    return escaped


def code(value: str) -> str:
    """``value`` as an inline code span: shown verbatim, whatever backticks it holds."""
    value = _one_line(value)
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def icon(verdict: str) -> str:
    return ICONS.get(verdict, "⚠️")


def _hint(command: str) -> str:
    hint = _one_line(command)
    # fmt puts the command in one code span; keep it when the target adds no backtick of its own
    return hint if hint.count("`") == 2 else text(hint)


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _cells(columns: list[str], numeric: list[bool], rows: list[list[fmt.Cell]]) -> list[str]:
    """Cells that differ from the reference run carry ``≠`` (as on the console)."""
    header = [text(column) for column in columns]
    align = ["---:" if number else "---" for number in numeric]
    body = [[text(c.text + MARK if c.differs else c.text) for c in row] for row in rows]
    return _table(header, align, body)


def _notes(notes: tuple[str, ...]) -> list[str]:
    return ["**Notes:**", "", *(f"- {text(note, block=True)}" for note in notes), ""]


def _bullets(label: str, items: list[str]) -> list[str]:
    return [f"**{label}:**", "", *items, ""]


def draw(section: sections.RunSection) -> list[str]:
    """One section as Markdown lines, each block followed by a blank line."""
    match section:
        case sections.Headline(command, verdict, headline):
            return [f"### {icon(verdict)} {text(f'repro-check {command}: {headline}')}", ""]
        case sections.Settings(line):
            return [code(line), ""]
        case sections.StudyHeading(line, _agrees):
            return [f"#### {text(line)}", ""]
        case sections.BestTable(table):
            return [*_cells(table.columns, table.numeric, table.rows), ""]
        case sections.ParetoTable(front):
            cells = _cells(front.columns, front.numeric, front.rows)
            return ["**Pareto front per run:**", "", *cells, ""]
        case sections.Divergence(line):
            return [f"**First divergence:** {code(line)}", ""]
        case sections.Baseline(line):
            return [f"**Baseline:** {text(line)}", ""]
        case sections.Resume(line, reason, fix):
            out = [f"**Resume:** {text(line)}", ""]
            out += [f"**Why:** {text(reason)}", ""] if reason else []
            return out + ([f"**Fix:** {text(fix)}", ""] if fix else [])
        case sections.Spread(label, line, histories):
            return [f"**{label}:** {text(line)} · **distinct histories:** {histories}", ""]
        case sections.ParamSpread(rows):
            items = [f"- {text(name, block=True)}: {text(spread)}" for name, spread in rows]
            return _bullets("Best-param spread", items)
        case sections.FailedTrials(lines):
            return _bullets("Failed trials", [f"- {text(line, block=True)}" for line in lines])
        case sections.Notes(notes):
            return _notes(notes)
        case sections.Environment(line):
            return [f"**Environment:** {code(line)}", ""]
        case sections.Hint(command, awaiting):
            return [] if awaiting else [f"**Hint:** {_hint(command)}", ""]
    assert_never(section)


def draw_compare(section: sections.CompareSection) -> list[str]:
    match section:
        case sections.CompareHeadline(target, verdict, sentence):
            title = f"### {icon(verdict)} repro-check compare: {text(target)}"
            return [title, "", text(sentence, block=True), ""]
        case sections.Settings(line):
            return [code(line), ""]
        case sections.Conditions(rows):
            cells = [
                [
                    text(c.title),
                    # only the gate decides the exit code; the others inform, never alarm
                    f"{icon(c.verdict)} {text(c.outcome)}" if c.can_fail else text(c.outcome),
                    text(c.best_value),
                    text(c.histories),
                    text(c.first_part),
                ]
                for c in rows
            ]
            header = [
                "condition",
                "verdict",
                "best value",
                "distinct histories",
                "first divergence",
            ]
            return [*_table(header, ["---", "---", "---:", "---:", "---"], cells), ""]
        case sections.Divergences(rows):
            items = [f"- {text(name, block=True)}: {code(line)}" for name, line in rows]
            return _bullets("First divergence", items)
        case sections.Notes(notes):
            return _notes(notes)
    assert_never(section)


def _fenced(code: str) -> list[str]:
    """``code`` as a fenced Python block, shown verbatim: the fence is longer than any run of
    backticks in it; control characters are written as ``\\xNN``."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    code = shown_locations(code)  # a notebook cell's line, as the console spells it out
    lines = [_CONTROL.sub(lambda m: ascii(m.group())[1:-1], line) for line in code.splitlines()]
    return [f"{fence}python", *lines, fence]


def _experiments(rows: tuple[sections_diagnose.ExperimentRow, ...]) -> list[str]:
    header = ["experiment", "what changed", "verdict", "first divergence"]
    cells = [
        [text(r.id), text(r.description), text(r.verdict), text(r.first_divergence)] for r in rows
    ]
    return _table(header, ["---"] * 4, cells)


def draw_diagnose(section: sections_diagnose.DiagnoseSection) -> list[str]:
    """One ``diagnose`` section as Markdown lines; a fix is a fenced block (code to paste)."""
    match section:
        case sections_diagnose.DiagnoseHeadline(headline, tone, unexplained):
            icon = TONE_ICONS.get(tone, "⚠️")
            heading = [f"### {icon} {text(f'repro-check diagnose: {headline}')}", ""]
            return heading + ([text(unexplained, block=True), ""] if unexplained else [])
        case sections_diagnose.FoundCause(rank, cause_id, evidence, location, fix):
            out = [f"#### {rank}. {text(cause_id)}", "", text(evidence, block=True), ""]
            out += [f"**At:** {code(location)}", ""] if location is not None else []
            return [*out, "**Fix:**", "", *_fenced(fix), ""]
        case sections_diagnose.ObjectiveNoise(line):
            return [f"**Objective at fixed params:** {text(line)}", ""]
        case sections_diagnose.NondeterministicOps(ops):
            return [f"**Ops without a deterministic kernel:** {text(', '.join(ops))}", ""]
        case sections_diagnose.Experiments(rows):
            return ["**Experiments:**", "", *_experiments(rows), ""]
        case sections_diagnose.Warnings(warnings):
            return _bullets("Warnings", [f"- {text(w, block=True)}" for w in warnings])
    assert_never(section)


def _environment(section: sections_diff.DiffEnvironment) -> list[str]:
    out = []
    if section.rows:
        cells = [
            [text(r.key + MARK if r.differs else r.key), text(r.a), text(r.b)] for r in section.rows
        ]
        table = _table(["", "A", "B"], ["---", "---", "---"], cells)
        out += ["**Environment (differences first):**", "", *table, ""]
    if section.identical:
        out += ["Environments are identical.", ""]
    elif section.hidden:
        out += [f"({section.hidden} identical environment entries hidden)", ""]
    return out


def draw_diff(section: sections_diff.DiffSection) -> list[str]:
    """One ``diff`` section as Markdown lines."""
    match section:
        case sections_diff.DiffHeadline(headline, tone):
            icon = TONE_ICONS.get(tone, "⚠️")
            return [f"### {icon} {text(f'repro-check diff: {headline}')}", ""]
        case sections_diff.Compared(line):
            return [f"**Compared:** {text(line)}", ""]
        case sections_diff.DiffResults(a, b, rows):
            cells = [[text(cell) for cell in row] for row in rows]
            return [*_table(["", text(a), text(b)], ["---", "---:", "---:"], cells), ""]
        case sections.Divergence(line):
            return [f"**First divergence:** {code(line)}", ""]
        case sections_diff.HistoriesAcross(count):
            return [f"**Distinct histories across both:** {count}", ""]
        case sections_diff.ToleranceNote(line):
            return [f"**Note:** {text(line)}", ""]
        case sections_diff.SettingsChanged(line):
            return [f"**Settings differ:** {text(line)}", ""]
        case sections_diff.DiffEnvironment():
            return _environment(section)
    assert_never(section)


def _document(lines: Iterable[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


def render_run(report: RunReport) -> str:
    """The run report as Markdown: verdict heading, settings, best per run, divergence, spread,
    notes, environment and, when not reproducible, the hint to run ``diagnose``."""
    return _document(line for s in sections.run_sections(report) for line in draw(s))


def render_compare(report: CompareReport) -> str:
    """``compare`` as Markdown: the summary sentence, then one table row per condition."""
    return _document(line for s in sections.compare_sections(report) for line in draw_compare(s))


def render_diagnose(diagnosis: Diagnosis) -> str:
    """``diagnose`` as Markdown: the causes found, each with its fix, then the experiments."""
    parts = sections_diagnose.diagnose_sections(diagnosis)
    return _document(line for s in parts for line in draw_diagnose(s))


def render_diff(diff: ReportDiff) -> str:
    """``diff`` as Markdown: the result, both sides' results, then the environments that
    differ."""
    return _document(line for s in sections_diff.diff_sections(diff) for line in draw_diff(s))


VIEWS: dict[Kind, Callable[[Any], str]] = {
    "run": render_run,
    "compare": render_compare,
    "diagnose": render_diagnose,
    "diff": render_diff,
}
"""Each report kind's view (what ``formats.MarkdownFormat`` draws with)."""


def render(obj: Report) -> str:
    """Markdown for any report; the format registry (``formats.MarkdownFormat``) takes the
    view from ``VIEWS`` directly, so this module never imports the registry (no cycle)."""
    return by_kind(obj, VIEWS, "Markdown")
