"""Every fix ``diagnose`` prints pastes (issue 22, item 6): for each fixture, the causes'
edits are applied to a copy, and the copy must then pass ``repro-check run`` with no help
from the controls those causes name (a script: no control at all, as written).

A fix that is code for one of the user's lines carries an ``edit``; its printed text must
show the same code and be valid Python. A fix without an edit (a shell command, a control
repro-check applies to an objective's own study) must still be complete: no ``...``
placeholder outside a comment.
"""

from __future__ import annotations

import ast
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli

from repro_check.checks.causes import known
from repro_check.checks.causes.edits import apply_edits
from repro_check.results.diagnosis import Edit
from repro_check.vocab import CauseId


@dataclass(frozen=True)
class Case:
    """One fixture, the causes diagnose must name, and the ones whose fix is no edit."""

    fixture: str
    causes: frozenset[str]
    attr: str | None = None
    """The objective's name for an objective fixture (None: a script)."""
    no_edit: frozenset[str] = field(default_factory=frozenset)
    beside: tuple[str, ...] = ()
    """Folders the fixture needs beside it (a stand-in installed package), copied too."""
    """Causes whose fix is no edit of the user's file (a control on repro-check's side)."""
    slow: bool = False

    @property
    def id(self) -> str:
        return Path(self.fixture).stem


CASES = [
    Case("scripts/default_sampler.py", frozenset({"sampler_seed"})),
    Case("scripts/n_jobs.py", frozenset({"parallel_trials"})),
    Case("scripts/custom_sampler.py", frozenset({"sampler_seed"})),
    Case("scripts/shuffled_before_study.py", frozenset({"global_rng"})),
    Case("scripts/sklearn_joblib.py", frozenset({"objective_noise"}), slow=True),
    Case("scripts/sklearn_split.py", frozenset({"global_rng"}), slow=True),
    # the cookbook's: a forest fitted in joblib's workers, and KFold(shuffle=True) in this process
    Case("../../docs/recipes/sklearn_broken.py", frozenset({"objective_noise"}), slow=True),
    Case(
        "scripts/owned_sampler.py",
        frozenset({"sampler_seed"}),
        beside=("scripts/site-packages",),
    ),
    Case("scripts/sklearn_forest.py", frozenset({"sampler_seed", "global_rng"}), slow=True),
    Case(
        "global_rng.py",
        frozenset({"sampler_seed", "global_rng"}),
        attr="objective",
        no_edit=frozenset({"sampler_seed"}),
    ),
]


def _params() -> list[Any]:
    marks = [pytest.mark.e2e]
    return [
        pytest.param(case, id=case.id, marks=[*marks, *([pytest.mark.slow] if case.slow else [])])
        for case in CASES
    ]


def _code_lines(fix: str) -> list[str]:
    return [ln for ln in fix.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def check_fix_text(cause: dict[str, Any]) -> None:
    """The printed fix shows the edit's code and parses; none has a placeholder."""
    fix = str(cause["fix"])
    assert not any("..." in ln.split("#", 1)[0] for ln in _code_lines(fix)), fix
    assert (cause["edit"] is None) == (not cause["edits"]), cause
    for edit in cause["edits"]:
        assert edit["code"] in fix, fix
        ast.parse(edit["code"])
    if cause["edits"]:
        ast.parse(fix)  # comments and the code: valid Python as printed


def _controls_left(case: Case, causes: list[dict[str, Any]]) -> list[str]:
    """The controls an objective's run keeps: all but those the edited causes stand for."""
    from repro_check.plan.settings import Controls

    off = {
        name
        for cause in causes
        if cause["edit"] is not None
        for ablation in known(cause["id"]).ablations
        for name in ablation.off
    }
    return [name for name in Controls.names() if name not in off]


@pytest.mark.parametrize("case", _params())
def test_every_printed_fix_pastes_and_the_copy_reproduces(case: Case, tmp_path: Path) -> None:
    copy = tmp_path / Path(case.fixture).name
    shutil.copy(FIXTURES / case.fixture, copy)
    for folder in case.beside:
        shutil.copytree(FIXTURES / folder, tmp_path / Path(folder).name)
    target = f"{copy}:{case.attr}" if case.attr else str(copy)
    out = tmp_path / "diagnose.json"
    result = cli("diagnose", target, "--json", str(out), cwd=tmp_path, timeout=300)
    assert result.code == 0, result.out + result.err
    causes = json.loads(out.read_text())["causes"]
    assert {c["id"] for c in causes} == case.causes, result.out
    for cause in causes:
        check_fix_text(cause)
        assert (cause["edit"] is None) == (cause["id"] in case.no_edit), cause
    edits = [Edit(**edit) for cause in causes for edit in cause["edits"]]
    # an edit names the file as the user would (relative to the folder diagnose ran in)
    assert {(tmp_path / e.file).resolve() for e in edits} <= {copy.resolve()}
    copy.write_text(apply_edits(copy.read_text(), edits))
    flags = ["--controls", ",".join(_controls_left(case, causes)) or "none"] if case.attr else []
    check = cli("run", target, *flags, cwd=tmp_path, timeout=300)
    assert check.code == 0, copy.read_text() + check.out + check.err


# --- the words every cause prints when no experiment told more (in process) ----------------


@pytest.mark.parametrize("script", [False, True], ids=["objective", "script"])
@pytest.mark.parametrize("cause_id", [c.value for c in CauseId])
def test_no_fix_has_a_placeholder_to_fill(cause_id: str, script: bool) -> None:
    """A code line, or a command shown in a comment, is complete: no ``...`` to fill in."""
    from repro_check.checks.causes import FixContext, fix_for
    from repro_check.checks.causes.model import ToleranceCheck
    from repro_check.plan.settings import StudySettings

    target = "train.py" if script else "train.py:objective"
    tolerance = ToleranceCheck(atol=0.5, runs=3, trials=10, divergence=None)
    ctx = FixContext(StudySettings(), 0, target, script=script, tolerance=tolerance)
    try:
        fix = fix_for(cause_id, ctx)
    except AssertionError:  # a cause that needs its experiment's evidence (resume)
        pytest.skip(f"{cause_id} has no fix without its experiment")
    commands = [ln for ln in fix.splitlines() if ln.lstrip("# ").startswith("repro-check ")]
    for line in [*_code_lines(fix), *commands]:
        assert "..." not in line.split("  #", 1)[0], fix


def test_the_resume_fix_names_the_command_to_paste() -> None:
    from repro_check.checks.causes.state import resume_sampler_fix
    from repro_check.plan.settings import StudySettings

    fix = resume_sampler_fix(StudySettings(), 0, 4, "train.py:objective", startup=10)
    assert "# repro-check diagnose train.py:objective --resume-at 4 --sampler qmc" in fix
    code = _code_lines(fix)
    assert code == ["study.sampler = optuna.samplers.TPESampler(seed=0 + len(study.trials))"]
    ast.parse(fix)
