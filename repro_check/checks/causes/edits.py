"""Fixes written as edits of the user's own lines, so that what ``diagnose`` prints pastes.

A fix that names a line gives the line as it should read (the user's own statement with the
missing ``seed=0`` or ``random_state=0`` added, their formatting kept) rather than a pattern
such as ``TPESampler(seed=0, ...)``, which is not Python. The user's file is read as untrusted
input: bounded, and any file that cannot be read or parsed gives no edit (the cause keeps its
words), never an error. A notebook cell is read from the source registered under its name.
"""

from __future__ import annotations

import ast
import functools
import linecache
import os
from collections.abc import Iterable

from repro_check.plan.notebooks import notebook_of
from repro_check.results.diagnosis import Edit, Location

MAX_SOURCE_BYTES = 2_000_000
"""A script larger than this is not parsed for an edit (its cause keeps its words)."""


@functools.lru_cache(maxsize=16)
def _parsed(file: str, mtime_ns: int) -> tuple[list[bytes], ast.Module] | None:
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
        if len(data) > MAX_SOURCE_BYTES:
            return None
        return data.splitlines(keepends=True), ast.parse(data, file)
    except (OSError, SyntaxError, ValueError):
        return None


def _cell(name: str) -> tuple[list[bytes], ast.Module] | None:
    """A notebook cell's lines and tree, from the source the parent registered under its
    name (``tune.ipynb, cell 7 (In [7])``); None when the cell is not plain Python (a magic)."""
    lines = linecache.getlines(name)
    text = "".join(lines)
    if not lines or len(text) > MAX_SOURCE_BYTES:
        return None
    try:
        return [line.encode("utf-8") for line in lines], ast.parse(text, name)
    except (SyntaxError, ValueError):
        return None


def _source(file: str) -> tuple[list[bytes], ast.Module] | None:
    """The file's lines (bytes: the parser's column offsets count UTF-8 bytes) and tree."""
    try:
        mtime = os.stat(file).st_mtime_ns
    except OSError:
        return _cell(file) if notebook_of(file) is not None else None
    return _parsed(file, mtime)


def parsed_source(file: str) -> ast.Module | None:
    """The syntax tree of a user's file (or notebook cell), read as untrusted input: None
    when it cannot be read, is too large or is not Python."""
    parsed = _source(file)
    return parsed[1] if parsed is not None else None


def source_text(file: str) -> tuple[str, ast.Module] | None:
    """The file's text and tree, as ``parsed_source`` reads them (``ast.get_source_segment``
    wants the text)."""
    parsed = _source(file)
    if parsed is None:
        return None
    return b"".join(parsed[0]).decode("utf-8", "replace"), parsed[1]


def _statements(tree: ast.Module, line: int) -> list[ast.stmt]:
    """The simple statements (no body of their own) spanning ``line``, the innermost (the
    latest to start) first: ``a = f(); b = g()`` has two."""
    found = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.stmt)
        and not hasattr(node, "body")
        and node.lineno <= line <= (node.end_lineno or node.lineno)
    ]
    return sorted(found, key=lambda node: (node.lineno, node.col_offset), reverse=True)


def _statement(tree: ast.Module, line: int) -> ast.stmt | None:
    """The innermost simple statement spanning ``line``."""
    found = _statements(tree, line)
    return found[0] if found else None


def called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _indent(line: bytes) -> bytes:
    return line[: len(line) - len(line.lstrip(b" \t"))]


def _dedented(lines: Iterable[bytes]) -> str:
    chunk = list(lines)
    prefix = _indent(chunk[0]) if chunk else b""
    out = [ln[len(prefix) :] if ln.startswith(prefix) else ln.lstrip(b" \t") for ln in chunk]
    return b"".join(out).decode("utf-8").rstrip("\r\n")


