"""Notebook mode in the worker: run a notebook's code cells top to bottom as a fresh kernel
would, in place of script mode's script (``script.run`` calls ``run`` for a ``.ipynb``; the
capture, the comparison and the reports are script mode's).

Each code cell goes through IPython's own ``InteractiveShell.run_cell``, so line and cell magics,
``!cmd``, top-level ``await`` and ``In``/``Out`` behave as in Jupyter. Its code is compiled under
the name ``tune.ipynb, cell 7 (In [7])`` (``plan.notebooks.cell_name``), next to the notebook,
so the frames of a cell are the user's code and every location the capture records names the
cell; ``linecache`` holds the cell's own source under that name. The notebook file is only read.

A cell that cannot run (an unknown magic, a syntax error, a magic that waits for a person) ends
the run with an error naming the cell; an exception the cell raises ends it as a script's
would (IPython stops "Run All" there too).
"""

from __future__ import annotations

import ast
import linecache
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from repro_check.errors import ConfigError, TargetError
from repro_check.execution.userframes import add_user_root, shown_path
from repro_check.plan.notebooks import (
    MISSING_EXTRA,
    Cell,
    cell_name,
    cells_of,
    parameters_cell,
)

REFUSED_CELL_MAGICS: Mapping[str, str] = {
    "debug": "it stops in the debugger and waits for a person",
}
"""Cell magics a check cannot honour, and why (IPython's other magics run as in Jupyter)."""
TIMED = ("<timed exec>", "<timed eval>")
"""The names ``%time``/``%%time`` compile the code they time under: it is the cell's code."""


def run(path: str, args: Sequence[str], parameters: Mapping[str, str]) -> None:
    """Run the notebook at ``path`` with ``sys.argv`` = ``[path, *args]`` and ``sys.path[0]`` its
    folder (a kernel started there), ``parameters`` (name -> Python source) assigned right after
    its ``parameters`` cell. Raises ``TargetError`` when it cannot start or a cell cannot run;
    re-raises what a cell raised (with its traceback, for the location)."""
    try:
        import IPython  # noqa: F401
        import nbformat
    except ImportError:
        raise TargetError(MISSING_EXTRA) from None
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise TargetError(f"no such file: {path}")
    try:
        read: Any = nbformat.read  # untyped: it upgrades and validates the notebook
        cells = cells_of(read(full, as_version=4), path)
    except ConfigError as exc:
        raise TargetError(str(exc)) from None
    except Exception as exc:  # nbformat's own reading and validation errors
        raise TargetError(f"{path} is not a notebook nbformat reads: {exc}") from None
    folder = os.path.dirname(full)
    sys.argv = [path, *args]
    sys.path.insert(0, folder)
    add_user_root(folder)
    folder = tempfile.mkdtemp(prefix="repro-check-ipython-")
    try:
        runner = _CellRunner(_shell(folder), full)
        params = parameters_cell(cells)
        for cell in cells:
            if not cell.count:
                continue
            runner.run(cell)
            if cell is params and parameters:
                runner.assign(parameters)
            if runner.shell.exit_now:  # exit() in a cell: the kernel stops there
                break
    finally:  # however the cells ended (the worker may end without running atexit)
        shutil.rmtree(folder, ignore_errors=True)


