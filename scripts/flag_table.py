"""Print a command's reference (usage, help, arguments, flag table) from the CLI definitions.

    python scripts/flag_table.py compare

The docs' reference page (docs/reference/cli.md) is generated from these functions by
scripts/docs_hooks.py (``python scripts/docs_hooks.py`` rewrites it after a flag changes), and
tests/test_cli_conventions.py checks that it names exactly each command's flags with the same
metavars, so the reference cannot drift from the CLI.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from repro_check.cli import app
from repro_check.cli_options import PANELS

COMMON = {"-h", "--help", "-V", "--version"}


def group() -> Any:
    """The CLI as click objects (typer vendors its own click: typed loosely here)."""
    return typer.main.get_command(app)


def command_names() -> list[str]:
    """Every command, in the order ``repro-check -h`` lists them."""
    return list(group().commands)


def _command(command_name: str) -> Any:
    return group().commands[command_name]


def markdown_text(text: str) -> str:
    """``text`` safe in a Markdown table: ``<name>`` outside code spans would be read as an
    HTML tag (and vanish), ``|`` as a cell border."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return "`".join(parts)


def rows(command_name: str) -> list[tuple[str, str, str]]:
    found = []
    for param in _command(command_name).params:
        if param.param_type_name != "option" or set(param.opts) <= COMMON:
            continue
        metavar = "" if param.is_flag else f" {param.metavar}"
        flags = ", ".join(f"`{opt}{metavar}`" for opt in param.opts)
        panel = param.rich_help_panel or "General"
        found.append((flags, panel, markdown_text(param.help or "")))
    return sorted(found, key=lambda row: PANELS.index(row[1]))  # as --help groups them


def table(command_name: str) -> str:
    lines = ["| flag | group | meaning |", "| --- | --- | --- |"]
    lines += [f"| {flags} | {panel} | {help_} |" for flags, panel, help_ in rows(command_name)]
    return "\n".join(lines)


def usage(command_name: str) -> str:
    """``repro-check run [OPTIONS] [TARGET] [-- ARGS]``, as ``-h`` prints it."""
    command = _command(command_name)
    context_class = command.context_class
    parent = context_class(group(), info_name="repro-check")
    context = context_class(command, info_name=command_name, parent=parent)
    return command.get_usage(context).removeprefix("Usage: ")


def arguments(command_name: str) -> list[tuple[str, str]]:
    """(metavar, help) of each positional argument."""
    return [
        (str(param.metavar or param.name).strip(), getattr(param, "help", None) or "")
        for param in _command(command_name).params
        if param.param_type_name == "argument"
    ]


def reference(command_name: str) -> str:
    """A command's whole reference in Markdown: usage, its help, arguments, flags."""
    help_ = (_command(command_name).help or "").replace("\n\n", "\0").replace("\n", " ")
    parts = [f"```\n{usage(command_name)}\n```", *map(markdown_text, help_.split("\0"))]
    args = arguments(command_name)
    if args:
        lines = ["| argument | meaning |", "| --- | --- |"]
        lines += [f"| `{metavar}` | {markdown_text(text)} |" for metavar, text in args]
        parts.append("\n".join(lines))
    parts.append(table(command_name))
    parts.append("Every command also takes `-h`/`--help` and `-V`/`--version`.")
    return "\n\n".join(parts)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(reference(name))
        print()
