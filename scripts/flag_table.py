"""Print the Markdown flag table of a command from the CLI definitions, to paste into the README.

    python scripts/flag_table.py compare

tests/test_cli_conventions.py checks that the README's tables name exactly each command's flags,
with the same metavars, so the tables cannot drift from the CLI.
"""

from __future__ import annotations

import sys

import typer

from repro_check.cli import app
from repro_check.cli_options import PANELS

COMMON = {"-h", "--help", "-V", "--version"}


def rows(command_name: str) -> list[tuple[str, str, str]]:
    group = typer.main.get_command(app)
    command = group.commands[command_name]  # type: ignore[attr-defined]
    found = []
    for param in command.params:
        if param.param_type_name != "option" or set(param.opts) <= COMMON:
            continue
        metavar = "" if param.is_flag else f" {param.metavar}"
        flags = ", ".join(f"`{opt}{metavar}`" for opt in param.opts)
        found.append((flags, param.rich_help_panel or "General", param.help or ""))
    return sorted(found, key=lambda row: PANELS.index(row[1]))  # as --help groups them


def table(command_name: str) -> str:
    lines = ["| flag | group | meaning |", "| --- | --- | --- |"]
    lines += [f"| {flags} | {panel} | {help_} |" for flags, panel, help_ in rows(command_name)]
    return "\n".join(lines)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(table(name))
        print()
