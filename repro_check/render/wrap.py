"""Console text that survives narrow terminals and pipes (rich folds at 80 columns there).

Commands and code the tool suggests must stay whole so they can be pasted: they are printed
as one line that rich never folds or crops (the terminal may still soft-wrap it visually;
copying gives the whole line back). Long notes wrap under their own indent.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.text import Text


def whole(*parts: str | tuple[str, str]) -> Text:
    """A line printed as is at any width (see ``print_parts``): for suggested commands."""
    return Text.assemble(*parts, no_wrap=True, overflow="ignore")


def is_whole(part: RenderableType) -> bool:
    return isinstance(part, Text) and part.no_wrap is True and part.overflow == "ignore"


def print_parts(console: Console, parts: Iterable[RenderableType]) -> None:
    """Print each part; ``whole`` lines in soft-wrap mode, so rich neither folds nor crops
    them."""
    for part in parts:
        console.print(part, soft_wrap=is_whole(part))


class Hanging:
    """``prefix`` then ``text``, wrapped so that continuation lines start under the text."""

    def __init__(self, prefix: str, text: str) -> None:
        self.prefix = prefix
        self.text = text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = max(options.max_width - len(self.prefix), 10)
        lines = Text(self.text).wrap(console, room, overflow="fold")
        for number, line in enumerate(lines):
            line.rstrip()
            lead = self.prefix if number == 0 else " " * len(self.prefix)
            yield Text.assemble(lead, line, end="\n")


def bullets(items: Iterable[str], indent: int = 2, bullet: str = "•") -> Group:
    """``  • text`` lines whose continuation lines start under the text, not at column 0."""
    return Group(*(Hanging(" " * indent + bullet + " ", item) for item in items))


def code_block(code: str, console: Console, title: str = "fix") -> list[RenderableType]:
    """Code to paste: in a titled panel when every line fits the console, else the title and
    the lines printed whole (a panel would fold or crop them). Sized as shown: a notebook
    cell's location spelled out (``tune.ipynb, cell 7 (In [7]), line 3``)."""
    from repro_check.plan.notebooks import shown_locations

    code = shown_locations(code)
    lines = code.splitlines() or [""]
    if max(len(line) for line in lines) + 4 <= console.width:
        from rich.syntax import Syntax  # pygments: only for a report that has a fix to show

        syntax = Syntax(code, "python", theme="ansi_dark", background_color="default")
        return [Panel(syntax, title=title, title_align="left", expand=False)]
    return [Text(f"{title}:", style="bold"), *(whole("  " + line) for line in lines)]
