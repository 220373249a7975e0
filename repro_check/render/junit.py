"""JUnit XML, for CI systems that show test results (GitHub, GitLab, Jenkins, Azure).

One ``<testcase>`` per check, judged by the report's exit code: 1 (not reproducible, or differs
from a ``--baseline``) is a ``<failure>`` whose message is the first divergence (the headline
when there is none, e.g. ``n_jobs > 1`` or a baseline mismatch); 3 (a run crashed or timed out)
is an ``<error>`` carrying the runs' errors. The text is drawn from the same ``sections`` as
the console and Markdown; nothing is computed here.

The tree is built with ElementTree, which escapes markup; characters that XML 1.0 cannot hold
at all (control characters from a crashed worker's stderr, say) are written as ``\\xNN``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import assert_never

from repro_check.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_NOT_REPRODUCIBLE
from repro_check.render import fmt, sections
from repro_check.results.compare_report import CompareReport
from repro_check.results.report import VERDICT_AWAITING, RunReport

SUITE = "repro-check"

Judged = tuple[bool, bool]
"""Whether a test case can fail (not reproducible) and whether it can error (incomplete)."""

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 forbids written as ``\\xNN`` (or ``\\uNNNN``)."""
    return _NOT_XML.sub(lambda m: ascii(m.group())[1:-1], value)


def _seconds(reports: Iterable[RunReport]) -> str:
    return f"{sum(run.wall_s or 0.0 for r in reports for run in r.runs):.3f}"


def _mark(cell: fmt.Cell) -> str:
    return " ≠" if cell.differs else ""


def _run_lines(section: sections.BestTable) -> list[str]:
    """The best-per-run table, a line per run: ``run 0 ok · best value 1.5 · x 0.25 · ...``."""
    table = section.table
    params = table.columns[3:-2]
    lines = []
    for index, status, best, *rest in table.rows:
        cells = [f"run {index.text} {status.text}", f"{table.columns[2]} {best.text}{_mark(best)}"]
        cells += [
            f"{name} {cell.text}{_mark(cell)}"
            for name, cell in zip(params, rest[:-2], strict=True)
            if cell.text != "-" or cell.differs  # a param this run's best trial lacks
        ]
        trials, wall = rest[-2:]
        cells += [f"{trials.text} trials", f"wall s {wall.text}"]
        lines.append(" · ".join(cells))
    return lines


def draw(section: sections.RunSection) -> list[str]:
    """One section as plain lines (the console's text without its styles)."""
    match section:
        case sections.Headline(_, _, text) | sections.Settings(text):
            return [text]
        case sections.StudyHeading(text, _agrees):
            return [text]
        case sections.BestTable():
            return _run_lines(section)
        case sections.ParetoTable():
            return []  # the run lines count each run's front; the table is the console's
        case sections.Divergence(text):
            return [f"First divergence: {text}"]
        case sections.Baseline(text):
            return [f"Baseline: {text}"]
        case sections.Resume(text, reason, fix):
            lines = [f"Resume: {text}"]
            lines += [f"  why: {reason}"] if reason else []
            return lines + ([f"  fix: {fix}"] if fix else [])
        case sections.Spread(label, text, histories):
            return [f"{label}: {text}   distinct histories: {histories}"]
        case sections.ParamSpread(rows):
            return ["Best-param spread:", *(f"  {name}: {spread}" for name, spread in rows)]
        case sections.FailedTrials(lines):
            return ["Failed trials:", *(f"  {line}" for line in lines)]
        case sections.Notes(notes):
            return ["Notes:", *(f"  • {note}" for note in notes)]
        case sections.Environment(text):
            return [f"Environment: {text}"]
        case sections.Hint(text, awaiting):
            return [] if awaiting else [f"Hint: {text}"]
    assert_never(section)


def summary_lines(report: RunReport) -> list[str]:
    """The console's report as plain lines (for ``<system-out>``)."""
    return [line for section in sections.run_sections(report) for line in draw(section)]


def run_errors(report: RunReport) -> list[str]:
    """One line per run that did not finish, as in the report's notes."""
    return [
        f"run {run.index} {run.status}: {run.error or run.status}"
        for run in report.runs
        if not run.finished
    ]


