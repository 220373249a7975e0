"""What the parent can tell about a script check without running the script: whether the file
also defines ``objective`` (a bare ``file.py`` used to mean ``file.py:objective``), and whether
replicates running at once changed files in the shared working folder."""

from __future__ import annotations

import ast
import os
from pathlib import Path

from repro_check.plan.targets import SCRIPT, kind, script_name

MAX_SOURCE_BYTES = 4 * 1024 * 1024
"""Larger files are not parsed for the ``objective`` note (the note is a courtesy)."""
MAX_ENTRIES = 10_000
"""The most working-folder entries compared before and after a check."""

Snapshot = dict[str, tuple[int, int]]


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


def snapshot(folder: str = ".") -> Snapshot:
    """Name -> (size, mtime) of the working folder's entries (a subfolder's mtime changes
    when a file is created in it)."""
    found: Snapshot = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if len(found) >= MAX_ENTRIES:
                    break
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                found[entry.name] = (info.st_size, info.st_mtime_ns)
    except OSError:
        pass
    return found


def folder_note(before: Snapshot, after: Snapshot, workers: int) -> str | None:
    """The warning when replicates ran at once and the working folder changed under them."""
    if workers < 2:
        return None
    changed = sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
    if not changed:
        return None
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return (
        f"the script created or changed files in its working folder ({shown}) while "
        f"{workers} replicates ran at once: they may have read each other's files; rerun "
        "with --workers 1 to rule that out"
    )
