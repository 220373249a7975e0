"""Console view of ``diff``: what was compared and each side's own verdict, results side by side,
then environments, differences first.

It draws ``sections_diff``'s sections, as Markdown and JUnit do (every string from the files
is shortened there)."""

from __future__ import annotations

from typing import assert_never

from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from repro_check.render import sections, sections_diff
from repro_check.results.report_diff import ReportDiff

TONES = {"same": "bold green", "incomplete": "bold yellow", "different": "bold red"}


def results_table(results: sections_diff.DiffResults) -> Table:
    table = Table(title="Results", title_justify="left")
    table.add_column("")
    table.add_column(results.a, justify="right")
    table.add_column(results.b, justify="right")
    for row in results.rows:
        table.add_row(*row)
    return table


def environment(section: sections_diff.DiffEnvironment) -> list[RenderableType]:
    """The table of the entries shown (none: no table), then whether any is hidden."""
    parts: list[RenderableType] = []
    if section.rows:
        table = Table(title="Environment (differences first)", title_justify="left")
        for column in ("", "A", "B"):
            table.add_column(column)
        for row in section.rows:
            table.add_row(Text(row.key, style="bold red" if row.differs else ""), row.a, row.b)
        parts.append(table)
    if section.identical:
        parts.append(Text("Environments are identical.", style="dim"))
    elif section.hidden:
        parts.append(Text(f"({section.hidden} identical environment entries hidden)", style="dim"))
    return parts


def draw(section: sections_diff.DiffSection) -> list[RenderableType]:
    match section:
        case sections_diff.DiffHeadline(text, tone):
            line = Text(text, style=TONES[tone])
            return [Panel(line, title="repro-check diff", title_align="left", expand=False)]
        case sections_diff.Compared(text):
            return [Text.assemble(("Compared: ", "bold"), text)]
        case sections_diff.DiffResults():
            return [results_table(section)]
        case sections.Divergence(text):
            return [Text.assemble(("First divergence: ", "bold"), text)]
        case sections_diff.HistoriesAcross(count):
            return [Text(f"Distinct histories across both: {count}")]
        case sections_diff.ToleranceNote(text):
            return [Text(text, style="yellow")]
        case sections_diff.SettingsChanged(text):
            return [Text.assemble(("Settings differ: ", "bold yellow"), text)]
        case sections_diff.DiffEnvironment():
            return environment(section)
    assert_never(section)


def render(diff: ReportDiff, console: Console, all_env: bool = False) -> None:
    for section in sections_diff.diff_sections(diff, all_env):
        for part in draw(section):
            console.print(part)
