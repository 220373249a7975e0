"""Issue 22, items 1, 5 and 6: randomness drawn inside a library because the user's line left
its seed unset (scikit-learn's ``check_random_state(None)``), in the script's process and in
joblib's worker processes, is named at that line with the parameter to set; the global
streams' draws are named at the user's line; and every such fix pastes (applied to a copy,
the copy reproduces under ``repro-check run``).

The attribution and the fixes are tested in process (raw events, synthetic audits); the
hooks themselves, and each fixture's cause end to end, through the CLI."""

from __future__ import annotations

import ast
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, diagnosed, pasted

from repro_check.checks.causes import Finding, FixContext, known
from repro_check.checks.causes.edits import add_keyword
from repro_check.checks.causes.seeding import (
    optimize_calls,
    seeding_code,
    trial_seed,
)
from repro_check.execution import rng_hooks
from repro_check.execution.audit_library import (
    Attributed,
    attribute,
    library_source,
    parse_library_source,
)
from repro_check.plan.settings import Controls, StudySettings
from repro_check.results.diagnosis import Edit, Experiment, Location
from repro_check.vocab import CauseId

SCRIPTS = FIXTURES / "scripts"
LIB = "/venv/lib/python3.11/site-packages/sklearn/ensemble/_forest.py"
"""A library frame's file (site-packages: never the user's)."""


@pytest.fixture(autouse=True)
def _fake_site_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    """``LIB`` counts as a library file, as a real site-packages path does."""
    from repro_check.execution import audit_library
    from repro_check.execution.userframes import is_user_file

    monkeypatch.setattr(audit_library, "is_user_file", lambda f: is_user_file(f) and f != LIB)


def _user_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(text))
    return str(path)


# --- attribution: raw events to the user's lines (in process) --------------------------------


def test_an_estimator_built_without_random_state_is_named_where_it_was_built(
    tmp_path: Path,
) -> None:
    user = _user_file(tmp_path, "forest = RandomForestClassifier(max_depth=2)\nforest.fit(X, y)\n")
    event = {
        "draw": "check_random_state(None)",
        "stack": [[LIB, 400, "fit", []], [user, 2, "<module>", []]],
        "owner": {
            "cls": "RandomForestClassifier",
            "param": "random_state",
            "built": [[user, 1, "<module>", []]],
        },
    }
    assert attribute(event) == [
        Attributed("RandomForestClassifier() without random_state", "library", user, 1)
    ]
    # the same draw in a worker process: the source says so (seeding here does not reach it)
    worker = attribute(event, worker=True)
    assert worker[0].source == "RandomForestClassifier() without random_state in a worker process"
    assert parse_library_source(worker[0].source) == (
        "RandomForestClassifier",
        "random_state",
        True,
    )


def test_a_function_called_without_its_seed_is_named_at_the_call(tmp_path: Path) -> None:
    user = _user_file(tmp_path, "a, b = train_test_split(X, y)\n")
    splitter = "/venv/lib/python3.11/site-packages/sklearn/model_selection/_split.py"
    event = {
        "draw": "check_random_state(None)",
        "stack": [
            [splitter, 10, "_iter_indices", []],
            [splitter, 20, "train_test_split", ["random_state"]],
            ["/venv/lib/python3.11/site-packages/sklearn/utils/_param.py", 5, "wrapper", []],
            [user, 1, "<module>", []],
        ],
        # the ShuffleSplit train_test_split built for itself: not the user's line
        "owner": {
            "cls": "ShuffleSplit",
            "param": "random_state",
            "built": [[splitter, 19, "f", []]],
        },
    }
    assert attribute(event) == [
        Attributed(library_source("train_test_split", "random_state"), "library", user, 1)
    ]


def test_a_worker_fitting_a_clone_is_named_where_the_script_built_it(tmp_path: Path) -> None:
    user = _user_file(tmp_path, "forest = RandomForestClassifier()\n")
    loky = "/venv/lib/python3.11/site-packages/joblib/externals/loky/process_executor.py"
    event = {
        "draw": "check_random_state(None)",
        "stack": [[LIB, 400, "fit", []], [loky, 10, "_process_worker", []]],
        "owner": {"cls": "RandomForestClassifier", "param": "random_state", "built": None},
    }
    unseeded = {"RandomForestClassifier": [[user, 1, "<module>", []], [LIB, 3, "x", []]]}
    assert attribute(event, worker=True, unseeded=unseeded) == [
        Attributed(
            library_source("RandomForestClassifier", "random_state", True), "library", user, 1
        )
    ]
    assert attribute(event, worker=False, unseeded=unseeded) == []  # here: it was never built


