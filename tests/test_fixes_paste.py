"""Every fix ``diagnose`` prints pastes (issue 22, item 6): for each fixture, the causes'
edits are applied to a copy, and the copy must then pass ``repro-check run`` as written (no
control), with conftest's ``diagnosed`` and ``pasted``.

A fix that is code for one of the user's lines carries ``edits``; its printed text must show
the same code and be valid Python. A fix without an edit (a shell command, a control
repro-check applies to an objective's own study) must still be complete: no ``...``
placeholder outside a comment.

The fixtures whose own tests check each cause's line and edit paste there, through the same
helpers (one diagnosis each): the custom and integration samplers
(``test_custom_samplers.py``), ``n_jobs``, the draws before a study, sklearn in joblib's
workers, ``train_test_split`` with ``SGDClassifier``, and an objective's global draws
(``test_diagnose_library_rng.py``). The rest are here.
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, code_lines, diagnosed, pasted

from repro_check.vocab import CauseId


@dataclass(frozen=True)
class Case:
    """One script fixture and the causes diagnose must name (each with an edit)."""

    fixture: str
    causes: frozenset[str]
    slow: bool = False

    @property
    def id(self) -> str:
        return Path(self.fixture).stem


CASES = [
    Case("scripts/default_sampler.py", frozenset({"sampler_seed"})),
    Case("scripts/sklearn_forest.py", frozenset({"sampler_seed", "global_rng"}), slow=True),
    Case("scripts/sklearn_own_draws.py", frozenset({"objective_noise"}), slow=True),
    Case("scripts/sklearn_torch.py", frozenset({"global_rng"}), slow=True),
    # the cookbook's: a forest fitted in joblib's workers, and KFold(shuffle=True) in this process
    Case("../../docs/recipes/sklearn_broken.py", frozenset({"objective_noise"}), slow=True),
]


def _params() -> list[Any]:
    marks = [pytest.mark.e2e]
    return [
        pytest.param(case, id=case.id, marks=[*marks, *([pytest.mark.slow] if case.slow else [])])
        for case in CASES
    ]


@pytest.mark.parametrize("case", _params())
def test_every_printed_fix_pastes_and_the_copy_reproduces(case: Case, tmp_path: Path) -> None:
    copy = tmp_path / Path(case.fixture).name
    shutil.copy(FIXTURES / case.fixture, copy)
    causes = diagnosed(str(copy), tmp_path)
    assert {c["id"] for c in causes} == case.causes, causes
    assert all(cause["edits"] for cause in causes), causes
    pasted(copy, causes, str(copy))


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
    for line in [*code_lines(fix), *commands]:
        assert "..." not in line.split("  #", 1)[0], fix


def test_the_resume_fix_names_the_command_to_paste() -> None:
    from repro_check.checks.causes.state import resume_sampler_fix
    from repro_check.plan.settings import StudySettings

    fix = resume_sampler_fix(StudySettings(), 0, 4, "train.py:objective", startup=10)
    assert "# repro-check diagnose train.py:objective --resume-at 4 --sampler qmc" in fix
    code = code_lines(fix)
    assert code == ["study.sampler = optuna.samplers.TPESampler(seed=0 + len(study.trials))"]
    ast.parse(fix)
