"""A misspelt objective (issue 21, item 9): ``run train.py:objectiv`` is refused in the parent
within milliseconds, with the closest name, when the source shows the module cannot have the
attribute; anything the source cannot settle is left to the worker, which suggests too."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import inprocess_cli, one_line_error
from conftest import write_source as write

from repro_check.errors import TargetError
from repro_check.execution import target
from repro_check.execution.target import check_attribute

TRAIN = """\
import optuna


def objective(trial):
    return trial.suggest_float("x", 0, 1)
"""


def refused(spec: str) -> str:
    with pytest.raises(TargetError) as info:
        check_attribute(spec)
    return str(info.value)


def test_a_misspelt_objective_in_a_file_is_refused_with_the_closest_name(sandbox: Path) -> None:
    write(sandbox / "train.py", TRAIN)
    assert refused("train.py:objectiv") == (
        "train.py has no attribute 'objectiv'; did you mean 'train.py:objective'?"
    )
    check_attribute("train.py:objective")  # the right name: nothing to say


def test_a_misspelt_objective_in_a_module_of_the_current_folder(sandbox: Path) -> None:
    write(sandbox / "train.py", TRAIN)
    write(sandbox / "pkg" / "__init__.py", "")
    write(sandbox / "pkg" / "study.py", TRAIN)
    assert refused("train:objectiv").endswith("did you mean 'train:objective'?")
    assert refused("pkg.study:objectve").endswith("did you mean 'pkg.study:objective'?")


def test_the_cli_answers_before_any_worker_starts(sandbox: Path) -> None:
    write(sandbox / "train.py", "import time\ntime.sleep(30)\n" + TRAIN)  # a slow import
    started = time.perf_counter()
    result = inprocess_cli("run", "train.py:objectiv", "--runs", "2")
    elapsed = time.perf_counter() - started
    assert one_line_error(result) == (
        "error: train.py has no attribute 'objectiv'; did you mean 'train.py:objective'?"
    )
    assert elapsed < 5, elapsed  # the worker would have slept 30 s importing it


@pytest.mark.parametrize(
    "source",
    [
        "from helpers import *\n",
        "def __getattr__(name):\n    return print\n",
        "def _lazy(name):\n    return print\n__getattr__ = _lazy\n",  # found by review
        "__getattr__, __dir__ = (lambda name: print), (lambda: [])\n",  # lazy_loader's form
        "from helpers import lazy as __getattr__\n",
        "globals()['objective'] = print\n",
        "import sys\nsetattr(sys.modules[__name__], 'objective', print)\n",
        "exec('def objective(trial): return 0')\n",
    ],
)
def test_a_module_that_may_bind_names_unseen_is_left_to_the_worker(
    sandbox: Path, source: str
) -> None:
    write(sandbox / "dyn.py", source + "def objectiv_helper(trial):\n    return 0\n")
    check_attribute("dyn.py:objective")


@pytest.mark.parametrize(
    "source",
    [
        "if True:\n    def objective(trial):\n        return 0\n",
        "try:\n    from math import sqrt as objective\nexcept ImportError:\n    pass\n",
        "for objective in [print]:\n    pass\n",
        "def setup():\n    global objective\n    objective = print\n",
        "objective: object = print\n",
        "with open(__file__) as objective:\n    pass\n",
        "import objective.sub\n",
    ],
)
def test_every_way_the_top_level_binds_a_name_counts(sandbox: Path, source: str) -> None:
    write(sandbox / "bound.py", source + "def objectives(trial):\n    return 0\n")
    check_attribute("bound.py:objective")


def test_what_the_source_cannot_settle_is_left_to_the_worker(sandbox: Path) -> None:
    write(sandbox / "train.py", TRAIN)
    write(sandbox / "pkg" / "__init__.py", "")
    check_attribute("train.py:zzz")  # no close name: importing may fail first, say that
    check_attribute("pkg:objectiv")  # a package: its submodules are attributes once imported
    check_attribute("train.py")  # a script is run whole
    check_attribute("missing.py:objectiv")  # the worker says "no such file"
    check_attribute("no_such_module_xyz:objectiv")
    write(sandbox / "broken.py", "def objective(:\n")
    check_attribute("broken.py:objectiv")  # the worker says where the syntax error is


def test_the_worker_suggests_the_closest_name_too(sandbox: Path) -> None:
    write(sandbox / "dyn.py", "globals()['objective'] = lambda trial: 0\n")
    with pytest.raises(TargetError) as info:
        target.load("dyn.py:objectiv")
    assert str(info.value) == "dyn.py has no attribute 'objectiv'; did you mean 'dyn.py:objective'?"


def test_not_callable_names_its_type_with_the_right_article(sandbox: Path) -> None:
    write(sandbox / "value.py", "objective = 42\nother = 'x'\n")
    with pytest.raises(TargetError, match=r"is not callable \(it is an int\)"):
        target.load("value.py")
    with pytest.raises(TargetError, match=r"is not callable \(it is a str\)"):
        target.load("value.py:other")


def test_a_folder_module_named_like_a_loaded_one_is_left_to_the_worker(sandbox: Path) -> None:
    write(sandbox / "json.py", TRAIN)  # a worker's `import json` may get the standard one
    check_attribute("json:objectiv")
