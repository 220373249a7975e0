"""The Python API (``repro_check.check``) and the pytest plugin (fixture + marker)."""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import FIXTURES, fixture

import repro_check
from repro_check import api
from repro_check.api import check, resolve_target
from repro_check.errors import ConfigError, TargetError
from repro_check.render.fmt import divergence_line

pytest_plugins = ["pytester"]

SMALL: dict[str, Any] = {"runs": 2, "trials": 4}


def load_fixture(name: str) -> ModuleType:
    """Import a fixture file by path, under a name no worker could import."""
    spec = importlib.util.spec_from_file_location(f"fixture_{name}", FIXTURES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- check() -------------------------------------------------------------------------------


@pytest.mark.e2e
def test_check_by_string_is_reproducible() -> None:
    report = check(fixture("deterministic"), **SMALL)
    assert report.reproducible
    assert report.verdict == "reproducible"
    assert report.exit_code == 0
    assert report.comparison.divergence is None
    assert (report.plan.runs, report.plan.study.trials, len(report.runs)) == (2, 4, 2)


@pytest.mark.e2e
def test_check_by_callable_is_reproducible() -> None:
    objective = load_fixture("deterministic").objective
    report = repro_check.check(objective, **SMALL)
    assert report.reproducible
    assert report.target == f"{FIXTURES / 'deterministic.py'}:objective"


@pytest.mark.e2e
def test_check_private_rng_is_not_reproducible() -> None:
    report = check(load_fixture("private_rng").objective, **SMALL)
    assert not report.reproducible
    assert report.verdict == "not reproducible"
    assert report.exit_code == 1
    divergence = report.comparison.divergence
    assert divergence is not None
    assert (divergence.trial, divergence.field) == (0, "values")
    assert divergence_line(divergence).startswith("trial 0, values: ")


SCRIPTS = FIXTURES / "scripts"


@pytest.mark.e2e
def test_check_on_a_script_runs_it_as_written() -> None:
    """The API's defaults are not flags for a script (the CLI's `run train.py` with no flags):
    its own seeded sampler and its own n_trials (50) stand."""
    report = check(str(SCRIPTS / "seeded42.py"), runs=2)
    assert report.mode == "script"
    assert report.reproducible, report.verdict
    study = report.runs[0].studies[0]
    assert (study.name, study.sampler.seed, len(study.trials), study.capped) == (
        "seeded",
        42,
        50,
        False,
    )
    assert not report.plan.controls.sampler_seed  # as written: nothing seeded for the script


@pytest.mark.e2e
def test_check_on_an_unseeded_script_is_not_reproducible_and_takes_its_flags() -> None:
    report = check(str(SCRIPTS / "unseeded_sampler.py"), runs=2, trials=3)
    assert not report.reproducible
    assert all(run.studies[0].capped and len(run.studies[0].trials) == 3 for run in report.runs)
    controlled = check(str(SCRIPTS / "unseeded_sampler.py"), runs=2, trials=3, controls="all")
    assert controlled.reproducible, controlled.verdict


def test_a_study_setting_given_for_a_script_is_refused() -> None:
    with pytest.raises(ConfigError, match="does not apply to a script"):
        check(str(SCRIPTS / "seeded42.py"), sampler="random")


def test_settings_are_validated_before_any_worker_starts() -> None:
    with pytest.raises(ConfigError, match="runs must be >= 2"):
        check(fixture("deterministic"), runs=1)
    with pytest.raises(ConfigError, match="unknown value 'sideways'"):
        check(fixture("deterministic"), directions="sideways")
    with pytest.raises(ConfigError, match="unknown control 'bogus'"):
        check(fixture("deterministic"), controls=["bogus"])


def test_pyproject_settings_do_not_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The arguments are the whole configuration, defaults included."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.repro-check]\ntarget = "other.py:f"\nruns = 5\nworkers = 3\ntimeout = 9\n'
        'sampler = "random"\n[tool.repro-check.sampler_kwargs]\nn_startup_trials = 1\n'
    )
    monkeypatch.chdir(tmp_path)
    plans: list[Any] = []
    monkeypatch.setattr(api, "run_check", plans.append)
    check(fixture("deterministic"), trials=4)
    (plan,) = plans
    assert plan.target == fixture("deterministic")
    assert (plan.runs, plan.workers, plan.timeout) == (3, None, None)
    assert (plan.study.sampler, dict(plan.study.sampler_kwargs)) == ("tpe", {})
    check(fixture("deterministic"), workers=2, timeout=1.5)
    assert (plans[1].workers, plans[1].timeout) == (2, 1.5)


