"""Console view of ``diagnose``: the ranked causes with their fixes, then the experiments.

It draws ``sections_diagnose``'s sections, as Markdown and JUnit do."""

from __future__ import annotations

from typing import assert_never

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from repro_check.render import sections_diagnose as sections
from repro_check.render.console import STYLE
from repro_check.render.wrap import bullets, code_block, print_parts
from repro_check.results.diagnosis import Diagnosis

TONES = {
    "incomplete": "bold yellow",
    "clean": "bold green",
    "unexplained": "bold red",
    "causes": "bold",
}


def headline(diagnosis: Diagnosis) -> Text:
    line = sections.diagnose_headline(diagnosis)
    return Text(line.text, style=TONES[line.tone])


def experiments_table(experiments: sections.Experiments) -> Table:
    grid = Table(title="Experiments", title_justify="left")
    for column in ("experiment", "what changed", "verdict", "first divergence"):
        grid.add_column(column)
    for row in experiments.rows:
        verdict = Text(row.verdict, style=STYLE[row.verdict])
        grid.add_row(row.id, row.description, verdict, row.first_divergence)
    return grid


def draw(section: sections.DiagnoseSection, console: Console) -> list[RenderableType]:
    """One section as rich renderables (a fix is sized to ``console``: ``code_block``)."""
    match section:
        case sections.DiagnoseHeadline(text, tone, unexplained):
            line = Text(text, style=TONES[tone])
            if unexplained is not None:
                line.append(f"\n{unexplained}")
            title = "repro-check diagnose"
            return [Panel(line, title=title, title_align="left", expand=False)]
        case sections.FoundCause(rank, cause_id, evidence, location, fix):
            parts: list[RenderableType] = [
                Text.assemble((f"{rank}. {cause_id}", "bold red"), f"  {evidence}")
            ]
            if location is not None:
                parts.append(Text.assemble(("   at ", "bold"), location))
            return parts + code_block(fix, console)  # whole lines, to paste
        case sections.ObjectiveNoise(text):
            return [Text.assemble(("Objective at fixed params: ", "bold"), text)]
        case sections.NondeterministicOps(ops):
            label = ("Ops without a deterministic kernel: ", "bold")
            return [Text.assemble(label, ", ".join(ops))]
        case sections.Experiments():
            return [experiments_table(section)]
        case sections.Warnings(warnings):
            return [Group(Text("Warnings:", style="bold yellow"), bullets(warnings))]
    assert_never(section)


def render(diagnosis: Diagnosis, console: Console) -> None:
    for section in sections.diagnose_sections(diagnosis):
        print_parts(console, draw(section, console))
