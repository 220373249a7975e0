"""JUnit XML, for CI systems that show test results (GitHub, GitLab, Jenkins, Azure).

One ``<testcase>`` per check, judged by the report's exit code: 1 (not reproducible, or differs
from a ``--baseline``) is a ``<failure>`` whose message is the first divergence (the headline
when there is none, e.g. ``n_jobs > 1`` or a baseline mismatch); 3 (a run crashed or timed out)
is an ``<error>`` carrying the runs' errors. ``compare`` has one case per condition (only the
gate can fail), ``diff`` one (fails when the reports differ), ``diagnose`` one per cause found
(each a failure: a reason the study is not reproducible; one passing case when there is none).
The text is drawn from the same sections as the console and Markdown; nothing is computed
here.

The tree is built with ElementTree, which escapes markup; characters that XML 1.0 cannot hold
at all (control characters from a crashed worker's stderr, say) are written as ``\\xNN``.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, assert_never

from repro_check.__about__ import __version__
from repro_check.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_NOT_REPRODUCIBLE
from repro_check.plan.notebooks import shown_locations
from repro_check.render import fmt, sections, sections_diagnose, sections_diff
from repro_check.render.kinds import Kind, Report, by_kind
from repro_check.results.compare_report import CompareReport
from repro_check.results.report import (
    VERDICT_AWAITING,
    VERDICT_INCOMPLETE,
    VERDICT_NOT_REPRODUCIBLE,
    RunReport,
)
from repro_check.results.report_diff import ReportDiff

if TYPE_CHECKING:
    from repro_check.plan.settings import CheckPlan
    from repro_check.results.diagnosis import Diagnosis

SUITE = "repro-check"

Judged = tuple[bool, bool]
"""Whether a test case can fail (not reproducible) and whether it can error (incomplete)."""

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 forbids written as ``\\xNN`` (or ``\\uNNNN``),
    and a notebook cell's location spelled out (``tune.ipynb, cell 7 (In [7]), line 3``)."""
    return _NOT_XML.sub(lambda m: ascii(m.group())[1:-1], shown_locations(value))


Outcome = Literal["failure", "error", "skipped"]


@dataclass(frozen=True)
class Case:
    """One ``<testcase>`` as text: what it checked, how it ended, what it printed."""

    classname: str
    name: str
    walls: tuple[float, ...]
    """The wall seconds of the runs behind it (its ``time`` is their sum)."""
    out: str
    """Its ``<system-out>``."""
    outcome: Outcome | None = None
    """None: passed."""
    message: str = ""
    body: str | None = None
    type: str = ""


def _seconds(walls: Iterable[float]) -> str:
    return f"{sum(walls):.3f}"


def _walls(reports: Iterable[RunReport]) -> tuple[float, ...]:
    return tuple(run.wall_s or 0.0 for r in reports for run in r.runs)


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


def _failure_body(parts: Sequence[sections.RunSection], headline: str, message: str) -> str:
    """The headline, the first divergence (or the headline), the baseline, resume and hint."""
    body = [headline, message]
    body += [
        line
        for s in parts
        if isinstance(s, sections.Baseline | sections.Resume | sections.Hint)
        for line in draw(s)
    ]
    return "\n".join(dict.fromkeys(body))


def _takes_seed(plan: CheckPlan) -> bool:
    """The plan's seed reached the code (a script as written takes none: not a property)."""
    return not plan.script or plan.controls.take_seed


def _run_case(
    classname: str,
    name: str,
    report: RunReport,
    judged: Judged,
    parts: tuple[sections.RunSection, ...] | None = None,
) -> Case:
    """One check's case: skipped while awaiting, else judged by the report's exit code;
    ``parts``: its sections, when not the run's own (a compare condition's)."""
    can_fail, can_error = judged
    parts = sections.run_sections(report) if parts is None else parts
    headline = fmt.headline(report)  # the same text as the Headline section
    out = "\n".join(line for section in parts for line in draw(section)) + "\n"
    case = Case(classname, name, _walls([report]), out)
    if report.verdict == VERDICT_AWAITING:  # no verdict yet: neither a pass nor a failure
        return dataclasses.replace(case, outcome="skipped", message=headline)
    if can_error and report.exit_code in (EXIT_INCOMPLETE, EXIT_INTERRUPTED):
        errors = run_errors(report)
        body = "\n".join([headline, *errors])
        return dataclasses.replace(
            case, outcome="error", message="; ".join(errors), body=body, type=report.verdict
        )
    if can_fail and report.exit_code == EXIT_NOT_REPRODUCIBLE:
        divergence = sections.find(parts, sections.Divergence)
        message = divergence.text if divergence is not None else headline
        body = _failure_body(parts, headline, message)
        return dataclasses.replace(
            case, outcome="failure", message=message, body=body, type=report.verdict
        )
    return case