@pytest.mark.e2e
def test_pyproject_cannot_turn_on_fail_fast_or_a_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10: fail_fast and name in [tool.repro-check] made check() run a shared-storage
    check that wrote repro-check.db into the folder."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.repro-check]\nfail_fast = true\nname = "leaked"\nresume = true\nstale_after = 7\n'
    )
    monkeypatch.chdir(tmp_path)
    report = check(fixture("deterministic"), runs=2, trials=3)
    assert report.reproducible, report.verdict
    plan = report.plan
    assert (plan.fail_fast, plan.storage, plan.name, plan.resume) == (False, None, None, False)
    assert plan.stale_after == 120.0
    assert not report.stopped_early
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]  # no repro-check.db


def test_a_broken_pyproject_does_not_matter_to_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.repro-check]\nruns = \xff\n")
    monkeypatch.chdir(tmp_path)
    plans: list[Any] = []
    monkeypatch.setattr(api, "run_check", plans.append)
    check(fixture("deterministic"), trials=4)
    assert plans[0].runs == 3


def test_wrong_sampler_kwargs_type_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "run_check", lambda plan: pytest.fail("a worker would start"))
    with pytest.raises(ConfigError, match=r"sampler_kwargs\.n_startup_trials = 'x'.*int"):
        check(fixture("deterministic"), sampler_kwargs={"n_startup_trials": "x"})


@pytest.mark.e2e
def test_missing_target_is_a_target_error() -> None:
    with pytest.raises(TargetError, match="no such file"):
        check(str(FIXTURES / "nope.py:objective"), **SMALL)


# --- resolving a callable to a target --------------------------------------------------------


def test_lambda_is_a_target_error() -> None:
    with pytest.raises(TargetError, match="lambda") as caught:
        check(lambda trial: 0.0, **SMALL)
    assert "\n" not in str(caught.value)


def test_closure_is_a_target_error() -> None:
    def make() -> Callable[[Any], float]:
        def objective(trial: Any) -> float:
            return 0.0

        return objective

    with pytest.raises(TargetError, match="closure or nested function") as caught:
        check(make(), **SMALL)
    assert "<locals>" in str(caught.value)
    assert "\n" not in str(caught.value)


class _Holder:
    def method(self, trial: Any) -> float:
        return 0.0

    @staticmethod
    def static(trial: Any) -> float:
        return 0.0


@pytest.mark.parametrize(
    ("objective", "problem"),
    [
        (_Holder().method, "bound method"),
        (_Holder.static, "not a module-level function"),
        (functools.partial(lambda trial, x: x, x=1), "has no name"),
        (_Holder(), "must be a function"),
        (42, "must be a function"),
    ],
    ids=["bound-method", "staticmethod", "partial", "instance", "not-callable"],
)
def test_unimportable_objects_are_target_errors(objective: Any, problem: str) -> None:
    with pytest.raises(TargetError, match=problem):
        resolve_target(objective)


def test_function_without_module_is_a_target_error() -> None:
    def objective(trial: Any) -> float:
        return 0.0

    objective.__qualname__ = "objective"
    objective.__module__ = None  # type: ignore[assignment]
    with pytest.raises(TargetError, match="has no module"):
        resolve_target(objective)


