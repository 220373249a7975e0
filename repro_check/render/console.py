"""The rich console report: verdict first, then what differs, then the details."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any, assert_never

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from repro_check.plan.notebooks import has_location, shown_locations
from repro_check.render import fmt, sections
from repro_check.render.safe import escape_controls, has_controls
from repro_check.render.wrap import Hanging, bullets, print_parts, whole
from repro_check.results.report import RunReport
from repro_check.vocab import RunStatus, Verdict

STYLE: dict[str, str] = {
    Verdict.REPRODUCIBLE: "bold green",
    Verdict.NOT_REPRODUCIBLE: "bold red",
    Verdict.INCOMPLETE: "bold yellow",
    Verdict.DIFFERS_FROM_BASELINE: "bold red",
    Verdict.AWAITING: "bold cyan",
    Verdict.INTERRUPTED: "bold yellow",
}
"""One style per ``Verdict`` (a test pins that every verdict has one)."""
MARK = " ≠"


class SafeConsole(Console):
    r"""A console that shows control characters in the text it prints as ``\xNN``.

    Every renderable (tables, panels, progress bars) is drawn through ``render``, so user text
    anywhere in a report (target, params, errors, notes, a saved report's environment) cannot
    send escape sequences to the terminal. Text is escaped before rich measures and wraps it
    (strings, and the ``Text`` in the tables, panels and groups given to ``print``), and any
    segment still holding a control character after; rich's own styling is added later, and
    its cursor-control segments (progress bars) pass untouched.
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(self._sanitized(obj) for obj in objects), **kwargs)

    def _sanitized(self, renderable: Any) -> Any:
        """Escape the text of a renderable tree before rich measures it: a table column is
        sized to the escaped text, so no cell is cut short."""
        if isinstance(renderable, Text):
            return _escaped(renderable, self) if _rewritten(renderable.plain) else renderable
        if isinstance(renderable, Table):
            for column in renderable.columns:
                column.header = self._sanitized(column.header)
                column._cells[:] = [self._sanitized(cell) for cell in column._cells]
        elif isinstance(renderable, Panel):
            renderable.renderable = self._sanitized(renderable.renderable)
        elif isinstance(renderable, Group):
            parts = renderable._renderables
            renderable._renderables = type(parts)(self._sanitized(r) for r in parts)
        return renderable

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(escape_controls(shown_locations(text)), **kwargs)

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        if isinstance(renderable, Text) and _rewritten(renderable.plain):
            renderable = _escaped(renderable, self)
        for segment in super().render(renderable, options):
            if segment.control or not has_controls(segment.text):
                yield segment
            else:
                yield Segment(escape_controls(segment.text), segment.style)


def _rewritten(plain: str) -> bool:
    """The text holds a control character, or a notebook cell's location to spell out."""
    return has_controls(plain) or has_location(plain)


def _escaped(text: Text, console: Console) -> Text:
    """A copy of ``text`` whose control characters are written out, its styles kept (and each
    notebook location ``tune.ipynb, cell 7 (In [7]):3`` read as ``..., line 3``)."""
    parts = [
        (escape_controls(shown_locations(s.text)), s.style) for s in text.render(console, end="")
    ]
    copy = Text(
        style=text.style,
        justify=text.justify,
        overflow=text.overflow,
        no_wrap=text.no_wrap,
        end=text.end,
        tab_size=text.tab_size,
    )
    for part, style in parts:
        copy.append(part, style)
    return copy


def make_console(file: IO[str] | None = None, stderr: bool = False) -> Console:
    """The one place consoles are made (tests pin NO_COLOR and COLUMNS through the env).

    Strings are never read as rich markup or emoji codes: ``[/x]`` in a param name is text."""
    return SafeConsole(
        file=file, stderr=stderr, highlight=False, soft_wrap=False, markup=False, emoji=False
    )


def best_table(section: sections.BestTable) -> Table:
    cells, ref = section.table, section.reference
    title = f"Best per run (≠: differs from run {ref})" if ref is not None else ""
    table = Table(title=title or "Best per run", title_justify="left", expand=False)
    for column, numeric in zip(cells.columns, cells.numeric, strict=True):
        table.add_column(column, justify="right" if numeric else "left")
    for row, status in zip(cells.rows, cells.statuses, strict=True):
        styled: list[RenderableType] = []
        for position, cell in enumerate(row):
            if cell.differs:
                styled.append(Text(cell.text + MARK, style="bold red"))
            elif position == 1:
                styled.append(
                    Text(cell.text, style="green" if status == RunStatus.OK else "bold yellow")
                )
            else:
                styled.append(Text(cell.text))
        table.add_row(*styled)
    return table


def pareto_table(front: fmt.ParetoTable) -> Table:
    title = "Pareto front per run"
    if front.reference is not None:
        title += f" (≠: differs from run {front.reference}'s at the same position)"
    table = Table(title=title, title_justify="left", expand=False)
    for column, numeric in zip(front.columns, front.numeric, strict=True):
        table.add_column(column, justify="right" if numeric else "left")
    for row in front.rows:
        table.add_row(
            *(Text(c.text + MARK, style="bold red") if c.differs else Text(c.text) for c in row)
        )
    return table


def _resume(section: sections.Resume) -> RenderableType:
    """The resume check's line and why (its fix is printed whole after it: ``render``)."""
    shown: list[RenderableType] = [Text.assemble(("Resume: ", "bold"), section.text)]
    if section.reason:
        shown.append(Hanging("  why: ", section.reason))
    return Group(*shown)


def draw(section: sections.RunSection) -> RenderableType:
    """One section as a rich renderable."""
    match section:
        case sections.Headline(command, verdict, text):
            style = STYLE[verdict]
            return Panel(
                Text(text, style=style),
                title=f"repro-check {command}",
                title_align="left",
                border_style=style.split()[-1],
                expand=False,
            )
        case sections.Settings(text):
            return Text(text, style="dim")
        case sections.StudyHeading(text, agrees):
            return Text(text, style="bold" if agrees else "bold red")
        case sections.Resume():
            return _resume(section)
        case sections.BestTable():
            return best_table(section)
        case sections.ParetoTable(table):
            return pareto_table(table)
        case sections.Divergence(text):
            return Text.assemble(("First divergence: ", "bold"), text)
        case sections.Baseline(text):
            return Text.assemble(("Baseline: ", "bold"), text)
        case sections.Spread(label, text, histories):
            return Text.assemble(
                (f"{label}: ", "bold"), text, ("   distinct histories: ", "bold"), histories
            )
        case sections.ParamSpread(rows):
            lines = [Text.assemble(("Best-param spread:", "bold"))]
            return Group(*lines, *(Text(f"  {name}: {spread}") for name, spread in rows))
        case sections.FailedTrials(lines):
            return Group(Text("Failed trials:", style="bold"), *(Text(f"  {x}") for x in lines))
        case sections.Notes(notes):
            return Group(Text("Notes:", style="bold"), bullets(notes))
        case sections.Environment(text):
            return Text.assemble(("Environment: ", "bold"), text, style="dim")
        case sections.Hint(text):  # hints hold commands: never folded
            return whole(("Hint: ", "bold cyan"), text)
    assert_never(section)


def render(report: RunReport, console: Console) -> None:
    parts: list[RenderableType] = []
    for section in sections.run_sections(report):
        parts.append(draw(section))
        if isinstance(section, sections.Resume) and section.fix:  # code to paste: whole
            parts.append(whole(("  fix: ", "bold cyan"), section.fix))
    print_parts(console, parts)
