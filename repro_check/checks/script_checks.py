"""What the parent adds to a script check's report: whether the file also defines ``objective``
(a bare ``file.py`` used to mean ``file.py:objective``; read with ``ast``, never run), and
whether replicates running at once wrote files in the working folder they share."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

from repro_check.plan.targets import SCRIPT, kind, script_name
from repro_check.results.records import RunRecord
from repro_check.results.script_notes import WRITTEN_PREFIX

MAX_SOURCE_BYTES = 4 * 1024 * 1024
"""Larger files are not parsed for the ``objective`` note (the note is a courtesy)."""


def objective_note(target: str) -> str | None:
    """A note when the script ``target`` also defines a top-level ``objective``."""
    if kind(target) != SCRIPT:
        return None
    try:
        path = Path(target)
        if not path.is_file() or path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        tree = ast.parse(path.read_bytes(), filename=target)
    except (OSError, SyntaxError, ValueError):
        return None
    defines = any(
        (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "objective")
        or (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "objective" for t in node.targets)
        )
        for node in tree.body
    )
    if not defines:
        return None
    name = script_name(target)
    return (
        f"{name} also defines `objective`: a bare {name} runs the whole script, as "
        f"`python {name}` does; to check the function alone in repro-check's study, "
        f"pass {target}:objective"
    )


def folder_note(runs: Sequence[RunRecord], workers: int) -> str | None:
    """The warning when replicates ran at once and wrote files in the folder they share."""
    if workers < 2:
        return None
    written = sorted(
        {
            name.strip()
            for run in runs
            for note in run.notes
            if note.startswith(WRITTEN_PREFIX)
            for name in note[len(WRITTEN_PREFIX) :].split(",")
            if name.strip()
        }
    )
    if not written:
        return None
    shown = ", ".join(written[:5]) + (f" and {len(written) - 5} more" if len(written) > 5 else "")
    return (
        f"the script wrote files in its working folder ({shown}) while {workers} replicates "
        "ran at once: they may have read each other's files; rerun with --workers 1 to rule "
        "that out"
    )