def _sub(parent: ET.Element, tag: str, body: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if body is not None:
        element.text = xml_text(body)
    return element


def _testcase(
    suite: ET.Element, classname: str, name: str, report: RunReport, judged: Judged
) -> str | None:
    """Append one case; returns "failure", "error", "skipped" or None (passed)."""
    can_fail, can_error = judged
    parts = sections.run_sections(report)
    headline = fmt.headline(report)  # the same text as the Headline section
    case = _sub(suite, "testcase", classname=classname, name=name, time=_seconds([report]))
    outcome = None
    if report.verdict == VERDICT_AWAITING:  # no verdict yet: neither a pass nor a failure
        _sub(case, "skipped", message=headline)
        outcome = "skipped"
    elif can_error and report.exit_code in (EXIT_INCOMPLETE, EXIT_INTERRUPTED):
        errors = run_errors(report)
        _sub(
            case,
            "error",
            "\n".join([headline, *errors]),
            message="; ".join(errors),
            type=report.verdict,
        )
        outcome = "error"
    elif can_fail and report.exit_code == EXIT_NOT_REPRODUCIBLE:
        # the first divergence (the headline when there is none), baseline and hint, as shown
        divergence = sections.find(parts, sections.Divergence)
        message = divergence.text if divergence is not None else headline
        body = [headline, message]
        body += [
            line
            for s in parts
            if isinstance(s, sections.Baseline | sections.Resume | sections.Hint)
            for line in draw(s)
        ]
        _sub(case, "failure", "\n".join(dict.fromkeys(body)), message=message, type=report.verdict)
        outcome = "failure"
    lines = [line for section in parts for line in draw(section)]
    _sub(case, "system-out", "\n".join(lines) + "\n")
    return outcome


def _document(
    cases: list[tuple[str, str, RunReport, Judged]], properties: dict[str, str], out: str | None
) -> str:
    root = ET.Element("testsuites", name=SUITE)
    suite = _sub(root, "testsuite", name=SUITE)
    props = _sub(suite, "properties")
    for key, value in properties.items():
        _sub(props, "property", name=key, value=value)
    outcomes = [_testcase(suite, *case) for case in cases]
    counts = {
        "tests": str(len(cases)),
        "failures": str(outcomes.count("failure")),
        "errors": str(outcomes.count("error")),
        "skipped": str(outcomes.count("skipped")),
        "time": _seconds(report for _, _, report, _ in cases),
    }
    for element in (root, suite):
        element.attrib.update(counts)
    if out is not None:
        _sub(suite, "system-out", out + "\n")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def render_run(report: RunReport) -> str:
    """The run report as JUnit XML: one test case, named after the target."""
    properties = {
        "command": report.command,
        "verdict": report.verdict,
        "exit_code": str(report.exit_code),
        "seed": str(report.plan.seed),
        "device": report.device,
        "tool_version": report.tool_version,
    }
    return _document([(f"{SUITE}.run", report.target, report, (True, True))], properties, None)


def render_compare(report: CompareReport) -> str:
    """``compare`` as JUnit XML: one test case per condition; only the gate (``fixed_seed``)
    can fail. The others never fail; they error only where there is no gate, as
    ``CompareReport.exit_code`` is then "incomplete" when any condition could not finish."""
    conditions = sections.find(sections.compare_sections(report), sections.Conditions)
    assert conditions is not None  # every compare report has its table of conditions
    cases = [
        (
            f"{SUITE}.compare",
            f"{report.plan.target} [{c.name}]",
            c.report,
            (c.can_fail, c.can_error),
        )
        for c in conditions.rows
    ]
    properties = {
        "command": "compare",
        "exit_code": str(report.exit_code),
        "seed": str(report.plan.seed),
        "device": report.device,
        "tool_version": report.tool_version,
    }
    return _document(cases, properties, report.sentence)


def render(obj: RunReport | CompareReport) -> str:
    """JUnit XML for a ``RunReport`` (``run``) or a ``CompareReport`` (``compare``); the
    format registry (``formats.JunitFormat``) calls the two views directly, so this module
    never imports the registry (no cycle)."""
    return sections.by_report(obj, render_run, render_compare, "JUnit")
