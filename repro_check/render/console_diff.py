"""Console view of ``diff``: what was compared and each side's own verdict, results side by side,
then environments, differences first. Every string from the files is shortened for display, so
rendering stays fast whatever the reports hold."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from repro_check.render import fmt
from repro_check.results.baseline import reference
from repro_check.results.report_diff import RESULT_INCOMPLETE, RESULT_SAME, ReportDiff

SHOWN = 200
"""Longest string from a report shown as is (paths, environment values, param names)."""


def short(text: object, limit: int = SHOWN) -> str:
    value = str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _headline(diff: ReportDiff) -> Text:
    if diff.result == RESULT_SAME:
        return Text(
            "SAME RESULTS: every run of both reports agrees on every trial", style="bold green"
        )
    if diff.result == RESULT_INCOMPLETE:
        return Text(
            "INCOMPLETE: the finished runs agree, but not every run finished", style="bold yellow"
        )
    d = diff.divergence
    if d is None:  # the runs agree, but a side is not reproducible by its own verdict
        own = "; ".join(
            f"{name} is {report.verdict}"
            for name, report in (("A", diff.a), ("B", diff.b))
            if not report.reproducible
        )
        return Text(f"DIFFERENT RESULTS: {own}", style="bold red")
    if diff.across:
        where = "they part"
    else:
        side = diff.divergence_runs[0][0] if diff.divergence_runs else "?"
        where = f"{side}'s own runs part"
    return Text(f"DIFFERENT RESULTS: {where} at trial {d.trial} ({d.field})", style="bold red")


def render(diff: ReportDiff, console: Console, all_env: bool = False) -> None:
    console.print(
        Panel(_headline(diff), title="repro-check diff", title_align="left", expand=False)
    )
    console.print(Text.assemble(("Compared: ", "bold"), short(diff.compared, 2000)))
    results = Table(title="Results", title_justify="left")
    results.add_column("")
    results.add_column(f"A: {short(diff.path_a)}", justify="right")
    results.add_column(f"B: {short(diff.path_b)}", justify="right")
    ref_a, ref_b = reference(diff.a.runs), reference(diff.b.runs)
    results.add_row("own verdict", diff.a.verdict, diff.b.verdict)
    results.add_row("reference run", str(ref_a.index), str(ref_b.index))
    results.add_row("best value", fmt.num(ref_a.best_value, 10), fmt.num(ref_b.best_value, 10))
    params_a, params_b = ref_a.best_params or {}, ref_b.best_params or {}
    for name in sorted(params_a.keys() | params_b.keys()):
        results.add_row(
            f"param {short(name)}",
            short(fmt.param(params_a[name])) if name in params_a else "-",
            short(fmt.param(params_b[name])) if name in params_b else "-",
        )
    results.add_row(
        "distinct histories",
        str(diff.a.comparison.distinct_histories),
        str(diff.b.comparison.distinct_histories),
    )
    console.print(results)
    if diff.divergence is not None:
        console.print(
            Text.assemble(
                ("First divergence: ", "bold"), short(fmt.divergence_line(diff.divergence), 2000)
            )
        )
    console.print(Text(f"Distinct histories across both: {diff.distinct_histories}"))
    for name, report in (("A", diff.a), ("B", diff.b)):
        tol = report.saved_tolerance
        if tol is not None and tol != diff.tolerance:
            console.print(
                Text(
                    f"{name} was saved with atol={tol.atol:g}, rtol={tol.rtol:g}; this diff "
                    "uses the command's (--atol/--rtol), not the file's",
                    style="yellow",
                )
            )
    if diff.settings_changed:
        console.print(
            Text.assemble(
                ("Settings differ: ", "bold yellow"), short("; ".join(diff.settings_changed), 2000)
            )
        )
    env = Table(title="Environment (differences first)", title_justify="left")
    for column in ("", "A", "B"):
        env.add_column(column)
    differing = [row for row in diff.environment if row.differs]
    shown = diff.environment if all_env else differing
    for row in shown:
        style = "bold red" if row.differs else ""
        env.add_row(Text(short(row.key), style=style), short(row.a or "-"), short(row.b or "-"))
    if shown:
        console.print(env)
    hidden = len(diff.environment) - len(shown)
    if not differing:
        console.print(Text("Environments are identical.", style="dim"))
    elif hidden:
        console.print(Text(f"({hidden} identical environment entries hidden)", style="dim"))
