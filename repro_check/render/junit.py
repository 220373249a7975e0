"""JUnit XML, for CI systems that show test results (GitHub, GitLab, Jenkins, Azure).

One ``<testcase>`` per check, judged by the report's exit code: 1 (not reproducible, or differs
from a ``--baseline``) is a ``<failure>`` whose message is the first divergence (the headline
when there is none, e.g. ``n_jobs > 1`` or a baseline mismatch); 3 (a run crashed or timed out)
is an ``<error>`` carrying the runs' errors. The text comes
from the same ``fmt`` helpers as the console; nothing is computed here.

The tree is built with ElementTree, which escapes markup; characters that XML 1.0 cannot hold
at all (control characters from a crashed worker's stderr, say) are written as ``\\xNN``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from repro_check.checks.compare import CompareReport
from repro_check.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_NOT_REPRODUCIBLE
from repro_check.render import fmt
from repro_check.results.report import VERDICT_AWAITING, VERDICT_NOT_REPRODUCIBLE, RunReport

SUITE = "repro-check"
GATE = "fixed_seed"
"""The one ``compare`` condition that can fail; the others are informational."""

Judged = tuple[bool, bool]
"""Whether a test case can fail (not reproducible) and whether it can error (incomplete)."""

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 forbids written as ``\\xNN`` (or ``\\uNNNN``)."""
    return _NOT_XML.sub(lambda m: ascii(m.group())[1:-1], value)


def _seconds(reports: Iterable[RunReport]) -> str:
    return f"{sum(run.wall_s or 0.0 for r in reports for run in r.runs):.3f}"


def summary_lines(report: RunReport) -> list[str]:
    """The console's report as plain lines (for ``<system-out>``)."""
    comparison = report.comparison
    lines = [fmt.headline(report), fmt.settings_line(report)]
    marks = comparison.differing_cells
    for run in report.runs:
        differing = marks.get(run.index, set())
        mark = " ≠" if "value" in differing else ""
        cells = [f"run {run.index} {run.status}"]
        if run.multi_objective:
            cells.append(f"Pareto set {len(run.best_trials())} trials")
        else:
            cells.append(f"best value {fmt.num(run.best_value, 10)}{mark}")
            cells += [
                f"{name} {fmt.param(value)}{' ≠' if name in differing else ''}"
                for name, value in sorted((run.best_params or {}).items())
            ]
        cells += [f"{len(run.trials)} trials", f"wall s {fmt.num(run.wall_s, 3)}"]
        lines.append(" · ".join(cells))
    if comparison.divergence is not None:
        lines.append(f"First divergence: {fmt.divergence_line(comparison.divergence)}")
    if report.baseline is not None:
        lines.append(f"Baseline: {fmt.baseline_line(report)}")
    lines.append(
        f"Best value: {fmt.stats_line(comparison.best_value)}   "
        f"distinct histories: {fmt.histories_text(report)}"
    )
    varying = [s for s in comparison.best_params.values() if s.varies]
    if varying:
        lines.append("Best-param spread:")
        lines += [f"  {s.name}: {fmt.spread_line(s)}" for s in varying]
    if report.failure_lines:
        lines.append("Failed trials:")
        lines += [f"  {line}" for line in report.failure_lines]
    if report.notes:
        lines.append("Notes:")
        lines += [f"  • {note}" for note in report.notes]
    lines.append(f"Environment: {fmt.environment_line(report.environment)}")
    if report.verdict == VERDICT_NOT_REPRODUCIBLE:
        lines.append(f"Hint: {fmt.diagnose_hint(report)}")
    return lines


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
    case = _sub(suite, "testcase", classname=classname, name=name, time=_seconds([report]))
    outcome = None
    if report.verdict == VERDICT_AWAITING:  # no verdict yet: neither a pass nor a failure
        _sub(case, "skipped", message=fmt.headline(report))
        outcome = "skipped"
    elif can_error and report.exit_code in (EXIT_INCOMPLETE, EXIT_INTERRUPTED):
        errors = run_errors(report)
        _sub(
            case,
            "error",
            "\n".join([fmt.headline(report), *errors]),
            message="; ".join(errors),
            type=report.verdict,
        )
        outcome = "error"
    elif can_fail and report.exit_code == EXIT_NOT_REPRODUCIBLE:
        divergence = report.comparison.divergence
        message = fmt.divergence_line(divergence) if divergence else fmt.headline(report)
        body = [fmt.headline(report), message]
        if report.baseline is not None:
            body.append(f"Baseline: {fmt.baseline_line(report)}")
        if not report.reproducible:
            body.append(f"Hint: {fmt.diagnose_hint(report)}")
        _sub(case, "failure", "\n".join(dict.fromkeys(body)), message=message, type=report.verdict)
        outcome = "failure"
    _sub(case, "system-out", "\n".join(summary_lines(report)) + "\n")
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


def _judged(report: CompareReport, name: str) -> Judged:
    """``fixed_seed`` can fail or error: it is ``compare``'s exit code. The other conditions
    never fail; they error only where there is no ``fixed_seed`` and ``CompareReport.exit_code``
    is then "incomplete" when any condition could not finish."""
    if name == GATE:
        return True, True
    return False, GATE not in report.conditions


def render_compare(report: CompareReport) -> str:
    """``compare`` as JUnit XML: one test case per condition; only ``fixed_seed`` can fail."""
    cases = [
        (f"{SUITE}.compare", f"{report.plan.target} [{name}]", condition, _judged(report, name))
        for name, condition in report.conditions.items()
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
    """JUnit XML for a ``RunReport`` (``run``) or a ``CompareReport`` (``compare``)."""
    if isinstance(obj, RunReport):
        return render_run(obj)
    if isinstance(obj, CompareReport):
        return render_compare(obj)
    raise TypeError(f"no JUnit view of {type(obj).__name__}")
