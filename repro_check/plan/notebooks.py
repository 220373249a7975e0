"""Notebook targets (``tune.ipynb``), before anything runs: the optional extra they need, their
``-p NAME VALUE`` parameters (papermill's ``parameters``-tagged cell), how a cell is named, and
how a location in a cell is shown.

A cell's code is compiled under a name that says where it is in the notebook,
``tune.ipynb, cell 7 (In [7])`` (``cell N``: its position among all the notebook's cells,
Markdown ones included; ``In [K]``: the execution count a fresh "Restart & Run All" gives it).
So every ``file:line`` the tool records reads ``tune.ipynb, cell 7 (In [7]):3``, which parses
as any other location (the JSON report keeps it), and the console, Markdown and JUnit show it
as ``tune.ipynb, cell 7 (In [7]), line 3`` (``shown_locations``).

The notebook is read as JSON here (no nbformat needed to plan), never written.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import linecache
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from repro_check.errors import ConfigError
from repro_check.plan.targets import NOTEBOOK, kind

if TYPE_CHECKING:
    from repro_check.plan.settings import CheckPlan

EXTRA = "notebook"
MISSING_EXTRA = "a notebook needs IPython and nbformat: pip install 'repro-check-optuna[notebook]'"
"""The one line a notebook check says when the ``notebook`` extra is not installed."""
PARAMETERS_TAG = "parameters"
"""papermill's tag: the cell whose assignments ``-p NAME VALUE`` overrides."""
PARAMETER_FLAGS = ("-p", "--parameter")

_LOCATION = re.compile(r"(\.ipynb, cell \d+ \(In \[\d+\]\)):(\d+)\b")


def cell_name(notebook: str, position: int, count: int) -> str:
    """The name a cell's code is compiled under (``tune.ipynb, cell 7 (In [7])``), next to
    ``notebook`` (a path: an absolute one keeps the cell under the user's folder)."""
    return f"{notebook}, cell {position} (In [{count}])"


def shown_locations(text: str) -> str:
    """``text`` with each cell location ``tune.ipynb, cell 7 (In [7]):3`` written as the user
    reads it, ``tune.ipynb, cell 7 (In [7]), line 3``; other text unchanged."""
    return _LOCATION.sub(r"\1, line \2", text) if ".ipynb, cell " in text else text


_CELL = re.compile(r"(.*\.ipynb), cell \d+ \(In \[\d+\]\)")


def notebook_of(file: str) -> str | None:
    """The notebook a cell's name (``tune.ipynb, cell 7 (In [7])``) is in; None for a file."""
    match = _CELL.fullmatch(file)
    return match.group(1) if match else None


def has_location(text: str) -> bool:
    return ".ipynb, cell " in text and _LOCATION.search(text) is not None


@dataclass(frozen=True)
class Cell:
    """One cell as a fresh kernel runs it: ``position`` among all cells (1-based), ``count``
    its ``In [K]`` (0 for a Markdown/raw cell or an empty code cell, which get none)."""

    position: int
    count: int
    code: bool
    source: str
    tags: tuple[str, ...]


