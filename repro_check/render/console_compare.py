"""Console view of ``compare``: the three conditions side by side, then the one-line summary."""

from __future__ import annotations

from typing import assert_never

from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from repro_check.render import sections
from repro_check.render.console import STYLE
from repro_check.results.compare_report import CompareReport


def table(conditions: sections.Conditions) -> Table:
    """One column per condition, one row per result (transposed: conditions are few)."""
    grid = Table(title="Conditions", title_justify="left")
    grid.add_column("")
    for c in conditions.rows:
        grid.add_column(c.title, justify="right")
    rows = conditions.rows
    grid.add_row("verdict", *(Text(c.outcome, style=STYLE.get(c.outcome, "dim")) for c in rows))
    grid.add_row("seeds", *(Text(c.seeds) for c in rows))
    grid.add_row("best value", *(Text(c.best_value) for c in rows))
    grid.add_row("distinct histories", *(Text(c.histories) for c in rows))
    grid.add_row("first divergence", *(Text(c.first_part) for c in rows))
    for name in conditions.params:
        grid.add_row(f"param {name}", *(Text(c.params.get(name, "-")) for c in rows))
    return grid


def draw(section: sections.CompareSection) -> list[RenderableType]:
    match section:
        case sections.CompareHeadline(_, _, sentence):
            title = "repro-check compare"
            return [Panel(Text(sentence), title=title, title_align="left", expand=False)]
        case sections.Settings(text):
            return [Text(text, style="dim")]
        case sections.Conditions():
            return [table(section)]
        case sections.Divergences(rows):
            return [Text.assemble((f"{name} first part: ", "bold"), line) for name, line in rows]
        case sections.Notes(notes):
            return [Text(f"  • {note}") for note in notes]
    assert_never(section)


def render(report: CompareReport, console: Console) -> None:
    for section in sections.compare_sections(report):
        for part in draw(section):
            console.print(part)
