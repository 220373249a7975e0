"""compare's statistics and summary sentence, against hand-computed values."""

from __future__ import annotations

import math

from repro_check.checks.compare import relative_spread, summary_sentence
from repro_check.plan.settings import CheckPlan
from repro_check.results import report
from repro_check.results.records import RunRecord, TrialRecord


def runs_with_best(values: list[float], xs: list[float] | None = None) -> list[RunRecord]:
    xs = xs or [0.5] * len(values)
    return [
        RunRecord(i, i, "ok", (TrialRecord(0, "COMPLETE", {"x": x}, (v,)),))
        for i, (v, x) in enumerate(zip(values, xs, strict=True))
    ]


def build(values: list[float], xs: list[float] | None = None) -> report.RunReport:
    plan = CheckPlan(target="m:f", runs=len(values))
    return report.build("compare", plan, "cpu", runs_with_best(values, xs))


def test_best_value_statistics_match_hand_computation() -> None:
    stats = build([1.0, 2.0, 4.0]).comparison.best_value
    assert stats is not None
    assert stats.mean == 7.0 / 3.0
    # sample variance: ((1-7/3)^2 + (2-7/3)^2 + (4-7/3)^2) / 2 = (16/9 + 1/9 + 25/9) / 2 = 7/3
    assert math.isclose(stats.std, math.sqrt(7.0 / 3.0), rel_tol=1e-15)
    assert (stats.min, stats.max, stats.n) == (1.0, 4.0, 3)


def test_param_spread_matches_hand_computation() -> None:
    spread = build([1.0, 1.0, 1.0], xs=[0.0, 1.0, 5.0]).comparison.best_params["x"]
    assert spread.stats is not None
    assert spread.stats.mean == 2.0
    assert math.isclose(spread.stats.std, math.sqrt(7.0), rel_tol=1e-15)  # (4+1+9)/2 = 7
    assert spread.stats.range == 5.0


def test_relative_spread() -> None:
    assert relative_spread(0.5, -2.0) == 0.25
    assert relative_spread(0.5, 0.0) is None
    assert relative_spread(math.nan, 1.0) is None


def test_summary_sentence_names_what_the_controls_bought() -> None:
    # the bug fixed here: this pinned "±50%" / "±67%", std divided by the mean (issue 9)
    fixed = build([2.0, 2.0, 2.0])
    sweep = build([1.0, 2.0, 3.0])  # std 1, range 2
    loose = build([1.0, 3.0, 5.0])  # std 2, range 4
    sentence = summary_sentence({"fixed_seed": fixed, "seed_sweep": sweep, "uncontrolled": loose})
    assert sentence == (
        "fixed seeds remove all spread; seed choice alone moves the best value by std 1 over a "
        "range of 2 (1 .. 3), 50% of the spread without controls; without controls the study "
        "moves the best value by std 2 over a range of 4 (1 .. 5), parting at trial 0."
    )


def test_summary_sentence_on_a_small_scale_study_uses_the_value_units() -> None:
    """Best values ~0.0027: std / mean gave "±17%"; the spread is said in the value's units
    and against the uncontrolled condition, whatever the mean."""
    sweep = build([0.0027, 0.0021, 0.0030])
    loose = build([0.0027, 0.0012, 0.0042])
    sentence = summary_sentence(
        {"fixed_seed": build([0.0027] * 3), "seed_sweep": sweep, "uncontrolled": loose}
    )
    assert "±" not in sentence
    assert sentence == (
        "fixed seeds remove all spread; seed choice alone moves the best value by std 0.000458 "
        "over a range of 0.0009 (0.0021 .. 0.003), 31% of the spread without controls; without "
        "controls the study moves the best value by std 0.0015 over a range of 0.003 "
        "(0.0012 .. 0.0042), parting at trial 0."
    )


def test_summary_sentence_near_zero_mean_never_divides_by_the_mean() -> None:
    sweep = build([-0.001, 0.001, 0.0])  # mean 0: a relative figure would be infinite
    sentence = summary_sentence({"seed_sweep": sweep})
    assert sentence == (
        "seed choice alone moves the best value by std 0.001 over a range of 0.002 "
        "(-0.001 .. 0.001)."
    )


def test_summary_sentence_when_fixed_seed_still_varies() -> None:
    sentence = summary_sentence({"fixed_seed": build([1.0, 1.5])})
    assert sentence.startswith(
        "even with fixed seeds the runs differ (noise moves the best value by"
    )


def test_summary_sentence_without_spread_reads_well() -> None:
    flat = build([2.0, 2.0])
    sentence = summary_sentence({"fixed_seed": flat, "seed_sweep": flat, "uncontrolled": flat})
    assert sentence == (
        "fixed seeds remove all spread; seed choice alone leaves the best value unchanged; "
        "without controls the study leaves the best value unchanged."
    )
