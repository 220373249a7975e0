"""GitHub-flavoured Markdown: a compact summary for pull-request comments and
``$GITHUB_STEP_SUMMARY``.

It draws the same ``sections`` as the console and JUnit, so the three always agree; it
computes nothing. Text that can carry user data (the target, params, errors) is
escaped, so it cannot break the table or turn into links, HTML or emphasis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import assert_never

from repro_check.render import fmt, sections
from repro_check.results.compare_report import CompareReport
from repro_check.results.report import (
    VERDICT_AWAITING,
    VERDICT_DIFFERS_FROM_BASELINE,
    VERDICT_NOT_REPRODUCIBLE,
    VERDICT_REPRODUCIBLE,
    RunReport,
)

ICONS: dict[str, str] = {
    VERDICT_REPRODUCIBLE: "✅",
    VERDICT_NOT_REPRODUCIBLE: "❌",
    VERDICT_DIFFERS_FROM_BASELINE: "❌",
    VERDICT_AWAITING: "⏳",
}
"""By verdict (incomplete and interrupted are ⚠️): an awaiting check exits 0 but has not passed."""
MARK = " ≠"

_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#])")
_BLOCK_START = re.compile(r"^([+\-=]|\d+[.)])")
_NEWLINES = re.compile(r"\s*[\r\n]+\s*")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _one_line(text: str) -> str:
    """One line, with control characters (ANSI escapes from a worker's stderr) as ``\\xNN``."""
    text = _NEWLINES.sub(" ", text).strip()
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
                    f"{icon(c.verdict)} {text(c.verdict)}" if c.can_fail else text(c.verdict),
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


def _document(lines: Iterable[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


def render_run(report: RunReport) -> str:
    """The run report as Markdown: verdict heading, settings, best per run, divergence, spread,
    notes, environment and, when not reproducible, the hint to run ``diagnose``."""
    return _document(line for s in sections.run_sections(report) for line in draw(s))


def render_compare(report: CompareReport) -> str:
    """``compare`` as Markdown: the summary sentence, then one table row per condition."""
    return _document(line for s in sections.compare_sections(report) for line in draw_compare(s))


def render(obj: RunReport | CompareReport) -> str:
    """Markdown for a ``RunReport`` (``run``) or a ``CompareReport`` (``compare``); the
    format registry (``formats.MarkdownFormat``) calls the two views directly, so this module
    never imports the registry (no cycle)."""
    return sections.by_report(obj, render_run, render_compare, "Markdown")