def test_replaced_module_attribute_is_a_target_error() -> None:
    module = load_fixture("deterministic")
    original = module.objective
    sys.modules[module.__name__] = module
    try:
        module.__dict__["objective"] = lambda trial: 0.0
        with pytest.raises(TargetError, match="is not the function passed"):
            resolve_target(original)
    finally:
        del sys.modules[module.__name__]


@pytest.mark.e2e
def test_importable_module_resolves_by_name() -> None:
    from repro_check.examples import quadratic

    assert resolve_target(quadratic.objective) == "repro_check.examples.quadratic:objective"
    assert resolve_target("pkg.mod:attr") == "pkg.mod:attr"


@pytest.mark.e2e
def test_test_module_resolves_by_file_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest imports this module from a folder it put on sys.path; a worker cannot."""
    monkeypatch.chdir(tmp_path)
    resolved = resolve_target(_module_level_objective)
    assert resolved == f"{Path(__file__).resolve()}:_module_level_objective"


def _module_level_objective(trial: Any) -> float:
    return float(trial.suggest_float("x", 0.0, 1.0))


# --- import cost -----------------------------------------------------------------------------


@pytest.mark.e2e
def test_imports_stay_cheap() -> None:
    code = textwrap.dedent(
        """
        import sys
        import repro_check, repro_check.pytest_plugin, repro_check.cli
        heavy = [m for m in ("optuna", "numpy", "repro_check.api", "repro_check.checks.run")
                 if m in sys.modules]
        assert not heavy, heavy
        assert "check" in repro_check.__all__
        assert callable(repro_check.check) and repro_check.check.__module__ == "repro_check.api"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- the pytest plugin -----------------------------------------------------------------------

USER_TESTS = """
import pytest

DETERMINISTIC = {deterministic!r}
PRIVATE_RNG = {private_rng!r}

pytestmark = pytest.mark.repro_check(runs=3, trials=4)


def objective(trial):
    return (trial.suggest_float("x", -5.0, 5.0) - 1.0) ** 2


@pytest.mark.repro_check(runs=2)
def test_deterministic_by_string(repro_check):
    report = repro_check.assert_reproducible(DETERMINISTIC)
    assert (report.plan.runs, report.plan.study.trials) == (2, 4)  # marker, closest wins


@pytest.mark.repro_check(runs=2)
def test_callable_in_this_test_module(repro_check):
    report = repro_check.assert_reproducible(objective, seed=7)
    assert report.target.endswith("test_user.py:objective")
    assert report.plan.seed == 7


@pytest.mark.repro_check(runs=2)
def test_check_returns_the_report(repro_check):
    report = repro_check.check(PRIVATE_RNG, trials=2)
    assert report.verdict == "not reproducible" and report.plan.study.trials == 2


@pytest.mark.repro_check(runs=2)
def test_private_rng(repro_check):
    repro_check.assert_reproducible(PRIVATE_RNG)


def test_lambda(repro_check):
    repro_check.assert_reproducible(lambda trial: 0.0)


@pytest.mark.repro_check(trails=4)
def test_typo_in_marker(repro_check):
    pass
"""


@pytest.mark.e2e
def test_plugin_through_the_entry_point(pytester: pytest.Pytester) -> None:
    # In a subfolder without __init__.py, as most projects keep tests: pytest imports the file
    # as ``test_user`` from a folder it adds to sys.path, which no worker has.
    tests = pytester.mkdir("tests")
    (tests / "test_user.py").write_text(
        USER_TESTS.format(
            deterministic=fixture("deterministic"), private_rng=fixture("private_rng")
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(passed=3, failed=2, errors=1)
    out = result.stdout.str()
    # the failure message docs/how-to/python-api.md shows:
    assert "not reproducible: trial 0, values: value " in out
    assert "repro-check diagnose" in out
    assert "unknown setting 'trails'" in out
    assert "repro-check could not run: TargetError: the objective is a lambda" in out
    assert "PytestUnknownMarkWarning" not in out
