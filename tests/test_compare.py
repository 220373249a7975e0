"""Rules of ``repro_check.results.comparison`` on hand-built records (no optuna, no processes)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from factories import run, trial

from repro_check.plan.settings import CheckPlan, Tolerance
from repro_check.results import report
from repro_check.results.comparison import (
    Divergence,
    Stats,
    compare_runs,
    differing_best_cells,
    distinct_histories,
    first_divergence,
    param_spreads,
)
from repro_check.results.records import RunRecord
from repro_check.results.trial_fields import floats_equal, param_equal
from repro_check.results.trial_record import TrialRecord

EXACT = Tolerance()
LOOSE = Tolerance(atol=1e-6, rtol=1e-6)
HUGE = Tolerance(atol=1e9, rtol=1.0)


def base_trials(n: int = 3) -> list[TrialRecord]:
    return [trial(i, float(i), params={"x": i / 10, "n": i}, iv={0: 1.0, 1: 0.5}) for i in range(n)]


def replace_trial(trials: list[TrialRecord], number: int, new: TrialRecord) -> list[TrialRecord]:
    return [new if t.number == number else t for t in trials]


# --- float and scalar rules -------------------------------------------------------------------


def test_exact_mode_distinguishes_signed_zeros() -> None:
    assert not floats_equal(-0.0, 0.0, EXACT)
    assert not floats_equal(0.0, -0.0, EXACT)
    assert floats_equal(-0.0, -0.0, EXACT)
    assert floats_equal(0.0, 0.0, EXACT)


@pytest.mark.parametrize("tol", [Tolerance(atol=1e-300), Tolerance(rtol=1e-12), LOOSE])
def test_any_tolerance_equates_signed_zeros(tol: Tolerance) -> None:
    assert floats_equal(-0.0, 0.0, tol)


def test_exact_mode_is_bit_for_bit() -> None:
    one_ulp_up = math.nextafter(1.0, 2.0)
    assert not floats_equal(1.0, one_ulp_up, EXACT)
    assert floats_equal(1.0, one_ulp_up, Tolerance(rtol=1e-15))
    assert floats_equal(math.inf, math.inf, EXACT)
    assert not floats_equal(math.inf, -math.inf, HUGE)


@pytest.mark.parametrize("tol", [EXACT, LOOSE, HUGE])
def test_nan_equals_nan_and_nothing_else(tol: Tolerance) -> None:
    assert floats_equal(math.nan, math.nan, tol)
    assert floats_equal(math.nan, -math.nan, tol)
    assert not floats_equal(math.nan, 1.0, tol)
    assert not floats_equal(0.0, math.nan, tol)


def test_atol_and_rtol_bounds() -> None:
    assert floats_equal(1.0, 1.25, Tolerance(atol=0.25))
    assert not floats_equal(1.0, 1.26, Tolerance(atol=0.25))
    # rtol is relative to the larger magnitude
    assert floats_equal(100.0, 110.0, Tolerance(rtol=0.1))
    assert not floats_equal(100.0, 112.0, Tolerance(rtol=0.1))


def test_params_compare_exactly_whatever_the_tolerance() -> None:
    assert not param_equal(1.0, 1.0 + 1e-9)
    assert not param_equal(-0.0, 0.0)
    assert param_equal(math.nan, math.nan)
    assert not param_equal(1, 2)
    assert not param_equal("adam", "Adam")
    assert not param_equal(True, False)
    assert not param_equal(1, 1.0)  # an int param is not a float param
    assert not param_equal(True, 1)
    assert param_equal(3, 3)
    assert param_equal("sgd", "sgd")


# --- first divergence -------------------------------------------------------------------------


def test_identical_runs_do_not_diverge() -> None:
    runs = [run(i, base_trials()) for i in range(3)]
    assert first_divergence(runs, EXACT) is None
    assert first_divergence(runs[:1], EXACT) is None
    assert first_divergence([], EXACT) is None


def test_signed_zero_value_diverges_exactly_but_not_under_tolerance() -> None:
    a = run(0, [trial(0, 0.0)])
    b = run(1, [trial(0, -0.0)])
    div = first_divergence([a, b], EXACT)
    assert div is not None
    assert (div.trial, div.field, div.runs) == (0, "values", (0, 1))
    assert div.max_abs_diff == 0.0
    assert div.max_rel_diff == 0.0
    assert first_divergence([a, b], Tolerance(atol=1e-12)) is None


def test_reproduced_nan_is_not_a_divergence() -> None:
    a = run(0, [trial(0, math.nan, iv={0: math.nan})])
    b = run(1, [trial(0, math.nan, iv={0: math.nan})])
    assert first_divergence([a, b], EXACT) is None


def test_tolerance_loosens_values_and_intermediates_never_float_params() -> None:
    a = run(0, [trial(0, 1.0, params={"x": 0.5}, iv={0: 2.0})])
    b = run(1, [trial(0, 1.0 + 1e-9, params={"x": 0.5}, iv={0: 2.0 + 1e-9})])
    assert first_divergence([a, b], LOOSE) is None
    c = run(2, [trial(0, 1.0, params={"x": 0.5 + 1e-12}, iv={0: 2.0})])
    for tol in (EXACT, LOOSE, HUGE):
        div = first_divergence([a, c], tol)
        assert div is not None and div.field == "params", tol
        assert div.max_abs_diff is None  # exact: no size of difference to forgive
        assert distinct_histories([a, c], tol) == 2


@pytest.mark.parametrize(
    ("ref_params", "other_params"),
    [
        ({"n": 1}, {"n": 2}),
        ({"opt": "adam"}, {"opt": "sgd"}),
        ({"flag": True}, {"flag": False}),
        ({"n": 1}, {"n": 1.0}),
        ({"x": 0.5}, {"x": 0.5, "y": 0.5}),
    ],
)
def test_tolerance_never_loosens_non_float_params(
    ref_params: dict[str, Any], other_params: dict[str, Any]
) -> None:
    a = run(0, [trial(0, params=ref_params)])
    b = run(1, [trial(0, params=other_params)])
    div = first_divergence([a, b], HUGE)
    assert div is not None
    assert (div.trial, div.field) == (0, "params")


def test_tolerance_never_loosens_state() -> None:
    a = run(0, [trial(0, None, state="PRUNED")])
    b = run(1, [trial(0, None, state="FAIL")])
    div = first_divergence([a, b], HUGE)
    assert div is not None
    assert div.field == "state"
    assert div.max_abs_diff is None and div.max_rel_diff is None
    assert "PRUNED" in div.detail and "FAIL" in div.detail


def test_values_none_vs_number_differs() -> None:
    a = run(0, [trial(0, None)])
    b = run(1, [trial(0, 1.0)])
    div = first_divergence([a, b], HUGE)
    assert div is not None and div.field == "values"


def test_intermediate_step_sets_must_match() -> None:
    a = run(0, [trial(0, iv={0: 1.0, 1: 2.0})])
    b = run(1, [trial(0, iv={0: 1.0})])
    div = first_divergence([a, b], HUGE)
    assert div is not None and div.field == "intermediate_values"
    assert "step 1" in div.detail


def test_lowest_trial_number_wins() -> None:
    ref = base_trials(4)
    late = replace_trial(ref, 3, trial(3, 99.0, params={"x": 0.3, "n": 3}, iv={0: 1.0, 1: 0.5}))
    early = replace_trial(ref, 1, trial(1, 1.0, params={"x": 0.7, "n": 1}, iv={0: 1.0, 1: 0.5}))
    div = first_divergence([run(0, ref), run(1, late), run(2, early)], EXACT)
    assert div is not None
    assert (div.trial, div.field, div.runs) == (1, "params", (0, 2))


def _all_differ(number: int) -> TrialRecord:
    return trial(number, None, state="PRUNED", params={"x": 9.0}, iv={0: 7.0})


@pytest.mark.parametrize(
    ("other", "expected_field"),
    [
        (_all_differ(0), "state"),
        (trial(0, 5.0, params={"x": 9.0}, iv={0: 7.0}), "params"),
        (trial(0, 5.0, params={"x": 0.5}, iv={0: 7.0}), "values"),
        (trial(0, 1.0, params={"x": 0.5}, iv={0: 7.0}), "intermediate_values"),
    ],
)
def test_field_order_within_a_trial(other: TrialRecord, expected_field: str) -> None:
    ref = trial(0, 1.0, params={"x": 0.5}, iv={0: 1.0})
    div = first_divergence([run(0, [ref]), run(1, [other])], EXACT)
    assert div is not None
    assert (div.trial, div.field) == (0, expected_field)


def test_runs_lists_reference_then_every_differing_run() -> None:
    ref = base_trials()
    other = replace_trial(ref, 0, trial(0, 5.0, params={"x": 0.0, "n": 0}, iv={0: 1.0, 1: 0.5}))
    runs = [run(0, ref), run(1, other), run(2, ref), run(3, other)]
    div = first_divergence(runs, EXACT)
    assert div is not None
    assert div.runs == (0, 1, 3)
    assert div.detail.endswith("(run 0 vs run 1)")


def test_reference_is_first_finished_run() -> None:
    ref = base_trials()
    other = replace_trial(ref, 0, trial(0, 5.0, params={"x": 0.0, "n": 0}, iv={0: 1.0, 1: 0.5}))
    runs = [run(0, other, status="crashed"), run(1, ref), run(2, ref)]
    div = first_divergence(runs, EXACT)
    assert div is not None
    assert div.runs == (1, 0)
    assert div.detail.endswith("(run 1 vs run 0)")


def test_runs_use_record_index_not_position() -> None:
    ref = base_trials()
    other = replace_trial(ref, 2, trial(2, 9.0, params={"x": 0.2, "n": 2}, iv={0: 1.0, 1: 0.5}))
    div = first_divergence([run(4, ref), run(7, other)], EXACT)
    assert div is not None
    assert (div.trial, div.field, div.runs) == (2, "values", (4, 7))


def test_unfinished_run_is_compared_on_the_trials_it_has() -> None:
    ref = base_trials(4)
    crashed = run(2, ref[:2], status="crashed")
    timed_out = run(3, ref[:1], status="timeout")
    assert first_divergence([run(0, ref), run(1, ref), crashed, timed_out], EXACT) is None


def test_unfinished_run_still_diverges_on_a_trial_it_has() -> None:
    ref = base_trials(4)
    bad = replace_trial(ref[:2], 1, trial(1, 42.0, params={"x": 0.1, "n": 1}, iv={0: 1.0, 1: 0.5}))
    div = first_divergence([run(0, ref), run(1, bad, status="crashed")], EXACT)
    assert div is not None
    assert (div.trial, div.field, div.runs) == (1, "values", (0, 1))


def test_finished_runs_disagreeing_on_trial_count() -> None:
    ref = base_trials(3)
    div = first_divergence([run(0, ref), run(1, ref[:2])], EXACT)
    assert div == Divergence(
        2, "trial_count", (0, 1), None, None, "different numbers of trials (run 0: 3, run 1: 2)"
    )


def test_trial_count_is_checked_after_the_fields_of_that_trial() -> None:
    ref = base_trials(3)
    other = replace_trial(ref, 2, trial(2, 9.0, params={"x": 0.2, "n": 2}, iv={0: 1.0, 1: 0.5}))
    div = first_divergence([run(0, ref), run(1, other), run(2, ref[:2])], EXACT)
    assert div is not None
    assert (div.trial, div.field, div.runs) == (2, "values", (0, 1))


def test_trial_count_at_a_lower_number_beats_a_later_field_difference() -> None:
    ref = base_trials(4)
    other = replace_trial(ref, 3, trial(3, 9.0, params={"x": 0.3, "n": 3}, iv={0: 1.0, 1: 0.5}))
    div = first_divergence([run(0, ref), run(1, other), run(2, ref[:2])], EXACT)
    assert div is not None
    assert (div.trial, div.field, div.runs) == (2, "trial_count", (0, 2))


def test_trial_count_lists_reference_first_when_reference_has_fewer_trials() -> None:
    ref = base_trials(3)
    div = first_divergence([run(0, ref), run(1, base_trials(4))], EXACT)
    assert div is not None
    assert (div.trial, div.field) == (3, "trial_count")
    assert div.runs == (0, 1)


def test_crashed_run_with_fewer_trials_is_not_a_trial_count_divergence() -> None:
    ref = base_trials(3)
    assert first_divergence([run(0, ref[:1], status="crashed"), run(1, ref)], EXACT) is None


# --- size of the difference -------------------------------------------------------------------


def test_max_diffs_over_every_differing_run() -> None:
    runs = [run(0, [trial(0, 1.0)]), run(1, [trial(0, 1.5)]), run(2, [trial(0, 3.0)])]
    div = first_divergence(runs, EXACT)
    assert div is not None
    assert div.runs == (0, 1, 2)
    assert div.max_abs_diff == 2.0
    assert div.max_rel_diff == pytest.approx(2.0 / 3.0, rel=1e-15)


def test_max_diffs_are_none_for_params_a_tolerance_never_forgives() -> None:
    a = run(0, [trial(0, params={"x": 1.0, "n": 3, "opt": "adam"})])
    b = run(1, [trial(0, params={"x": 2.0, "n": 40, "opt": "sgd"})])
    div = first_divergence([a, b], EXACT)
    assert div is not None and div.field == "params"
    assert (div.max_abs_diff, div.max_rel_diff) == (None, None)


def test_max_diffs_are_none_when_only_ints_differ() -> None:
    a = run(0, [trial(0, params={"n": 3})])
    b = run(1, [trial(0, params={"n": 4})])
    div = first_divergence([a, b], EXACT)
    assert div is not None
    assert (div.max_abs_diff, div.max_rel_diff) == (None, None)
    assert div.detail == "param n = 3 vs 4 (run 0 vs run 1)"


def test_max_diffs_for_intermediate_values() -> None:
    a = run(0, [trial(0, iv={0: 4.0, 1: 10.0})])
    b = run(1, [trial(0, iv={0: 3.0, 1: 10.0})])
    div = first_divergence([a, b], EXACT)
    assert div is not None and div.field == "intermediate_values"
    assert div.max_abs_diff == 1.0
    assert div.max_rel_diff == 0.25
    assert "step 0" in div.detail


def test_nan_against_a_number_is_an_infinite_difference() -> None:
    a = run(0, [trial(0, 1.0)])
    b = run(1, [trial(0, math.nan)])
    div = first_divergence([a, b], EXACT)
    assert div is not None
    assert div.max_abs_diff == math.inf
    assert div.max_rel_diff == math.inf


def test_param_detail_names_the_param_and_both_values() -> None:
    a = run(0, [trial(0, params={"lr": 0.12, "n": 1})])
    b = run(2, [trial(0, params={"lr": 0.15, "n": 1})])
    div = first_divergence([a, b], EXACT)
    assert div is not None
    assert div.detail == "param lr = 0.12 vs 0.15 (run 0 vs run 2)"


def test_detail_under_tolerance_names_the_param_that_actually_differs() -> None:
    a = run(0, [trial(0, params={"a": 1.0, "b": 1})])
    b = run(1, [trial(0, params={"a": 1.0, "b": 2})])
    div = first_divergence([a, b], LOOSE)
    assert div is not None and div.field == "params"
    assert div.detail.startswith("param b = 1 vs 2")
    c = run(2, [trial(0, params={"a": 1.0 + 1e-12, "b": 1})])
    div = first_divergence([a, c], LOOSE)
    assert div is not None and div.detail.startswith("param a = 1.0 vs 1.000000000001")


# --- distinct histories -----------------------------------------------------------------------


def test_distinct_histories_counts() -> None:
    ref = base_trials()
    other = replace_trial(ref, 1, trial(1, 8.0, params={"x": 0.1, "n": 1}, iv={0: 1.0, 1: 0.5}))
    third = replace_trial(ref, 2, trial(2, 8.0, params={"x": 0.2, "n": 2}, iv={0: 1.0, 1: 0.5}))
    assert distinct_histories([run(i, ref) for i in range(4)], EXACT) == 1
    assert distinct_histories([run(0, ref), run(1, other), run(2, ref)], EXACT) == 2
    assert distinct_histories([run(0, ref), run(1, other), run(2, third)], EXACT) == 3
    assert distinct_histories([run(0, ref), run(1, ref[:2])], EXACT) == 2
    assert distinct_histories([], EXACT) == 0


def test_distinct_histories_under_tolerance() -> None:
    a = run(0, [trial(0, 0.0)])
    b = run(1, [trial(0, -0.0)])
    c = run(2, [trial(0, 1e-9)])
    assert distinct_histories([a, b, c], EXACT) == 3
    assert distinct_histories([a, b, c], LOOSE) == 1


def test_distinct_histories_nan_is_one_history() -> None:
    runs = [run(i, [trial(0, math.nan)]) for i in range(3)]
    assert distinct_histories(runs, EXACT) == 1


# --- Stats ------------------------------------------------------------------------------------


def test_stats_sample_std() -> None:
    stats = Stats.of([1.0, 2.0, 3.0, 4.0])
    assert stats is not None
    assert stats.mean == 2.5
    assert stats.std == pytest.approx(math.sqrt(5 / 3), rel=1e-15)
    assert (stats.min, stats.max, stats.n, stats.range) == (1.0, 4.0, 4, 3.0)


def test_stats_second_hand_computed_example() -> None:
    # deviations from 5: -3 -1 -1 -1 0 0 2 4 -> squares sum 32, sample variance 32/7
    stats = Stats.of([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert stats is not None
    assert stats.mean == 5.0
    assert stats.std == pytest.approx(math.sqrt(32 / 7), rel=1e-15)
    assert stats.n == 8


def test_stats_single_value_and_nan_handling() -> None:
    assert Stats.of([7.0]) == Stats(7.0, 0.0, 7.0, 7.0, 1)
    stats = Stats.of([1.0, math.nan, 3.0])
    assert stats is not None
    assert (stats.mean, stats.n) == (2.0, 2)
    assert stats.std == pytest.approx(math.sqrt(2.0), rel=1e-15)
    assert Stats.of([]) is None
    assert Stats.of([math.nan, math.nan]) is None


def test_stats_of_opposite_infinities_does_not_raise() -> None:
    stats = Stats.of([math.inf, -math.inf])
    assert stats is not None
    assert (stats.min, stats.max, stats.n) == (-math.inf, math.inf, 2)
    assert math.isnan(stats.mean)


# --- best params spread -----------------------------------------------------------------------


def best_run(index: int, params: dict[str, Any], *, status: str = "ok") -> RunRecord:
    # trial 1 is the best (lowest value); trial 0 has other params that must not be used
    return run(
        index,
        [trial(0, 10.0, params={k: "decoy" for k in params}), trial(1, 1.0, params=params)],
        status=status,
    )


def test_param_spreads_numeric_and_categorical() -> None:
    runs = [
        best_run(0, {"x": 1.0, "n": 3, "opt": "adam", "flag": True}),
        best_run(1, {"x": 2.0, "n": 3, "opt": "sgd", "flag": True}),
        best_run(2, {"x": 3.0, "n": 3, "opt": "adam", "flag": True}),
    ]
    spreads = param_spreads(runs)
    assert list(spreads) == ["flag", "n", "opt", "x"]
    x = spreads["x"]
    assert x.stats is not None and x.counts == {}
    assert (x.stats.mean, x.stats.min, x.stats.max, x.stats.n) == (2.0, 1.0, 3.0, 3)
    assert x.stats.std == pytest.approx(1.0, rel=1e-15)
    assert x.varies
    n = spreads["n"]
    assert n.stats is not None and n.stats.mean == 3.0
    assert not n.varies
    opt = spreads["opt"]
    assert opt.stats is None
    assert opt.counts == {"'adam'": 2, "'sgd'": 1}
    assert opt.varies
    flag = spreads["flag"]  # bools are categorical, not numbers
    assert flag.stats is None
    assert flag.counts == {"True": 3}
    assert not flag.varies


def test_param_spreads_mixed_types_are_categorical() -> None:
    spreads = param_spreads([best_run(0, {"p": 1}), best_run(1, {"p": "1"})])
    assert spreads["p"].stats is None
    assert spreads["p"].counts == {"1": 1, "'1'": 1}


def test_param_spreads_skip_runs_without_a_best_trial() -> None:
    empty = run(1, [trial(0, None, state="FAIL")])
    multi = run(2, [trial(0, values=(1.0, 2.0))], directions=("minimize", "minimize"))
    spreads = param_spreads([best_run(0, {"x": 1.0}), empty, multi])
    assert spreads["x"].stats is not None and spreads["x"].stats.n == 1


# --- best-table cells -------------------------------------------------------------------------


def test_differing_best_cells_all_equal() -> None:
    runs = [best_run(i, {"x": 1.0, "n": 2}) for i in range(3)]
    assert differing_best_cells(runs, EXACT) == {}
    assert differing_best_cells([], EXACT) == {}


def test_differing_best_cells_marks_the_runs_that_differ_from_the_first() -> None:
    def r(index: int, value: float, params: dict[str, Any]) -> RunRecord:
        return run(index, [trial(0, value, params=params)])

    runs = [
        r(0, 1.0, {"x": 1.0, "n": 2}),
        r(1, 1.0, {"x": 1.0, "n": 2}),
        r(2, 2.0, {"x": 1.0, "n": 2}),
        r(3, 1.0, {"x": 1.0, "n": 5}),
    ]
    assert differing_best_cells(runs, EXACT) == {2: {"value"}, 3: {"n"}}


def test_differing_best_cells_respects_tolerance_for_values_only() -> None:
    a = run(0, [trial(0, 1.0, params={"x": 1.0, "n": 1})])
    b = run(1, [trial(0, 1.0 + 1e-9, params={"x": 1.0 + 1e-9, "n": 1})])
    c = run(2, [trial(0, 1.0, params={"x": 1.0, "n": 2})])
    assert differing_best_cells([a, b], EXACT) == {1: {"value", "x"}}
    assert differing_best_cells([a, b], LOOSE) == {1: {"x"}}  # params: exactly, always
    assert differing_best_cells([a, c], HUGE) == {2: {"n"}}


def test_differing_best_cells_missing_best() -> None:
    a = run(0, [trial(0, 1.0, params={"x": 1.0})])
    b = run(1, [trial(0, None, state="FAIL", params={})])
    assert differing_best_cells([a, b], HUGE) == {1: {"value", "x"}}


# --- best trials ------------------------------------------------------------------------------


def test_single_objective_best_minimize_and_maximize() -> None:
    trials = [trial(0, 3.0), trial(1, -2.0), trial(2, 5.0)]
    assert [t.number for t in run(0, trials).best_trials()] == [1]
    assert run(0, trials).best_value == -2.0
    maxi = run(0, trials, directions=("maximize",))
    assert [t.number for t in maxi.best_trials()] == [2]
    assert maxi.best_value == 5.0


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_single_objective_ties_go_to_lowest_trial_number(direction: str) -> None:
    trials = [
        trial(0, 3.0, params={"x": 0.0}),
        trial(1, 1.0, params={"x": 0.1}),
        trial(2, 1.0, params={"x": 0.2}),
        trial(3, 3.0, params={"x": 0.3}),
    ]
    best = run(0, trials, directions=(direction,))
    expected = 1 if direction == "minimize" else 0
    assert [t.number for t in best.best_trials()] == [expected]
    assert best.best_params == {"x": expected / 10}


def test_best_ignores_pruned_and_failed_trials() -> None:
    trials = [
        trial(0, 5.0),
        trial(1, values=(-100.0,), state="PRUNED"),
        trial(2, None, state="FAIL"),
    ]
    assert [t.number for t in run(0, trials).best_trials()] == [0]
    nothing = run(0, trials[1:])
    assert nothing.best_trials() == []
    assert nothing.best_value is None
    assert nothing.best_params is None


MO_TRIALS = [
    trial(0, values=(1.0, 1.0)),
    trial(1, values=(2.0, 3.0)),
    trial(2, values=(3.0, 2.0)),
    trial(3, values=(1.0, 0.5)),
    trial(4, values=(2.0, 3.0)),
    trial(5, None, state="PRUNED"),
]


@pytest.mark.parametrize(
    ("directions", "front"),
    [
        (("minimize", "maximize"), [0, 1, 4]),
        (("minimize", "minimize"), [3]),
        (("maximize", "maximize"), [1, 2, 4]),
        (("maximize", "minimize"), [2, 3]),
    ],
)
def test_pareto_front(directions: tuple[str, str], front: list[int]) -> None:
    record = run(0, MO_TRIALS, directions=directions)
    assert record.multi_objective
    assert [t.number for t in record.best_trials()] == front
    assert record.best_value is None
    assert record.best_params is None


# --- compare_runs -----------------------------------------------------------------------------


def test_compare_runs_uses_finished_runs_for_spread() -> None:
    ref = [trial(0, 2.0, params={"x": 0.5}), trial(1, 1.0, params={"x": 0.25})]
    good = [run(0, ref), run(1, ref)]
    crashed = run(2, [trial(0, -50.0, params={"x": 0.9})], status="crashed")
    comparison = compare_runs([*good, crashed], EXACT)
    assert comparison.distinct_histories == 1
    assert comparison.best_value == Stats(1.0, 0.0, 1.0, 1.0, 2)
    assert comparison.best_params["x"].stats == Stats(0.25, 0.0, 0.25, 0.25, 2)
    assert comparison.divergence is not None
    assert (comparison.divergence.trial, comparison.divergence.runs) == (0, (0, 2))


def test_runs_past_a_slow_reference_are_compared_with_each_other() -> None:
    runs = [
        RunRecord(0, 0, "cancelled", (trial(0, 1.0),)),
        RunRecord(1, 0, "cancelled", (trial(0, 1.0), trial(1, 2.0))),
        RunRecord(2, 0, "cancelled", (trial(0, 1.0), trial(1, 3.0))),
    ]
    divergence = first_divergence(runs, Tolerance())
    assert divergence is not None and divergence.trial == 1
    built = report.build("run", CheckPlan(target="m:f"), "cpu", runs, stopped_early=True)
    assert built.verdict == "not reproducible" and built.exit_code == 1


def test_fail_fast_stop_is_never_reproducible() -> None:
    runs = [RunRecord(i, 0, "cancelled", (trial(0, 1.0),)) for i in range(2)]
    built = report.build("run", CheckPlan(target="m:f", runs=2), "cpu", runs, stopped_early=True)
    assert built.reproducible is False and built.exit_code == 1


def test_relative_tolerance_never_equates_infinity_with_a_number() -> None:
    a = RunRecord(0, 0, "ok", (trial(0, 1.0), trial(1, float("inf"))))
    b = RunRecord(1, 0, "ok", (trial(0, 1.0), trial(1, 0.008)))
    c = RunRecord(2, 0, "ok", (trial(0, 1.0), trial(1, float("-inf"))))
    for other in (b, c):
        divergence = first_divergence([a, other], Tolerance(rtol=1e-9))
        assert divergence is not None and divergence.trial == 1


def test_failures_of_different_kinds_differ() -> None:
    a = RunRecord(0, 0, "ok", (TrialRecord(0, "FAIL", {}, None, error="ValueError: x"),))
    b = RunRecord(1, 0, "ok", (TrialRecord(0, "FAIL", {}, None, error="TypeError: x"),))
    divergence = first_divergence([a, b], Tolerance())
    assert divergence is not None and divergence.field == "state"
    assert "ValueError" in divergence.detail and "TypeError" in divergence.detail


def test_a_short_run_list_is_never_complete() -> None:
    plan = CheckPlan(target="m:f", runs=3)
    runs = [RunRecord(0, 0, "ok", (trial(0, 1.0),))]
    built = report.build("run", plan, "cpu", runs)
    assert built.verdict == "incomplete" and built.exit_code == 3
