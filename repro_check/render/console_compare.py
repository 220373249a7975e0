"""Console view of ``compare``: the three conditions side by side, then the one-line summary."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from repro_check.checks.compare import CompareReport
from repro_check.render import fmt
from repro_check.render.console import STYLE

TITLES = {
    "fixed_seed": "fixed seed",
    "seed_sweep": "seed sweep",
    "uncontrolled": "uncontrolled",
}


def table(report: CompareReport) -> Table:
    grid = Table(title="Conditions", title_justify="left")
    grid.add_column("")
    for name in report.conditions:
        grid.add_column(TITLES.get(name, name), justify="right")
    rows: list[tuple[str, list[Text]]] = []
    conditions = list(report.conditions.values())
    rows.append(("verdict", [Text(c.verdict, style=STYLE[c.verdict]) for c in conditions]))
    rows.append(
        (
            "seeds",
            [
                Text("unseeded" if name == "uncontrolled" else _seeds(c.runs))
                for name, c in report.conditions.items()
            ],
        )
    )
    rows.append(("best value", [Text(fmt.stats_line(c.comparison.best_value)) for c in conditions]))
    rows.append(
        (
            "distinct histories",
            [Text(fmt.histories_text(c)) for c in conditions],
        )
    )
    rows.append(
        (
            "first divergence",
            [
                Text(
                    f"trial {c.comparison.divergence.trial} ({c.comparison.divergence.field})"
                    if c.comparison.divergence
                    else "-"
                )
                for c in conditions
            ],
        )
    )
    params = sorted({p for c in conditions for p in c.comparison.best_params})
    for name in params:
        cells = []
        for c in conditions:
            spread = c.comparison.best_params.get(name)
            cells.append(Text(fmt.spread_line(spread) if spread else "-"))
        rows.append((f"param {name}", cells))
    for label, cells in rows:
        grid.add_row(label, *cells)
    return grid


def _seeds(runs: tuple[object, ...]) -> str:
    seeds = sorted({getattr(r, "seed", 0) for r in runs})
    return ", ".join(map(str, seeds)) if len(seeds) <= 4 else f"{seeds[0]}..{seeds[-1]}"


def render(report: CompareReport, console: Console) -> None:
    console.print(
        Panel(Text(report.sentence), title="repro-check compare", title_align="left", expand=False)
    )
    console.print(Text(fmt.compare_settings_line(report), style="dim"))
    console.print(table(report))
    for name, condition in report.conditions.items():
        if condition.comparison.divergence is not None:
            console.print(
                Text.assemble(
                    (f"{TITLES.get(name, name)} first part: ", "bold"),
                    fmt.divergence_line(condition.comparison.divergence),
                )
            )
    notes = [n for c in report.conditions.values() for n in c.notes]
    for note in dict.fromkeys(notes):
        console.print(Text(f"  • {note}"))
