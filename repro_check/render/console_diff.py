"""Console view of ``diff``: results side by side, then environments, differences first."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from repro_check.baseline import reference
from repro_check.diff import ReportDiff
from repro_check.render import fmt


def render(diff: ReportDiff, console: Console, all_env: bool = False) -> None:
    if diff.same_results:
        head = Text("SAME RESULTS: the two reports agree on every trial", style="bold green")
    else:
        d = diff.divergence
        assert d is not None
        head = Text(
            f"DIFFERENT RESULTS: they part at trial {d.trial} ({d.field})", style="bold red"
        )
    console.print(Panel(head, title="repro-check diff", title_align="left", expand=False))
    results = Table(title="Results", title_justify="left")
    results.add_column("")
    results.add_column(f"A: {diff.path_a}", justify="right")
    results.add_column(f"B: {diff.path_b}", justify="right")
    ref_a, ref_b = reference(diff.a.runs), reference(diff.b.runs)
    results.add_row("verdict", diff.a.verdict, diff.b.verdict)
    results.add_row("best value", fmt.num(ref_a.best_value, 10), fmt.num(ref_b.best_value, 10))
    params_a, params_b = ref_a.best_params or {}, ref_b.best_params or {}
    for name in sorted(params_a.keys() | params_b.keys()):
        results.add_row(
            f"param {name}",
            fmt.param(params_a[name]) if name in params_a else "-",
            fmt.param(params_b[name]) if name in params_b else "-",
        )
    results.add_row(
        "distinct histories",
        str(diff.a.comparison.distinct_histories),
        str(diff.b.comparison.distinct_histories),
    )
    console.print(results)
    if diff.divergence is not None:
        console.print(
            Text.assemble(("First divergence: ", "bold"), fmt.divergence_line(diff.divergence))
        )
    console.print(Text(f"Distinct histories across both: {diff.distinct_histories}"))
    if diff.settings_changed:
        console.print(
            Text.assemble(("Settings differ: ", "bold yellow"), "; ".join(diff.settings_changed))
        )
    env = Table(title="Environment (differences first)", title_justify="left")
    for column in ("", "A", "B"):
        env.add_column(column)
    differing = [row for row in diff.environment if row.differs]
    shown = diff.environment if all_env else differing
    for row in shown:
        style = "bold red" if row.differs else ""
        env.add_row(Text(row.key, style=style), row.a or "-", row.b or "-")
    if shown:
        console.print(env)
    hidden = len(diff.environment) - len(shown)
    if not differing:
        console.print(Text("Environments are identical.", style="dim"))
    elif hidden:
        console.print(Text(f"({hidden} identical environment entries hidden)", style="dim"))