def read_cells(path: str) -> list[Cell]:
    """The notebook's cells, numbered. Raises ``ConfigError`` (one line) when the file is
    missing or not a notebook."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a notebook (JSON): {exc}") from None
    return cells_of(data, path)


def cells_of(data: object, path: str) -> list[Cell]:
    """The cells of a notebook read as JSON (nbformat 4; the worker reads it with nbformat,
    which also upgrades older formats). Raises ``ConfigError``."""
    raw = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise ConfigError(f"{path} is not a notebook: no list of cells (nbformat 4)")
    cells: list[Cell] = []
    count = 0
    for position, cell in enumerate(raw, start=1):
        if not isinstance(cell, dict):
            raise ConfigError(f"{path} is not a notebook: cell {position} is not an object")
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(part, str) for part in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise ConfigError(f"{path} is not a notebook: cell {position}'s source is not text")
        code = cell.get("cell_type") == "code"
        runs = code and bool(source.strip())  # an empty cell gets no In [K] in Jupyter either
        count += runs
        metadata = cell.get("metadata")
        tags = metadata.get("tags") if isinstance(metadata, dict) else None
        tags = tuple(str(t) for t in tags) if isinstance(tags, list) else ()  # untrusted JSON
        cells.append(Cell(position, count if runs else 0, code, source, tags))
    return cells


def parameters_cell(cells: Sequence[Cell]) -> Cell | None:
    """The first code cell tagged ``parameters`` (papermill's rule), or None."""
    return next((c for c in cells if c.code and PARAMETERS_TAG in c.tags), None)


def parameter_value(text: str) -> str:
    """The Python source a ``-p`` value is assigned as: a Python literal as written
    (``5``, ``0.1``, ``True``, ``[1, 2]``, ``'a'``), anything else as a string."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return repr(text)
    if isinstance(value, float) and not math.isfinite(value):  # repr(inf) is no Python
        return f"float({str(value)!r})"
    source = repr(value)
    try:  # a container holding inf or nan: its repr is no Python either
        ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return repr(text)
    return source


def split_parameters(given: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``-p`` values (``NAME=VALUE``: the command line joins ``-p NAME VALUE``) as (name,
    Python source) pairs, in order; a later one of the same name wins. Raises ``ConfigError``."""
    pairs: dict[str, str] = {}
    for item in given:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"-p {name} needs a value: -p NAME VALUE")
        if not name.isidentifier():
            raise ConfigError(f"-p {name!r}: a parameter is a Python name")
        pairs[name] = parameter_value(value)
    return tuple(pairs.items())


def check_target(target: str, parameters: Sequence[tuple[str, str]]) -> None:
    """Before anything runs: the extra is installed, and each ``-p`` names a variable the
    notebook's ``parameters`` cell assigns (a typo would otherwise change nothing, silently).
    Raises ``ConfigError`` (exit 2). ``-p`` on another target is refused by the caller."""
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in ("IPython", "nbformat")):
        raise ConfigError(MISSING_EXTRA)
    cells = read_cells(target)
    register_sources(target, cells)
    if not parameters:
        return
    name = Path(target).name
    cell = parameters_cell(cells)
    if cell is None:
        raise ConfigError(
            f"-p needs a cell tagged 'parameters' in {name} (papermill's convention); it has none"
        )
    assigned = assigned_names(cell.source)
    unknown = [n for n, _ in parameters if n not in assigned]
    if unknown:
        where = cell_name(name, cell.position, cell.count)
        known = ", ".join(sorted(assigned)) or "nothing"
        raise ConfigError(f"-p {unknown[0]}: {where} does not assign it (it assigns {known})")


def assigned_names(source: str) -> set[str]:
    """The names a cell assigns at top level (``n = 5``, ``n: int = 5``); magics make the
    cell unparsable as Python, and then nothing is known to be assigned."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign | ast.AugAssign)
            else []
        )
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def register_sources(target: str, cells: Sequence[Cell]) -> None:
    """Put each code cell's source in ``linecache`` under the name its locations carry, so the
    parent process quotes a cell's line (a cause's source line) as it quotes a script's."""
    name = str(Path(target))
    for cell in cells:
        if cell.count:
            lines = [line + "\n" for line in cell.source.splitlines()]
            for shown in {
                cell_name(name, cell.position, cell.count),
                cell_name(Path(name).name, cell.position, cell.count),
            }:
                linecache.cache[shown] = (len(cell.source), None, lines, shown)


def with_parameters(plan: CheckPlan, given: Sequence[str] | None) -> CheckPlan:
    """``plan`` with its ``-p`` values (``NAME=VALUE``), checked: ``-p`` needs a notebook
    target with a ``parameters`` cell assigning each name, and a notebook needs the extra.
    Raises ``ConfigError`` (one line, exit 2)."""
    notebook = kind(plan.target) == NOTEBOOK
    if given and not notebook:
        raise ConfigError(
            f"-p sets a notebook's parameters (tune.ipynb); {plan.target} is not a notebook"
        )
    if not notebook:
        return plan
    parameters = split_parameters(given or ())
    check_target(plan.target, parameters)
    return dataclasses.replace(plan, parameters=parameters)
