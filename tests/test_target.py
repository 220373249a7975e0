"""``target.parse`` and in-process ``target.load`` on throwaway files and packages."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_source as write

from repro_check.errors import EXIT_USAGE, TargetError
from repro_check.execution import target
from repro_check.execution.target import TargetSpec


def load_error(spec: str) -> str:
    with pytest.raises(TargetError) as info:
        target.load(spec)
    message = str(info.value)
    assert "\n" not in message, message
    assert info.value.exit_code == EXIT_USAGE
    return message


# --- parse ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("pkg.mod", TargetSpec("pkg.mod", "objective", False)),
        ("pkg.mod:train", TargetSpec("pkg.mod", "train", False)),
        ("mod", TargetSpec("mod", "objective", False)),
        ("obj.py", TargetSpec("obj.py", "objective", True)),
        ("obj.py:fn", TargetSpec("obj.py", "fn", True)),
        ("dir/obj.py:fn", TargetSpec("dir/obj.py", "fn", True)),
        ("./dir/obj.py", TargetSpec("./dir/obj.py", "objective", True)),
        ("/abs/path/obj.py:_private", TargetSpec("/abs/path/obj.py", "_private", True)),
        ("scripts/run:fn", TargetSpec("scripts/run", "fn", True)),
    ],
)
def test_parse(spec: str, expected: TargetSpec) -> None:
    assert target.parse(spec) == expected


def test_spec_str() -> None:
    assert str(target.parse("pkg.mod")) == "pkg.mod:objective"
    assert str(target.parse("a/b.py:f")) == "a/b.py:f"


@pytest.mark.parametrize("spec", ["my-module", "pkg.mod:", ":fn", "pkg..mod:fn", "1pkg:fn"])
def test_parse_rejects_non_module_paths(spec: str) -> None:
    with pytest.raises(TargetError, match=r"not a module path or \.py file"):
        target.parse(spec)


# --- load: files ------------------------------------------------------------------------------


def test_load_file_default_attr(sandbox: Path) -> None:
    write(sandbox / "obj.py", "def objective(trial):\n    return 41 + trial\n")
    fn = target.load("obj.py")
    assert fn(1) == 42


def test_load_file_named_attr_with_sibling_import(sandbox: Path) -> None:
    write(sandbox / "exp" / "rc_helper_sib.py", "OFFSET = 100\n")
    write(
        sandbox / "exp" / "train.py",
        "from rc_helper_sib import OFFSET\n\ndef run(trial):\n    return OFFSET + trial\n",
    )
    fn = target.load("exp/train.py:run")
    assert fn(5) == 105


def test_load_file_with_non_identifier_name(sandbox: Path) -> None:
    write(sandbox / "my-objective.py", "def objective(trial):\n    return 'ok'\n")
    assert target.load(str(sandbox / "my-objective.py"))(None) == "ok"


def test_load_no_such_file(sandbox: Path) -> None:
    message = load_error("missing/obj.py:fn")
    assert "no such file" in message and "missing/obj.py" in message


def test_load_file_syntax_error_names_file_and_line(sandbox: Path) -> None:
    write(sandbox / "broken.py", "import math\n\ndef objective(trial:\n    return 1\n")
    message = load_error("broken.py")
    assert message.startswith("syntax error in")
    assert "broken.py" in message
    assert "line 3" in message


def test_load_file_exception_at_import(sandbox: Path) -> None:
    write(sandbox / "boom.py", "raise RuntimeError('no GPU here\\nsecond line')\n")
    message = load_error("boom.py:objective")
    assert "boom.py" in message
    assert "RuntimeError: no GPU here" in message
    assert "second line" not in message


def test_load_file_sys_exit_at_import(sandbox: Path) -> None:
    write(sandbox / "quits.py", "import sys\nsys.exit(3)\n")
    message = load_error("quits.py")
    assert "sys.exit(3)" in message


def test_load_file_missing_attribute(sandbox: Path) -> None:
    write(sandbox / "noattr.py", "def other(trial):\n    return 0\n")
    assert "has no attribute 'objective'" in load_error("noattr.py")
    message = load_error("noattr.py:train")
    assert "noattr.py" in message and "'train'" in message


def test_load_file_not_callable(sandbox: Path) -> None:
    write(sandbox / "value.py", "objective = 42\n")
    message = load_error("value.py")
    assert "value.py:objective is not callable" in message
    assert "int" in message


# --- load: modules ----------------------------------------------------------------------------


def test_load_module_from_cwd(sandbox: Path) -> None:
    write(sandbox / "rc_tpkg" / "__init__.py", "")
    write(sandbox / "rc_tpkg" / "objectives.py", "def train(trial):\n    return trial * 2\n")
    assert target.load("rc_tpkg.objectives:train")(21) == 42


def test_load_no_such_module(sandbox: Path) -> None:
    message = load_error("rc_no_such_module_xyz:objective")
    assert message == "no such module: 'rc_no_such_module_xyz'"


def test_load_no_such_submodule(sandbox: Path) -> None:
    write(sandbox / "rc_tpkg2" / "__init__.py", "")
    assert "no such module: 'rc_tpkg2.nope'" in load_error("rc_tpkg2.nope")


def test_load_module_whose_dependency_is_missing(sandbox: Path) -> None:
    write(sandbox / "rc_needs_dep.py", "import rc_missing_dependency_xyz\n")
    message = load_error("rc_needs_dep")
    assert "no such module" not in message
    assert "ModuleNotFoundError" in message and "rc_missing_dependency_xyz" in message


def test_load_module_syntax_error(sandbox: Path) -> None:
    write(sandbox / "rc_bad_syntax_mod.py", "x = 1\ny = (\n")
    message = load_error("rc_bad_syntax_mod")
    assert "rc_bad_syntax_mod.py" in message
    assert "line 2" in message


def test_load_module_exception_at_import(sandbox: Path) -> None:
    write(sandbox / "rc_raises_mod.py", "raise ValueError('bad config value')\n")
    message = load_error("rc_raises_mod:objective")
    assert "rc_raises_mod" in message
    assert "ValueError: bad config value" in message


def test_load_module_not_callable_and_missing_attr(sandbox: Path) -> None:
    write(sandbox / "rc_attrs_mod.py", "objective = 'text'\n")
    assert "is not callable (it is a str)" in load_error("rc_attrs_mod")
    assert "has no attribute 'train'" in load_error("rc_attrs_mod:train")