def _testcase(suite: ET.Element, case: Case) -> None:
    element = _sub(
        suite, "testcase", classname=case.classname, name=case.name, time=_seconds(case.walls)
    )
    if case.outcome is not None:
        attrs = {"message": case.message, **({"type": case.type} if case.type else {})}
        _sub(element, case.outcome, case.body, **attrs)
    _sub(element, "system-out", case.out)


def _document(
    cases: list[Case],
    properties: dict[str, str],
    out: str | None,
    walls: Iterable[float] | None = None,
) -> str:
    """The suite of ``cases``; its time is that of ``walls`` (default: the cases')."""
    root = ET.Element("testsuites", name=SUITE)
    suite = _sub(root, "testsuite", name=SUITE)
    props = _sub(suite, "properties")
    for key, value in properties.items():
        _sub(props, "property", name=key, value=value)
    for case in cases:
        _testcase(suite, case)
    outcomes = [case.outcome for case in cases]
    counts = {
        "tests": str(len(cases)),
        "failures": str(outcomes.count("failure")),
        "errors": str(outcomes.count("error")),
        "skipped": str(outcomes.count("skipped")),
        "time": _seconds(walls if walls is not None else (w for c in cases for w in c.walls)),
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
        **({"seed": str(report.plan.seed)} if _takes_seed(report.plan) else {}),
        "device": report.device,
        "tool_version": report.tool_version,
    }
    case = _run_case(f"{SUITE}.run", report.target, report, (True, True))
    return _document([case], properties, None)


def render_compare(report: CompareReport) -> str:
    """``compare`` as JUnit XML: one test case per condition; only the gate (``fixed_seed``)
    can fail. The others never fail; they error only where there is no gate, as
    ``CompareReport.exit_code`` is then "incomplete" when any condition could not finish."""
    conditions = sections.find(sections.compare_sections(report), sections.Conditions)
    assert conditions is not None  # every compare report has its table of conditions
    cases = [
        _run_case(
            f"{SUITE}.compare",
            f"{report.plan.target} [{c.title}]",
            c.report,
            (c.can_fail, c.can_error),
            sections.condition_sections(c),
        )
        for c in conditions.rows
    ]
    seeded = any(_takes_seed(c.plan) for c in report.conditions.values())
    properties = {
        "command": "compare",
        "exit_code": str(report.exit_code),
        **({"seed": str(report.plan.seed)} if seeded else {}),
        "device": report.device,
        "tool_version": report.tool_version,
    }
    return _document(cases, properties, report.sentence)


def draw_diagnose(section: sections_diagnose.DiagnoseSection) -> list[str]:
    """One ``diagnose`` section as plain lines (a fix as the console prints a wide one)."""
    match section:
        case sections_diagnose.DiagnoseHeadline(text, _tone, unexplained):
            return [text, *([unexplained] if unexplained else [])]
        case sections_diagnose.FoundCause(rank, cause_id, evidence, location, fix):
            lines = [f"{rank}. {cause_id}  {evidence}"]
            lines += [f"   at {location}"] if location is not None else []
            return [*lines, "fix:", *(f"  {line}" for line in fix.splitlines())]
        case sections_diagnose.ObjectiveNoise(text):
            return [f"Objective at fixed params: {text}"]
        case sections_diagnose.NondeterministicOps(ops):
            return [f"Ops without a deterministic kernel: {', '.join(ops)}"]
        case sections_diagnose.Experiments(rows):
            cells = (f"{r.id} · {r.description} · {r.verdict} · {r.first_divergence}" for r in rows)
            return ["Experiments:", *(f"  {row}" for row in cells)]
        case sections_diagnose.Warnings(warnings):
            return ["Warnings:", *(f"  • {warning}" for warning in warnings)]
    assert_never(section)


def _diagnose_walls(diagnosis: Diagnosis) -> tuple[float, ...]:
    """Every experiment's runs, each once (an ablation may reuse full control's run 0)."""
    runs = {id(run): run for exp in diagnosis.experiments for run in exp.runs}
    return tuple(run.wall_s or 0.0 for run in runs.values())


FAILED = VERDICT_NOT_REPRODUCIBLE
"""The failure type of a cause's case: the study is not reproducible."""