def _valid(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def statement_location(file: str, line: int) -> Location | None:
    """Where the statement spanning ``line`` starts, with its first line's text (None: the
    file cannot be read or the line is not in a simple statement)."""
    parsed = _source(file)
    if parsed is None:
        return None
    lines, tree = parsed
    stmt = _statement(tree, line)
    if stmt is None:
        return None
    return Location(file, stmt.lineno, lines[stmt.lineno - 1].decode("utf-8", "replace").strip())


def _splice(
    call: ast.Call, keyword: str, value: str, replace: bool
) -> tuple[int, int, int, bytes] | None:
    """Where to put ``keyword=value`` in ``call``: (line, start byte, end byte, new bytes);
    None when the call already passes the keyword a value other than None (unless
    ``replace``), or one spread over lines."""
    text = f"{keyword}={value}".encode()
    given = next((k for k in call.keywords if k.arg == keyword), None)
    if given is not None:
        unset = isinstance(given.value, ast.Constant) and given.value.value is None
        if not (unset or replace) or given.value.lineno != given.value.end_lineno:
            return None
        start = given.value.col_offset
        return given.value.lineno, start, given.value.end_col_offset or start, value.encode()
    ends = [(n.end_lineno or n.lineno, n.end_col_offset or 0) for n in call.args]
    ends += [(k.end_lineno or k.lineno, k.end_col_offset or 0) for k in call.keywords]
    if ends:  # after the last argument, so a trailing comma or comment stays where it is
        line, col = max(ends)
        return line, col, col, b", " + text
    paren = (call.end_col_offset or 1) - 1  # f(): just before the closing parenthesis
    return call.end_lineno or call.lineno, paren, paren, text


def add_keyword(
    where: Location, callee: str, keyword: str, value: str, replace: bool = False
) -> Edit | None:
    """The statement at ``where`` with ``keyword=value`` passed to its call of ``callee``
    (a function or class name, or a method/attribute name): added after the last argument,
    or replacing an explicit ``keyword=None`` (any value it passes, with ``replace``: the
    ``n_jobs=4`` that must become ``n_jobs=1``). None when the file cannot be parsed, no
    such call is in the statement, or the call already passes another value."""
    parsed = _source(where.file)
    if parsed is None:
        return None
    lines, tree = parsed
    for stmt in _statements(tree, where.line):  # ``clf = RF(); n = 2``: the one calling it
        calls = [
            node
            for node in ast.walk(stmt)
            if isinstance(node, ast.Call) and called_name(node.func) == callee
        ]
        if calls:
            break
    else:
        return None
    # of several (``[RF(a), RF(b)]`` over two lines), the call on the named line
    call = min(calls, key=lambda node: (node.lineno != where.line, node.lineno, node.col_offset))
    splice = _splice(call, keyword, value, replace)
    if splice is None:
        return None
    at, until, end, insert = splice
    first, last_line = stmt.lineno, stmt.end_lineno or stmt.lineno
    chunk = lines[first - 1 : last_line]
    row = chunk[at - first]
    chunk[at - first] = row[:until] + insert + row[end:]
    code = _dedented(chunk)
    if not _valid(code):
        return None
    return Edit(where.file, first, last_line, code)


def insert_before(where: Location, code: str) -> Edit | None:
    """``code`` placed before the statement spanning ``where`` (at its indentation). None
    when that statement does not start its line (``else: x = draw()``: code before the
    line would land before the ``else``)."""
    parsed = _source(where.file)
    stmt = _statement(parsed[1], where.line) if parsed is not None else None
    if parsed is None or stmt is None or not _valid(code):
        return None
    if len(_indent(parsed[0][stmt.lineno - 1])) != stmt.col_offset:
        return None
    return Edit(where.file, stmt.lineno, stmt.lineno, code, insert=True)


def fix_text(edit: Edit, why: str) -> str:
    """The printed fix: one comment naming the line and why, then the code to paste."""
    if edit.insert:
        head = f"# {edit.file}:{edit.line}: {why}; insert before the line:"
    elif edit.end_line > edit.line:
        head = f"# {edit.file}:{edit.line}-{edit.end_line}: {why}; the statement becomes:"
    else:
        head = f"# {edit.file}:{edit.line}: {why}; the line becomes:"
    return f"{head}\n{edit.code}"


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """``text`` (one file's source) with ``edits`` applied, each at its own indentation: the
    tests paste every fix this way, and so could a tool. Edits that overlap an earlier one
    (the same statement fixed twice) are skipped."""
    lines = text.splitlines(keepends=True)
    done: list[tuple[int, int]] = []
    for edit in sorted(edits, key=lambda e: (e.line, not e.insert), reverse=True):
        span = (edit.line, edit.line - 1 if edit.insert else edit.end_line)
        if any(span[0] <= b and a <= span[1] for a, b in done):
            continue
        indent = _indent(lines[edit.line - 1].encode()).decode()
        code = "".join(f"{indent}{ln}\n" if ln else "\n" for ln in edit.code.split("\n"))
        start, stop = edit.line - 1, edit.line - 1 if edit.insert else edit.end_line
        lines[start:stop] = [code]
        if not edit.insert:
            done.append((edit.line, edit.end_line))
    return "".join(lines)
