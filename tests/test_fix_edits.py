"""Fixes as edits of the user's lines (``checks.causes.edits``): the code printed is the
user's own statement with the seed added, valid Python, and applying it changes only that."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from repro_check.checks.causes.edits import (
    add_keyword,
    apply_edits,
    fix_text,
    insert_before,
    statement_location,
)
from repro_check.results.diagnosis import Location


def _at(path: Path, line: int) -> Location:
    return Location(str(path), line, "")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("source", "line", "callee", "expected"),
    [
        ("s = TPESampler()\n", 1, "TPESampler", "s = TPESampler(seed=0)"),
        (
            "s = optuna.samplers.TPESampler(n_startup_trials=5)\n",
            1,
            "TPESampler",
            "s = optuna.samplers.TPESampler(n_startup_trials=5, seed=0)",
        ),
        ("s = TPESampler(seed=None)\n", 1, "TPESampler", "s = TPESampler(seed=0)"),
        (
            "s = TPESampler(n_startup_trials=5,)\n",
            1,
            "TPESampler",
            "s = TPESampler(n_startup_trials=5, seed=0,)",
        ),
        (
            "s = f(TPESampler(), x)  # note\n",
            1,
            "TPESampler",
            "s = f(TPESampler(seed=0), x)  # note",
        ),
        ("s = TPESampler(**kw)\n", 1, "TPESampler", "s = TPESampler(**kw, seed=0)"),
    ],
)
def test_add_keyword_rewrites_the_call_in_place(
    tmp_path: Path, source: str, line: int, callee: str, expected: str
) -> None:
    path = _write(tmp_path, source)
    edit = add_keyword(_at(path, line), callee, "seed", "0")
    assert edit is not None
    assert edit.code == expected
    ast.parse(edit.code)


def test_a_multi_line_statement_is_replaced_whole_and_keeps_its_shape(tmp_path: Path) -> None:
    source = (
        "def objective(trial):\n"
        "    clf = RandomForestClassifier(\n"
        "        max_depth=3,  # shallow\n"
        "    )\n"
        "    return clf\n"
    )
    path = _write(tmp_path, source)
    edit = add_keyword(_at(path, 3), "RandomForestClassifier", "random_state", "0")
    assert edit is not None and (edit.line, edit.end_line) == (2, 4)
    assert (
        edit.code == "clf = RandomForestClassifier(\n    max_depth=3, random_state=0,  # shallow\n)"
    )
    fixed = apply_edits(source, [edit])
    assert "        max_depth=3, random_state=0,  # shallow\n" in fixed
    ast.parse(fixed)


def test_no_edit_when_the_value_is_already_given_or_the_call_is_absent(tmp_path: Path) -> None:
    path = _write(tmp_path, "s = TPESampler(seed=3)\nt = other()\n")
    assert add_keyword(_at(path, 1), "TPESampler", "seed", "0") is None
    assert add_keyword(_at(path, 2), "TPESampler", "seed", "0") is None
    assert add_keyword(_at(tmp_path / "missing.py", 1), "TPESampler", "seed", "0") is None


def test_an_unparsable_file_gives_no_edit(tmp_path: Path) -> None:
    path = _write(tmp_path, "s = TPESampler(\n")
    assert add_keyword(_at(path, 1), "TPESampler", "seed", "0") is None
    assert statement_location(str(path), 1) is None


def test_insert_before_takes_the_statement_start_and_its_indentation(tmp_path: Path) -> None:
    source = "if True:\n    study = create_study(\n        direction='maximize')\n"
    path = _write(tmp_path, source)
    edit = insert_before(_at(path, 3), "import random\nrandom.seed(0)")
    assert edit is not None and edit.line == 2 and edit.insert
    fixed = apply_edits(source, [edit])
    assert fixed.startswith("if True:\n    import random\n    random.seed(0)\n    study =")
    ast.parse(fixed)
    assert "insert before the line" in fix_text(edit, "seed the global streams")


def test_two_edits_apply_bottom_up(tmp_path: Path) -> None:
    source = "a = TPESampler()\nb = RandomForestClassifier()\n"
    path = _write(tmp_path, source)
    first = add_keyword(_at(path, 1), "TPESampler", "seed", "0")
    second = add_keyword(_at(path, 2), "RandomForestClassifier", "random_state", "0")
    assert first is not None and second is not None
    assert apply_edits(source, [first, second]) == (
        "a = TPESampler(seed=0)\nb = RandomForestClassifier(random_state=0)\n"
    )
    assert fix_text(first, "TPESampler() has no seed").endswith("\na = TPESampler(seed=0)")


def test_replace_rewrites_a_value_already_given(tmp_path: Path) -> None:
    path = _write(tmp_path, "study.optimize(objective, n_trials=8, n_jobs=4)\n")
    assert add_keyword(_at(path, 1), "optimize", "n_jobs", "1") is None
    edit = add_keyword(_at(path, 1), "optimize", "n_jobs", "1", replace=True)
    assert edit is not None and edit.code == "study.optimize(objective, n_trials=8, n_jobs=1)"


def test_a_notebook_cell_is_read_from_its_registered_source() -> None:
    import linecache

    name = "tune.ipynb, cell 3 (In [2])"
    source = "import optuna\nsampler = optuna.samplers.TPESampler()\n"
    linecache.cache[name] = (len(source), None, source.splitlines(keepends=True), name)
    try:
        edit = add_keyword(Location(name, 2, ""), "TPESampler", "seed", "0")
        assert edit is not None and edit.file == name
        assert edit.code == "sampler = optuna.samplers.TPESampler(seed=0)"
        magic = "%time x = 1\n"
        linecache.cache[name] = (len(magic), None, [magic], name)
        assert add_keyword(Location(name, 1, ""), "TPESampler", "seed", "0") is None
    finally:
        linecache.cache.pop(name, None)


def test_the_statement_that_calls_it_is_edited_when_a_line_has_two(tmp_path: Path) -> None:
    path = _write(tmp_path, "clf = RF(); n = 2\n")
    edit = add_keyword(_at(path, 1), "RF", "random_state", "0")
    assert edit is not None and edit.code == "clf = RF(random_state=0); n = 2"


def test_of_two_calls_in_one_statement_the_named_lines_is_edited(tmp_path: Path) -> None:
    path = _write(tmp_path, "models = [\n    RF(n_estimators=5),\n    RF(n_estimators=7),\n]\n")
    edit = add_keyword(_at(path, 3), "RF", "random_state", "0")
    assert edit is not None and "RF(n_estimators=7, random_state=0)" in edit.code
    assert "RF(n_estimators=5)," in edit.code


def test_nothing_is_inserted_before_a_statement_that_does_not_start_its_line(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "if a:\n    x = 1\nelse: x = draw()\n")
    assert insert_before(_at(path, 3), "seed(0)") is None
