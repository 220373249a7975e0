"""GitHub-flavoured Markdown: a compact summary for pull-request comments and
``$GITHUB_STEP_SUMMARY``.

It draws the same report objects as the console, through the same ``fmt`` helpers, so the two
always agree; it computes nothing. Text that can carry user data (the target, params, errors) is
escaped, so it cannot break the table or turn into links, HTML or emphasis.
"""

from __future__ import annotations

import re

from repro_check.checks.compare import CompareReport
from repro_check.render import fmt
from repro_check.results.report import (
    VERDICT_AWAITING,
    VERDICT_DIFFERS_FROM_BASELINE,
    VERDICT_NOT_REPRODUCIBLE,
    VERDICT_REPRODUCIBLE,
    RunReport,
)

ICONS = {
    VERDICT_REPRODUCIBLE: "✅",
    VERDICT_NOT_REPRODUCIBLE: "❌",
    VERDICT_DIFFERS_FROM_BASELINE: "❌",
    VERDICT_AWAITING: "⏳",
}
"""By verdict (incomplete and interrupted are ⚠️): an awaiting check exits 0 but has not passed."""
MARK = " ≠"
TITLES = {"fixed_seed": "fixed seed", "seed_sweep": "seed sweep", "uncontrolled": "uncontrolled"}

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


def _gate_verdict(report: CompareReport) -> str:
    """compare gates on fixed_seed; without it, only on whether every run could finish."""
    fixed = report.conditions.get("fixed_seed")
    if fixed is not None:
        return fixed.verdict
    return VERDICT_REPRODUCIBLE if report.exit_code == 0 else "incomplete"


def icon(verdict: str) -> str:
    return ICONS.get(verdict, "⚠️")


def _hint(report: RunReport) -> str:
    hint = _one_line(fmt.diagnose_hint(report))
    # fmt puts the command in one code span; keep it when the target adds no backtick of its own
    return hint if hint.count("`") == 2 else text(hint)


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def best_table(report: RunReport) -> list[str]:
    """One row per run; cells that differ from run 0 carry ``≠`` (as on the console)."""
    cells = fmt.best_table(report)
    header = [text(column) for column in cells.columns]
    align = ["---:" if numeric else "---" for numeric in cells.numeric]
    rows = [[text(c.text + MARK if c.differs else c.text) for c in row] for row in cells.rows]
    return _table(header, align, rows)


def pareto_table(front: fmt.ParetoTable) -> list[str]:
    header = [text(column) for column in front.columns]
    align = ["---:" if numeric else "---" for numeric in front.numeric]
    rows = [[text(c.text + MARK if c.differs else c.text) for c in row] for row in front.rows]
    return _table(header, align, rows)


def _notes(notes: list[str]) -> list[str]:
    if not notes:
        return []
    return ["**Notes:**", "", *(f"- {text(note, block=True)}" for note in notes), ""]


def render_run(report: RunReport) -> str:
    """The run report as Markdown: verdict heading, settings, best per run, divergence, spread,
    notes, environment and, when not reproducible, the hint to run ``diagnose``."""
    comparison = report.comparison
    title = f"repro-check {report.command}: {fmt.headline(report)}"
    lines = [
        f"### {icon(report.verdict)} {text(title)}",
        "",
        code(fmt.settings_line(report)),
        "",
        *best_table(report),
        "",
    ]
    front = fmt.pareto_table(report)
    if front is not None:
        lines += ["**Pareto front per run:**", "", *pareto_table(front), ""]
    if comparison.divergence is not None:
        lines += [f"**First divergence:** {code(fmt.divergence_line(comparison.divergence))}", ""]
    if report.baseline is not None:
        lines += [f"**Baseline:** {text(fmt.baseline_line(report))}", ""]
    best = (
        f"**Pareto front:** {text(fmt.pareto_line(report))}"
        if front is not None
        else f"**Best value:** {text(fmt.stats_line(comparison.best_value))}"
    )
    lines += [
        f"{best} · **distinct histories:** {fmt.histories_text(report)}",
        "",
    ]
    varying = [s for s in comparison.best_params.values() if s.varies]
    if varying:
        lines += ["**Best-param spread:**", ""]
        lines += [f"- {text(s.name, block=True)}: {text(fmt.spread_line(s))}" for s in varying]
        lines.append("")
    if report.failure_lines:
        lines += ["**Failed trials:**", ""]
        lines += [f"- {text(line, block=True)}" for line in report.failure_lines]
        lines.append("")
    lines += _notes(report.notes)
    lines += [f"**Environment:** {code(fmt.environment_line(report.environment))}", ""]
    if report.verdict == VERDICT_NOT_REPRODUCIBLE:
        lines += [f"**Hint:** {_hint(report)}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _first_part(report: RunReport) -> str:
    divergence = report.comparison.divergence
    return f"trial {divergence.trial} ({divergence.field})" if divergence else "-"


def render_compare(report: CompareReport) -> str:
    """``compare`` as Markdown: the summary sentence, then one table row per condition."""
    plan = report.plan
    lines = [
        f"### {icon(_gate_verdict(report))} repro-check compare: {text(plan.target)}",
        "",
        text(report.sentence, block=True),
        "",
        code(fmt.compare_settings_line(report)),
        "",
    ]
    rows = [
        [
            text(TITLES.get(name, name)),
            # only fixed_seed gates the exit code; the others are information, not alarms
            f"{icon(c.verdict)} {text(c.verdict)}" if name == "fixed_seed" else text(c.verdict),
            text(fmt.stats_line(c.comparison.best_value)),
            text(fmt.histories_text(c)),
            text(_first_part(c)),
        ]
        for name, c in report.conditions.items()
    ]
    header = ["condition", "verdict", "best value", "distinct histories", "first divergence"]
    lines += [*_table(header, ["---", "---", "---:", "---:", "---"], rows), ""]
    parted = [
        (name, c.comparison.divergence)
        for name, c in report.conditions.items()
        if c.comparison.divergence is not None
    ]
    if parted:
        lines += ["**First divergence:**", ""]
        lines += [
            f"- {text(TITLES.get(name, name), block=True)}: {code(fmt.divergence_line(divergence))}"
            for name, divergence in parted
        ]
        lines.append("")
    lines += _notes(list(dict.fromkeys(n for c in report.conditions.values() for n in c.notes)))
    return "\n".join(lines).rstrip("\n") + "\n"


def render(obj: RunReport | CompareReport) -> str:
    """Markdown for a ``RunReport`` (``run``) or a ``CompareReport`` (``compare``)."""
    if isinstance(obj, RunReport):
        return render_run(obj)
    if isinstance(obj, CompareReport):
        return render_compare(obj)
    raise TypeError(f"no Markdown view of {type(obj).__name__}")
