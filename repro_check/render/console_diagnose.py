"""Console view of ``diagnose``: the ranked causes with their fixes, then the experiments."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from repro_check.checks.diagnose import Diagnosis
from repro_check.render import fmt, sections
from repro_check.render.console import STYLE
from repro_check.render.wrap import bullets, code_block, print_parts

TONES = {"incomplete": "bold yellow", "clean": "bold green", "causes": "bold"}


def headline(diagnosis: Diagnosis) -> Text:
    line = sections.diagnose_headline(diagnosis)
    return Text(line.text, style=TONES[line.tone])


def experiments_table(diagnosis: Diagnosis) -> Table:
    grid = Table(title="Experiments", title_justify="left")
    for column in ("experiment", "what changed", "verdict", "first divergence"):
        grid.add_column(column)
    for exp in diagnosis.experiments:
        where = f"trial {exp.divergence.trial} ({exp.divergence.field})" if exp.divergence else "-"
        if exp.stopped_early:
            where += ", stopped early"
        grid.add_row(exp.id, exp.description, Text(exp.verdict, style=STYLE[exp.verdict]), where)
    return grid


def render(diagnosis: Diagnosis, console: Console) -> None:
    console.print(
        Panel(headline(diagnosis), title="repro-check diagnose", title_align="left", expand=False)
    )
    for rank, cause in enumerate(diagnosis.causes, start=1):
        console.print(Text.assemble((f"{rank}. {cause.id}", "bold red"), f"  {cause.evidence}"))
        if cause.location is not None:
            where = cause.location
            console.print(Text.assemble(("   at ", "bold"), f"{where}: {where.source}"))
        print_parts(console, code_block(cause.fix, console))  # whole lines, to paste
    noise = diagnosis.objective_noise
    if noise is not None:
        console.print(
            Text.assemble(
                ("Objective at fixed params: ", "bold"),
                f"{dict(noise.params)} → {fmt.stats_line(noise.stats)}",
            )
        )
    if diagnosis.nondeterministic_ops:
        console.print(
            Text.assemble(
                ("Ops without a deterministic kernel: ", "bold"),
                ", ".join(diagnosis.nondeterministic_ops),
            )
        )
    console.print(experiments_table(diagnosis))
    if diagnosis.warnings:
        console.print(
            Group(
                Text("Warnings:", style="bold yellow"),
                bullets(diagnosis.warnings),
            )
        )
