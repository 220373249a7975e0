"""Everything Optuna records about a trial is compared, unless named as timing or identity
(``trial_attrs.NOT_COMPARED``): constraints, an enqueued trial's ``fixed_params``, user and system
attributes, distributions; params exactly whatever the tolerance; unfinished trials by
``--baseline`` and ``diff`` as by ``run``; object choices by a stable name, never an address."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import math
from typing import Any

import optuna
import pytest
from conftest import fixture
from factories import run, trial

from repro_check.bounds import MAX_TEXT
from repro_check.checks.baseline import check_against
from repro_check.checks.diff import script_histories
from repro_check.json_values import bounded, stable_name, to_json_safe
from repro_check.plan.settings import Tolerance
from repro_check.results.comparison import (
    compare_runs,
    distinct_histories,
    first_divergence,
    histories_equal,
)
from repro_check.results.records import RunRecord, SamplerInfo, StudyRecord, comparable_runs
from repro_check.results.studies import compare_studies
from repro_check.results.trial_attrs import NOT_COMPARED
from repro_check.results.trial_fields import FIELDS
from repro_check.results.trial_record import TrialRecord, pending_key

EXACT = Tolerance()
LOOSE = Tolerance(atol=1e-6, rtol=1e-6)

optuna.logging.set_verbosity(optuna.logging.ERROR)


def with_attrs(number: int = 0, value: float = 1.0, **fields: Any) -> TrialRecord:
    base = trial(number, value)
    return dataclasses.replace(base, **fields)


def pair(a: TrialRecord, b: TrialRecord, tol: Tolerance = EXACT) -> Any:
    return first_divergence([run(0, [a]), run(1, [b])], tol)


# --- constraints -----------------------------------------------------------------------------


def test_constraints_changing_run_to_run_are_not_reproducible() -> None:
    a = with_attrs(system_attrs={"constraints:budget": -0.25})
    b = with_attrs(system_attrs={"constraints:budget": 0.25})
    div = pair(a, b)
    assert div is not None
    assert (div.field, div.max_abs_diff) == ("constraints", 0.5)
    assert "constraint budget = -0.25 vs 0.25" in div.detail
    runs = [run(0, [a]), run(1, [b])]
    assert compare_runs(runs, EXACT).distinct_histories == 2
    assert not histories_equal(runs[0], runs[1], EXACT)


def test_a_constraints_func_list_is_compared_and_loosened_by_a_tolerance() -> None:
    a = with_attrs(system_attrs={"constraints": [0.1, -1.0]})
    b = with_attrs(system_attrs={"constraints": [0.1 + 1e-12, -1.0]})
    div = pair(a, b)
    assert div is not None and div.field == "constraints"
    assert "constraint 0 = 0.1 vs" in div.detail
    assert pair(a, b, LOOSE) is None  # the objective computed them: a tolerance forgives
    assert distinct_histories([run(0, [a]), run(1, [b])], LOOSE) == 1


def test_best_follows_optunas_feasibility_rules() -> None:
    infeasible = with_attrs(0, 0.0, system_attrs={"constraints:c": 1.0})
    feasible = with_attrs(1, 5.0, system_attrs={"constraints:c": 0.0})
    other = with_attrs(2, 3.0, system_attrs={"constraints:c": -2.0})
    best = run(0, [infeasible, feasible, other])
    assert best.best_value == 3.0  # the best *feasible* trial, as Optuna's best_trial
    assert [t.number for t in best.best_trials()] == [2]
    assert run(0, [infeasible]).best_value is None  # none feasible: no best, as Optuna
    unconstrained = run(0, [trial(0, 0.0), trial(1, 3.0)])
    assert unconstrained.best_value == 0.0
    # multi-objective: the Pareto front of the feasible trials only
    front = [
        with_attrs(0, values=(0.0, 0.0), system_attrs={"constraints": [1.0]}),
        with_attrs(1, values=(1.0, 2.0), system_attrs={"constraints": [0.0]}),
        with_attrs(2, values=(2.0, 1.0), system_attrs={"constraints": [-1.0]}),
    ]
    multi = run(0, front, directions=("minimize", "minimize"))
    assert [t.number for t in multi.best_trials()] == [1, 2]
    assert multi.to_dict()["pareto_trials"] == [1, 2]


def test_best_matches_optuna_on_a_real_constrained_study() -> None:
    def objective(t: optuna.Trial) -> float:
        x = t.suggest_float("x", -3, 3)
        t.set_constraint("c", 1.0 - x)  # feasible only for x >= 1
        return x * x

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(objective, n_trials=30)
    record = RunRecord(0, 0, "ok", tuple(TrialRecord.from_frozen(t) for t in study.trials))
    assert record.best_value == study.best_value
    assert record.best_trials()[0].number == study.best_trial.number


# --- enqueued and unfinished trials ----------------------------------------------------------


def _waiting(params: dict[str, Any]) -> Any:
    study = optuna.create_study()
    study.enqueue_trial(params)
    return study.trials[0]


def test_an_enqueued_never_run_trial_is_compared_by_its_fixed_params() -> None:
    a, b = _waiting({"x": 0.25}), _waiting({"x": 0.75})
    assert a.params == b.params == {}  # what the old key saw: nothing to tell them apart
    assert pending_key(a) != pending_key(b)
    assert pending_key(a) == pending_key(_waiting({"x": 0.25}))
    assert "fixed_params" in pending_key(a)
    div = pair(TrialRecord.from_frozen(a), TrialRecord.from_frozen(b))
    assert div is not None and div.field == "system_attrs"
    assert "enqueued params" in div.detail
    # fixed params are params: exact whatever the tolerance
    near = TrialRecord.from_frozen(_waiting({"x": 0.25 + 1e-12}))
    assert pair(TrialRecord.from_frozen(a), near, Tolerance(atol=1.0)) is not None


def _script_run(index: int, pending: tuple[str, ...]) -> RunRecord:
    trials = (trial(0, 1.0),)
    study = StudyRecord("s", ("minimize",), SamplerInfo("TPESampler", 0), trials, pending=pending)
    return RunRecord(index, 0, "ok", trials, studies=(study,))


def test_baseline_and_diff_compare_unfinished_trials_as_run_does() -> None:
    a = _script_run(0, (pending_key(_waiting({"x": 0.25})),))
    b = _script_run(1, (pending_key(_waiting({"x": 0.75})),))
    assert not compare_studies([a, b], EXACT).reproducible  # run
    saved = [a, dataclasses.replace(a, index=1)]
    check = check_against("base.json", saved, [b], EXACT, script=True)
    assert not check.matches  # --baseline
    assert check.divergence is not None and "unfinished trials" in check.divergence.detail
    assert script_histories([a, b], EXACT) == 2  # diff
    same = check_against("base.json", [a], [dataclasses.replace(a, index=5)], EXACT, script=True)
    assert same.matches


# --- params: exactly, whatever the tolerance -------------------------------------------------


def test_tolerance_never_loosens_float_params_in_any_path() -> None:
    a = run(0, [trial(0, 1.0, params={"x": 0.5})])
    b = run(1, [trial(0, 1.0, params={"x": 0.5 + 1e-15})])
    for tol in (EXACT, LOOSE, Tolerance(atol=1e9, rtol=1.0)):
        div = first_divergence([a, b], tol)
        assert div is not None and div.field == "params"
        assert distinct_histories([a, b], tol) == 2
        assert not histories_equal(a, b, tol)
        assert compare_runs([a, b], tol).differing_cells == {1: {"x"}}


# --- object choices: a stable name, never an address -----------------------------------------


def relu(x: float) -> float:
    return max(x, 0.0)


def tanh(x: float) -> float:
    return math.tanh(x)


class Loss:
    pass


def test_object_choices_have_stable_names() -> None:
    assert stable_name(relu) == f"{__name__}.relu"
    assert stable_name(Loss) == f"{__name__}.Loss"
    assert stable_name(math) == "math"
    assert "0x" not in stable_name(Loss())
    assert to_json_safe({"act": relu}) == {"act": f"{__name__}.relu"}


def test_categorical_object_choices_compare_by_name_not_address() -> None:
    def objective(t: optuna.Trial) -> float:
        act: Any = t.suggest_categorical("act", [relu, tanh])  # type: ignore[list-item]
        return float(act(0.5))

    records = []
    for _ in range(2):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        with pytest.warns(UserWarning):
            study.optimize(objective, n_trials=3)
        records.append(tuple(TrialRecord.from_frozen(t) for t in study.trials))
    text = json.dumps([t.to_dict() for t in records[0]])
    assert "0x" not in text and f"{__name__}.relu" in text
    # another process: other addresses; the same names
    back = tuple(TrialRecord.from_dict(json.loads(json.dumps(t.to_dict()))) for t in records[1])
    assert first_divergence([run(0, records[0]), run(1, back)], EXACT) is None


# --- user attrs, distributions ---------------------------------------------------------------


def test_user_attrs_are_compared() -> None:
    a = with_attrs(user_attrs={"acc": 0.9, "tag": "a"})
    b = with_attrs(user_attrs={"acc": 0.9, "tag": "b"})
    div = pair(a, b)
    assert div is not None and div.field == "user_attrs" and "tag" in div.detail
    near = with_attrs(user_attrs={"acc": 0.9 + 1e-12, "tag": "a"})
    assert pair(a, near) is not None
    assert pair(a, near, LOOSE) is None  # a number the objective computed


def test_distributions_are_compared_exactly() -> None:
    dist = {"name": "FloatDistribution", "attributes": {"low": 0.0, "high": 1.0, "log": False}}
    wider = {"name": "FloatDistribution", "attributes": {"low": 0.0, "high": 2.0, "log": False}}
    div = pair(with_attrs(distributions={"x": dist}), with_attrs(distributions={"x": wider}), LOOSE)
    assert div is not None and div.field == "distributions"


# --- saved reports: round trip, old reports ---------------------------------------------------


def test_new_fields_round_trip_and_old_reports_load() -> None:
    record = with_attrs(
        system_attrs={"constraints": [0.5, "NaN"], "fixed_params": {"x": 0.5}},
        distributions={"x": {"name": "FloatDistribution", "attributes": {"low": -0.0}}},
        user_attrs={"v": math.inf},
    )
    data = json.loads(json.dumps(record.to_dict(), allow_nan=False))
    back = TrialRecord.from_dict(data)
    assert back.digest == record.digest
    assert back.constraints["0"] == 0.5 and math.isnan(back.constraints["1"])
    old = {k: v for k, v in data.items() if k not in ("system_attrs", "distributions")}
    legacy = TrialRecord.from_dict(old)
    assert legacy.system_attrs is None and legacy.distributions is None
    # an old baseline against a new run: compared on what both recorded
    new = dataclasses.replace(legacy, system_attrs={"k": 1}, distributions={})
    runs = [run(0, [legacy]), run(1, [new])]
    assert first_divergence(runs, EXACT) is not None
    assert first_divergence(comparable_runs(runs), EXACT) is None
    assert comparable_runs([run(0, [new]), run(1, [new])])[0].trials[0] is new  # untouched


def test_long_attrs_are_bounded_yet_compared_whole() -> None:
    a = bounded({"s": "y" * 100_000, "bad \ud800": 1})
    b = bounded({"s": "y" * 99_999 + "z", "bad \ud800": 1})
    assert len(a["s"]) <= MAX_TEXT and a["s"].startswith("yyy")
    assert a != b  # the tail differs: the hash says so
    assert "bad \\ud800" in a  # a lone surrogate escaped, as a saved report needs


def test_the_excluded_fields_are_named_once() -> None:
    assert {"datetime_start", "datetime_complete", "duration", "trial_id"} <= set(NOT_COMPARED)
    assert set(FIELDS) >= {"params", "distributions", "constraints", "user_attrs", "system_attrs"}


def test_timing_identity_and_own_bookkeeping_never_matter() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    frozen = study.trials[0]
    other = copy.deepcopy(frozen)
    other.datetime_start = datetime.datetime(2000, 1, 1)
    other.datetime_complete = datetime.datetime(2001, 1, 1)
    other._trial_id = 12345
    other.system_attrs["repro_check_number"] = 7  # a shared storage's bookkeeping
    a, b = TrialRecord.from_frozen(frozen), TrialRecord.from_frozen(other)
    assert a.duration_s != b.duration_s
    assert "repro_check_number" not in (b.system_attrs or {})
    assert a.digest == b.digest


# --- end to end: a real check --------------------------------------------------------------------


@pytest.mark.e2e
def test_run_with_constraints_varying_run_to_run_exits_1(run_check: Any) -> None:
    result = run_check(fixture("constraint_noise"), "--trials", "4", "--runs", "2")
    assert result.code == 1, result.out + result.err
    assert result.report["verdict"] == "not reproducible"
    divergence = result.report["divergence"]
    assert (divergence["trial"], divergence["field"]) == (0, "constraints")
    trial0 = result.report["runs"][0]["trials"][0]
    assert "constraints:budget" in trial0["system_attrs"] or "constraints" in trial0["system_attrs"]
    assert trial0["distributions"]["x"]["name"] == "FloatDistribution"