def test_the_users_own_draws_and_a_librarys_own_draws(tmp_path: Path) -> None:
    user = _user_file(tmp_path, "x = np.random.normal()\n")
    own = {"draw": "np.random.normal", "stack": [[user, 1, "<module>", []]]}
    assert attribute(own) == [Attributed("np.random.normal", "global", user, 1)]
    # in a worker process every stream is seeded from the OS: certain noise
    assert attribute(own, worker=True) == [
        Attributed("np.random.normal in a worker process", "random", user, 1)
    ]
    # a library's own draw, no seed parameter the user left out: nobody's line
    inside = {"draw": "np.random.normal", "stack": [[LIB, 3, "f", []], [user, 1, "<module>", []]]}
    assert attribute(inside) == []


def test_the_hooks_record_construction_clones_and_skip_a_splitter_that_does_not_shuffle() -> None:
    events: list[dict[str, Any]] = []
    hooks = rng_hooks.LibraryHooks(events.append)

    class Forest:
        def __init__(
            self, random_state: Any = None, shuffle: bool = True, probability: Any = True
        ) -> None:
            self.random_state = random_state
            self.shuffle = shuffle
            self.probability = probability

        def fit(self) -> None:
            import sys

            hooks.draw("check_random_state(None)", sys._getframe(0))

    class Splitter(Forest):
        __module__ = "sklearn.model_selection._split"

    class SVC(Forest):
        __module__ = "sklearn.svm._classes"

    def build(kind: type[Forest] = Forest, **kwargs: Any) -> Forest:
        import sys

        obj = kind(**kwargs)
        hooks.constructed(obj, kind, sys._getframe(0), kwargs)
        return obj

    def clone(estimator: Forest) -> Forest:  # sklearn.base.clone's name and local
        import sys

        obj = Forest()
        hooks.constructed(obj, Forest, sys._getframe(0), {})
        return obj

    forest = build()
    copy = clone(forest)
    assert hooks.built[copy] is hooks.built[forest]  # the clone keeps where the user built it
    assert [p[2] for p in hooks.unseeded["Forest"]] == ["build"]
    copy.fit()
    assert events and events[0]["owner"]["cls"] == "Forest"
    assert events[0]["owner"]["built"][0][2] == "build"
    build(Splitter, shuffle=False).fit()  # sklearn ignores random_state without shuffling
    build(SVC, probability="deprecated").fit()  # no probabilities (sklearn 1.9's default)
    build(random_state=3).fit()  # seeded: no owner to blame
    assert len(events) == 2 and "owner" not in events[1]
    # elsewhere the flag means something else: MLPClassifier(shuffle=False) still draws
    build(shuffle=False).fit()
    assert len(events) == 3 and events[2]["owner"]["cls"] == "Forest"


# --- the fixes: seeding code, n_jobs, locations (in process) ----------------------------------


def test_seeding_code_uses_the_names_the_file_imports(tmp_path: Path) -> None:
    file = _user_file(tmp_path, "import random\nimport numpy as numerical\n")
    assert seeding_code(file, {"random", "numpy"}, "0") == (
        "random.seed(0); numerical.random.seed(0)"
    )
    bare = _user_file(tmp_path, "x = 1\n")
    code = seeding_code(bare, {"numpy", "torch"}, "trial.number")
    assert code.splitlines() == [
        "import numpy as np",
        "import torch",
        "np.random.seed(trial.number); torch.manual_seed(trial.number)",
    ]
    ast.parse(code)


def test_trial_seed_is_the_objectives_trial_number(tmp_path: Path) -> None:
    file = _user_file(
        tmp_path,
        """
        def objective(t):
            return t.suggest_float("x", 0, 1) + random.random()

        def helper():
            return random.random()
        """,
    )
    assert trial_seed(Location(file, 3, ""), "objective", 0) == "t.number"
    assert trial_seed(Location(file, 3, ""), "objective", 7) == "7 * 100_003 + t.number"
    assert trial_seed(Location(file, 6, ""), "objective", 0) == "0"  # no trial there


def test_n_jobs_is_set_to_one_at_the_optimize_line(tmp_path: Path) -> None:
    file = _user_file(
        tmp_path,
        """
        study.optimize(objective, n_trials=1)
        if True:
            study.optimize(
                objective, n_trials=20, n_jobs=workers,  # keep
            )
        """,
    )
    (where,) = optimize_calls([file])
    assert where.line == 4
    edit = add_keyword(where, "optimize", "n_jobs", "1", replace=True)
    assert edit is not None and (edit.line, edit.end_line) == (4, 6)
    assert edit.code == "study.optimize(\n    objective, n_trials=20, n_jobs=1,  # keep\n)"


