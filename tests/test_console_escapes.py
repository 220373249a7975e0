"""User-controlled text on the console is shown, never obeyed: control characters escaped
(NO_COLOR or not), rich markup and emoji codes left as text, rich's own styling kept."""

from __future__ import annotations

import io
import re

import pytest
from conftest import cli, fixture
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from repro_check.render.console import SafeConsole, make_console
from repro_check.render.safe import escape_controls, one_line

RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
HOSTILE = "a\x1b[31mred\x1b]0;title\x07\x9b2J\r\x08 [/x] [bold]b[/bold] :smile: \udcff"


def printed(*renderables: object, console: SafeConsole | None = None) -> str:
    buffer = io.StringIO()
    console = console or make_console(file=buffer)  # type: ignore[assignment]
    assert isinstance(console, SafeConsole)
    for renderable in renderables:
        console.print(renderable)
    return buffer.getvalue() if console.file is buffer else console.file.getvalue()  # type: ignore[attr-defined]


def test_escape_helpers() -> None:
    assert escape_controls("a\x1bb\tc\nd\x9b\udcff") == "a\\x1bb\tc\nd\\x9b\\udcff"
    assert one_line("a\nb\tc\r") == "a\\x0ab\\x09c\\x0d"
    assert escape_controls("plain ünïcode ≠ ✓") == "plain ünïcode ≠ ✓"


def test_console_escapes_every_kind_of_renderable() -> None:
    table = Table()
    table.add_column("col")
    table.add_row(HOSTILE)  # a str cell
    table.add_row(Text.assemble((HOSTILE, "bold"), " tail"))  # a styled Text cell
    out = printed(table, Text(HOSTILE), HOSTILE, Panel(Text(HOSTILE)))
    assert RAW.search(out) is None, repr(out)
    out.encode("utf-8")  # no lone surrogate left to fail the stream
    for shown in ("\\x1b[31mred", "\\x1b]0;title", "\\x9b2J", "\\udcff", " tail"):
        assert shown in out
    assert "[/x] [bold]b[/bold]" in out  # markup is text (a stray [/x] would even raise)
    assert ":smile:" in out and "😄" not in out


def test_escaped_text_wraps_instead_of_losing_its_end() -> None:
    table = Table()
    table.add_column("col")
    table.add_row(Text("\x1b" * 10 + "END"))  # ESC counts 0 cells before escaping, 4 after
    out = printed(table, console=SafeConsole(file=io.StringIO(), width=60))
    assert "END" in out and out.count("\\x1b") == 10


def test_rich_styles_still_reach_a_terminal() -> None:
    console = SafeConsole(file=io.StringIO(), force_terminal=True, color_system="standard")
    out = printed(Text("ok\x1b[5m", style="red"), console=console)
    assert "\x1b[31m" in out  # rich's own colour code
    assert "ok\\x1b[5m" in out  # the text's own sequence, shown


@pytest.mark.e2e
def test_run_console_escapes_params_from_the_objective() -> None:
    result = cli("run", fixture("escapes"), "--trials", "3", "--runs", "2")
    assert result.code == 0, result.err
    assert RAW.search(result.out) is None, repr(result.out)
    assert "x\\x1b[31m\\x1b]0;pwned\\x07[/x]" in result.out


@pytest.mark.e2e
def test_run_console_escapes_a_crashed_run_s_error() -> None:
    result = cli("run", fixture("escapes", "crash"), "--trials", "3", "--runs", "2")
    assert result.code == 3, result.out + result.err
    assert RAW.search(result.out + result.err) is None, repr(result.out)
    assert "dying\\x1b[2J\\x9b1;1H" in result.out
