"""The shape gates of issue 20: no function past complexity 20 as radon counts it (ruff's C901
gate at 15 misses boolean operators and comprehensions' conditions), and no module over ~600
lines unless its docstring says why in a paragraph starting "Why so long:"."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import repro_check

PACKAGE_DIR = Path(repro_check.__file__).parent
MAX_COMPLEXITY = 20
MAX_LINES = 600


def _modules() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def test_no_function_ranks_d_or_worse_by_radon() -> None:
    radon = pytest.importorskip("radon.complexity")
    found = [
        f"{path.relative_to(PACKAGE_DIR.parent)}: {block.fullname} {block.complexity}"
        for path in _modules()
        for block in radon.cc_visit(path.read_text(encoding="utf-8"))
        if block.complexity > MAX_COMPLEXITY
    ]
    assert found == [], "split these into named steps:\n" + "\n".join(found)


def test_a_long_module_says_why_in_its_docstring() -> None:
    found = []
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if "Why so long:" not in docstring:
            found.append(f"{path.relative_to(PACKAGE_DIR.parent)}: {text.count(chr(10))} lines")
    assert found == [], "split these, or say why in the docstring:\n" + "\n".join(found)