def _finding(
    tmp_path: Path, sites: list[dict[str, Any]], script: bool = True, target: str = ""
) -> Finding:
    study = StudySettings(trials=6)
    ctx = FixContext(study, 0, target or str(tmp_path / "train.py"), script=script)
    nothing = Experiment("no_global_rng", "", Controls(), "", None, ())
    ablation = known(CauseId.GLOBAL_RNG).ablations[0]
    audits = ({"sites": sites, "consumed": {}},)
    return Finding(nothing, ctx, 0, ablation=ablation, audits=audits)


def _site(file: str, line: int, source: str, kind: str, trials: list[int]) -> dict[str, Any]:
    text = Path(file).read_text().splitlines()[line - 1].strip()
    return {"source": source, "kind": kind, "file": file, "line": line, "text": text,
            "trials": trials, "calls": 1}  # fmt: skip


def test_global_rng_names_each_unseeded_library_line_with_an_edit_each(tmp_path: Path) -> None:
    file = _user_file(
        tmp_path,
        """
        import numpy as np
        def objective(trial):
            a, b = train_test_split(X, y)
            clf = SGDClassifier(
                alpha=0.1,
            )
            return 0.0
        """,
    )
    sites = [
        _site(file, 4, library_source("train_test_split", "random_state"), "library", [0, 1]),
        _site(file, 5, library_source("SGDClassifier", "random_state"), "library", [0]),
    ]
    cause = known(CauseId.GLOBAL_RNG).found(_finding(tmp_path, sites))
    assert cause.location is not None and cause.location.line == 4
    assert [(e.line, e.end_line) for e in cause.edits] == [(4, 4), (5, 7)]
    assert cause.edit == cause.edits[0]
    assert cause.edits[0].code == "a, b = train_test_split(X, y, random_state=0)"
    assert cause.edits[1].code == "clf = SGDClassifier(\n    alpha=0.1, random_state=0,\n)"
    assert all(e.code in cause.fix for e in cause.edits)
    ast.parse(cause.fix)
    assert cause.to_dict()["edits"] == [e.to_dict() for e in cause.edits]


def test_global_rng_seeds_before_the_first_draw_or_the_study(tmp_path: Path) -> None:
    file = _user_file(
        tmp_path,
        """
        import random
        weights = [random.random() for _ in range(3)]
        def objective(trial):
            return random.random()
        study = make_study()
        """,
    )
    early = _site(file, 3, "random.random", "global", [-1])
    late = _site(file, 5, "random.random", "global", [0, 1])
    cause = known(CauseId.GLOBAL_RNG).found(_finding(tmp_path, [late, early]))
    assert cause.location is not None and cause.location.line == 5  # the first seen
    assert cause.edit == Edit(file, 3, 3, "random.seed(0)", insert=True)  # before the study
    # an objective's draws in the trials: seeded from the trial's number, before that line
    target = f"{file}:objective"
    cause = known(CauseId.GLOBAL_RNG).found(_finding(tmp_path, [late], False, target))
    assert cause.edit == Edit(file, 5, 5, "random.seed(trial.number)", insert=True)
    assert "insert before the line:\nrandom.seed(trial.number)" in cause.fix
    # nothing located: words that say where, complete code, no edit
    cause = known(CauseId.GLOBAL_RNG).found(_finding(tmp_path, [], False, target))
    assert cause.edit is None and cause.location is None
    assert "before it creates the study" in cause.fix
    ast.parse(cause.fix)


def test_parallel_trials_of_an_objective_is_complete_code() -> None:
    ctx = FixContext(StudySettings(trials=12, n_jobs=4), 0, "pkg/mod.py:objective")
    nothing = Experiment("full_control", "", Controls(), "", None, ())
    cause = known(CauseId.PARALLEL_TRIALS).found(Finding(nothing, ctx, 0, n_jobs=4))
    assert "study.optimize(objective, n_trials=12, n_jobs=1)" in cause.fix
    assert "..." not in cause.fix
    ast.parse(cause.fix)


# --- end to end: each fixture's cause, and its fix pasted into a copy ------------------------


def _copy(tmp_path: Path, name: str) -> Path:
    copy = tmp_path / name
    shutil.copy(SCRIPTS / name, copy)
    return copy