def render_diagnose(diagnosis: Diagnosis) -> str:
    """``diagnose`` as JUnit XML: one failing case per cause found (each is a reason the study
    is not reproducible), an error when the fully controlled runs could not finish, one passing
    case when neither (a failing one when something did not reproduce all the same:
    ``DiagnoseHeadline.unexplained``)."""
    parts = sections_diagnose.diagnose_sections(diagnosis)
    classname, target = f"{SUITE}.diagnose", diagnosis.plan.target
    head = sections_diagnose.diagnose_headline(diagnosis)
    headline = head.text
    out = "\n".join(line for section in parts for line in draw_diagnose(section))
    walls = _diagnose_walls(diagnosis)
    cases: list[Case] = []
    if diagnosis.incomplete:
        body = "\n".join([headline, *diagnosis.warnings])
        error = Case(classname, target, (), out + "\n", "error", headline, body, VERDICT_INCOMPLETE)
        cases.append(error)
    for cause in (part for part in parts if isinstance(part, sections_diagnose.FoundCause)):
        lines = "\n".join(draw_diagnose(cause))
        name = f"{target} [{cause.id}]"
        cases.append(
            Case(classname, name, (), lines + "\n", "failure", cause.evidence, lines, FAILED)
        )
    if not cases:  # no cause: a pass, unless something did not reproduce all the same
        unexplained = head.unexplained
        outcome: Outcome | None = "failure" if unexplained else None
        body = "\n".join([headline, *([unexplained] if unexplained else []), *diagnosis.warnings])
        message = unexplained or headline
        cases.append(Case(classname, target, (), out + "\n", outcome, message, body, FAILED))
    properties = {
        "command": "diagnose",
        "exit_code": str(diagnosis.exit_code),
        "reproducible_under_full_control": str(diagnosis.reproducible_under_full_control),
        "seed": str(diagnosis.plan.seed),
        "device": diagnosis.device,
        "tool_version": diagnosis.tool_version,
    }
    return _document(cases, properties, out, walls)


def _environment_lines(section: sections_diff.DiffEnvironment) -> list[str]:
    lines = ["Environment (differences first):"] if section.rows else []
    lines += [f"  {r.key}: {r.a} · {r.b}{' ≠' if r.differs else ''}" for r in section.rows]
    if section.identical:
        lines.append("Environments are identical.")
    elif section.hidden:
        lines.append(f"({section.hidden} identical environment entries hidden)")
    return lines


def draw_diff(section: sections_diff.DiffSection) -> list[str]:
    """One ``diff`` section as plain lines (a table's rows as ``label: A · B``)."""
    match section:
        case sections_diff.DiffHeadline(text, _tone):
            return [text]
        case sections_diff.Compared(text):
            return [f"Compared: {text}"]
        case sections_diff.DiffResults(a, b, rows):
            return [f"Results: {a} · {b}", *(f"  {label}: {x} · {y}" for label, x, y in rows)]
        case sections.Divergence(text):
            return [f"First divergence: {text}"]
        case sections_diff.HistoriesAcross(count):
            return [f"Distinct histories across both: {count}"]
        case sections_diff.ToleranceNote(text):
            return [text]
        case sections_diff.SettingsChanged(text):
            return [f"Settings differ: {text}"]
        case sections_diff.DiffEnvironment():
            return _environment_lines(section)
    assert_never(section)


def render_diff(diff: ReportDiff) -> str:
    """``diff`` as JUnit XML: one test case for the two reports, judged by the diff's exit
    code: different results (1) fail, with the first divergence as the message (the headline
    when there is none); incomplete (3) is an error; the same results pass."""
    parts = sections_diff.diff_sections(diff)
    headline = sections_diff.diff_headline(diff).text
    lines = [line for section in parts for line in draw_diff(section)]
    name = f"{sections_diff.short(diff.path_a)} vs {sections_diff.short(diff.path_b)}"
    case = Case(f"{SUITE}.diff", name, (), "\n".join(lines) + "\n")
    if diff.exit_code == EXIT_NOT_REPRODUCIBLE:
        divergence = sections.find(parts, sections.Divergence)
        message = divergence.text if divergence is not None else headline
        body = "\n".join(dict.fromkeys([headline, message]))
        case = dataclasses.replace(
            case, outcome="failure", message=message, body=body, type=diff.result
        )
    elif diff.exit_code == EXIT_INCOMPLETE:
        case = dataclasses.replace(
            case, outcome="error", message=headline, body=headline, type=diff.result
        )
    properties = {
        "command": "diff",
        "result": diff.result,
        "exit_code": str(diff.exit_code),
        "tool_version": __version__,
    }
    return _document([case], properties, None)


VIEWS: dict[Kind, Callable[[Any], str]] = {
    "run": render_run,
    "compare": render_compare,
    "diagnose": render_diagnose,
    "diff": render_diff,
}
"""Each report kind's view (what ``formats.JunitFormat`` draws with)."""


def render(obj: Report) -> str:
    """JUnit XML for any report; the format registry (``formats.JunitFormat``) takes the view
    from ``VIEWS`` directly, so this module never imports the registry (no cycle)."""
    return by_kind(obj, VIEWS, "JUnit")