def _shell(folder: str) -> Any:
    """A fresh IPython shell for this process: no history database, no colours, its profile in
    ``folder`` (the user's ~/.ipython is neither read nor written)."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class KernelShell(InteractiveShell):
        """What a Jupyter kernel's shell adds that cells use: ``%matplotlib inline`` asks for
        a GUI event loop (none here: figures are not shown), ``exit()`` ends the kernel, and
        a traceback IPython prints without raising (inside ``%%capture``, ``%run``, ``%time``)
        is kept, so that a failed cell never passes for one that ran."""

        shown: list[BaseException]

        def enable_gui(self, gui: Any = None) -> None:
            return None

        def ask_exit(self) -> None:
            self.exit_now = True

        def showtraceback(self, *args: Any, **kwargs: Any) -> None:
            failed = sys.exc_info()[1]
            if failed is not None:
                self.shown.append(failed)
            super().showtraceback(*args, **kwargs)

    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.xmode = "Plain"
    # made here, IPython writes no README into it (its copy shows as a write in the folder)
    os.makedirs(os.path.join(folder, "profile_default", "startup"))
    shell = KernelShell.instance(config=config, ipython_dir=folder)
    shell.shown = []
    shell.compile = _cell_compiler()
    return shell


def _cell_compiler() -> Any:
    """IPython's caching compiler, naming each cell's code after its place in the notebook."""
    from IPython.core.compilerop import CachingCompiler

    class CellCompiler(CachingCompiler):
        """``name`` is the cell being run; ``body_line`` where a cell magic's body starts (its
        body is compiled by a nested ``run_cell``: line 1 of it is that line of the cell)."""

        name = "<cell>"
        source = ""
        body_line = 0
        parsed = 0

        def get_code_name(self, raw_code: str, transformed_code: str, number: int) -> str:
            return self.name

        def cache(self, transformed_code: str, number: int = 0, raw_code: str | None = None) -> str:
            name = str(super().cache(transformed_code, number, raw_code))
            lines = [line + "\n" for line in self.source.splitlines()]
            linecache.cache[name] = (len(self.source), None, lines, name)  # the cell as written
            return name

        def __call__(self, source: Any, filename: str, symbol: str, *args: Any, **kw: Any) -> Any:
            if filename in TIMED and self.body_line:  # %%time compiles its body: the cell's
                filename = self.name
            return super().__call__(source, filename, symbol, *args, **kw)

        def ast_parse(self, source: str, filename: str = "<unknown>", symbol: str = "exec") -> Any:
            tree = super().ast_parse(source, filename, symbol)
            self.parsed += 1
            if self.parsed > 1 and self.body_line > 1:
                ast.increment_lineno(tree, self.body_line - 1)
            return tree

    made: Any = CellCompiler  # IPython's __init__ is untyped
    return made()


class _CellRunner:
    """Runs the cells in one shell, each under its own name; says which cell failed."""

    def __init__(self, shell: Any, notebook: str) -> None:
        self.shell = shell
        self.notebook = notebook

    def run(self, cell: Cell) -> None:
        name = cell_name(self.notebook, cell.position, cell.count)
        _refuse(cell, name)
        compiler = self.shell.compile
        compiler.name, compiler.source, compiler.parsed = name, cell.source, 0
        compiler.body_line = _magic_body_line(cell.source)
        self.shell.shown.clear()
        result = self.shell.run_cell(cell.source, store_history=True)
        self._raise(result, name)
        if self.shell.shown:  # it failed inside, though the cell went on (%%capture, %run)
            raise self.shell.shown[0]

    def assign(self, parameters: Mapping[str, str]) -> None:
        """``-p``'s values, as papermill's injected cell assigns them (uncounted: the cells
        after it keep their ``In [K]``)."""
        code = "".join(f"{name} = {value}\n" for name, value in parameters.items())
        compiler = self.shell.compile
        name = f"{self.notebook}, -p parameters"
        compiler.name, compiler.source, compiler.parsed, compiler.body_line = name, code, 0, 0
        self._raise(self.shell.run_cell(code, store_history=False), name)

    def _raise(self, result: Any, name: str) -> None:
        from IPython.core.error import UsageError

        where = shown_path(name)
        before = result.error_before_exec
        if before is not None:
            if isinstance(before, SyntaxError):
                raise TargetError(f"syntax error in {where}, line {before.lineno}: {before.msg}")
            raise TargetError(f"{where} cannot run: {type(before).__name__}: {before}")
        failed = result.error_in_exec
        if isinstance(failed, UsageError):  # an unknown magic, a magic's bad arguments
            raise TargetError(f"{where} cannot run: {failed}")
        if failed is not None:
            raise failed


def _magic_body_line(source: str) -> int:
    """The cell's line its cell magic's body starts on (0 without a cell magic)."""
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or not lines[first].startswith("%%"):
        return 0
    return first + 2


def _refuse(cell: Cell, name: str) -> None:
    """A cell magic the check cannot honour: an error naming the cell, before it runs."""
    lines = [line for line in cell.source.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("%%"):
        return
    magic = lines[0][2:].split(maxsplit=1)[0] if lines[0][2:].strip() else ""
    why = REFUSED_CELL_MAGICS.get(magic)
    if why is not None:
        raise TargetError(f"{shown_path(name)} cannot run: %%{magic} {why}")