@pytest.mark.e2e
@pytest.mark.slow  # scikit-learn and joblib's worker processes in every run
def test_a_forest_fitted_in_joblib_workers_is_named_where_it_was_built(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    copy = _copy(tmp_path, "sklearn_joblib.py")
    causes = diagnosed(str(copy), tmp_path)
    assert [c["id"] for c in causes] == ["objective_noise"], causes
    (cause,) = causes
    assert cause["location"]["line"] == 20
    assert cause["location"]["source"] == "forest = RandomForestClassifier("
    assert "joblib's worker processes" in cause["evidence"]
    assert "RandomForestClassifier() has no random_state" in cause["fix"]
    assert cause["edit"]["code"].splitlines() == [
        "forest = RandomForestClassifier(",
        "    n_estimators=5,",
        "    max_depth=depth, random_state=0,",
        ")",
    ]
    pasted(copy, causes, str(copy))


@pytest.mark.e2e
@pytest.mark.slow  # scikit-learn in every run
def test_train_test_split_and_sgd_are_named_each_with_an_edit(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    copy = _copy(tmp_path, "sklearn_split.py")
    causes = diagnosed(str(copy), tmp_path)
    assert [c["id"] for c in causes] == ["global_rng"], causes
    (cause,) = causes
    assert cause["location"]["line"] == 17
    assert [e["code"] for e in cause["edits"]] == [
        "x_train, x_valid, y_train, y_valid = train_test_split(X, y, random_state=0)",
        "clf = SGDClassifier(alpha=alpha, random_state=0)",
    ]
    assert "train_test_split() has no random_state" in cause["fix"]
    assert "SGDClassifier() has no random_state" in cause["fix"]
    pasted(copy, causes, str(copy))


@pytest.mark.e2e
def test_an_objectives_global_draws_are_named_at_their_line(tmp_path: Path) -> None:
    copy = tmp_path / "global_rng.py"
    shutil.copy(FIXTURES / "global_rng.py", copy)
    target = f"{copy}:objective"
    causes = {c["id"]: c for c in diagnosed(target, tmp_path)}
    cause = causes["global_rng"]
    assert cause["location"]["line"] == 10
    assert "random.random(), np.random.rand() draw from the global streams" in cause["fix"]
    assert cause["edit"] == {
        "file": "global_rng.py",  # as the user names it, from the folder diagnose ran in
        "line": 10,
        "end_line": 10,
        "code": "random.seed(trial.number); np.random.seed(trial.number)",
        "insert": True,
    }
    assert causes["sampler_seed"]["edit"] is None  # repro-check's own study: a control's
    controls = ",".join(n for n in Controls.names() if n not in ("global_rng", "trial_reseed"))
    pasted(copy, list(causes.values()), target, "--controls", controls)


@pytest.mark.e2e
def test_a_script_drawing_before_its_study_is_seeded_before_the_draw(tmp_path: Path) -> None:
    copy = _copy(tmp_path, "shuffled_before_study.py")
    causes = diagnosed(str(copy), tmp_path)
    assert [c["id"] for c in causes] == ["global_rng"]
    assert causes[0]["location"]["line"] == 10
    assert causes[0]["edit"]["line"] == 10 and causes[0]["edit"]["insert"]
    pasted(copy, causes, str(copy))


@pytest.mark.e2e
def test_n_jobs_is_named_at_the_scripts_optimize_line(tmp_path: Path) -> None:
    copy = _copy(tmp_path, "n_jobs.py")
    causes = diagnosed(str(copy), tmp_path)
    assert [c["id"] for c in causes] == ["parallel_trials"]
    assert causes[0]["location"]["line"] == 6
    assert "n_jobs=1" in causes[0]["edit"]["code"] and "..." not in causes[0]["fix"]
    pasted(copy, causes, str(copy))


def test_a_wrapped_draw_still_pickles_by_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """joblib sends ``np.random.normal`` to its workers by reference: the hooked function
    must be found under the same name (it was not: diagnose crashed what run ran)."""
    import pickle
    import random

    import numpy as np

    for module, name in ((random, "random"), (np.random, "normal")):
        monkeypatch.setattr(module, name, getattr(module, name))
    hooks = rng_hooks.LibraryHooks(lambda event: None)
    hooks._wrap_draw(random, "random", "random.random", random._inst)
    hooks._hook_numpy(np)
    assert random.random is not random._inst.random
    for drawn in (random.random, np.random.normal):
        assert pickle.loads(pickle.dumps(drawn)) is drawn


def test_past_its_limit_a_process_reports_nothing_more() -> None:
    import sys

    events: list[dict[str, Any]] = []
    hooks = rng_hooks.LibraryHooks(events.append, limit=1)
    for what in ("np.random.normal", "np.random.rand"):
        hooks.draw(what, sys._getframe(0))
    assert len(events) == 1
