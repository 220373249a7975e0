"""compare's statistics and summary sentence, against hand-computed values."""

from __future__ import annotations

import math

import pytest

from repro_check.plan.settings import CheckPlan
from repro_check.results import report
from repro_check.results.compare_report import (
    interval_text,
    mean_interval,
    relative_spread,
    summary_sentence,
    t_quantile,
)
from repro_check.results.comparison import Stats
from repro_check.results.records import RunRecord
from repro_check.results.trial_record import TrialRecord


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


def test_mean_interval_is_the_t_interval_of_the_mean() -> None:
    """95% CI of the mean, t-based: 1, 2, 4 have mean 7/3, std sqrt(7/3), t(2) = 4.303."""
    stats = build([1.0, 2.0, 4.0]).comparison.best_value
    assert stats is not None
    interval = mean_interval(stats)
    assert interval is not None
    half = 4.303 * math.sqrt(7.0 / 3.0) / math.sqrt(3.0)
    assert math.isclose(interval[0], 7.0 / 3.0 - half) and math.isclose(
        interval[1], 7.0 / 3.0 + half
    )
    assert interval_text(stats, 3) == "n=3, 95% CI of the mean -1.46 .. 6.13"


def test_t_quantile_matches_the_tables() -> None:
    # scipy.stats.t.ppf(0.975, df) for these df: 12.706, 2.045, 2.021, 2.000, 1.980
    for df, exact in ((1, 12.706), (29, 2.045), (40, 2.021), (60, 2.000), (120, 1.980)):
        assert abs(t_quantile(df) - exact) < 0.002, df
    with pytest.raises(ValueError):
        t_quantile(0)


def test_no_interval_without_two_values_or_without_spread() -> None:
    one = build([1.0, 1.0]).comparison.best_value
    assert one is not None and mean_interval(one) is not None
    assert interval_text(one) == "n=2"  # every run the same: nothing to bound
    assert interval_text(Stats(1.0, 0.0, 1.0, 1.0, 1)) == "n=1"
    assert mean_interval(Stats(math.inf, math.nan, 1.0, math.inf, 2)) is None


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
        "fixed seeds remove all spread; in the seed sweep, seed choice alone moves the best "
        "value by std 1 over a range of 2 (1 .. 3; n=3, 95% CI of the mean -0.484 .. 4.48), 50% "
        "of the spread as written; as written, the study moves the best value by std 2 over a "
        "range of 4 (1 .. 5; n=3, 95% CI of the mean -1.97 .. 7.97), parting at trial 0."
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
        "fixed seeds remove all spread; in the seed sweep, seed choice alone moves the best "
        "value by std 0.000458 over a range of 0.0009 (0.0021 .. 0.003; n=3, 95% CI of the mean "
        "0.00146 .. 0.00374), 31% of the spread as written; as written, the study moves the best "
        "value by std 0.0015 over a range of 0.003 (0.0012 .. 0.0042; n=3, 95% CI of the mean "
        "-0.00103 .. 0.00643), parting at trial 0."
    )


def test_summary_sentence_near_zero_mean_never_divides_by_the_mean() -> None:
    sweep = build([-0.001, 0.001, 0.0])  # mean 0: a relative figure would be infinite
    sentence = summary_sentence({"seed_sweep": sweep})
    assert sentence == (
        "in the seed sweep, seed choice alone moves the best value by std 0.001 over a range of "
        "0.002 (-0.001 .. 0.001; n=3, 95% CI of the mean -0.00248 .. 0.00248)."
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
        "fixed seeds remove all spread; in the seed sweep, seed choice alone leaves the best "
        "value unchanged; as written, the study leaves the best value unchanged."
    )


# --- each condition's controls (issue item 4.1: the gate is exactly ``run``) ------------------


def test_the_gate_runs_with_the_controls_run_applies() -> None:
    """``compare``'s fixed_seed condition, for a script and an objective, with and without
    ``controls``, gets the controls ``run``'s plan from the same flags has: one default per
    mode (``plan.defaults``), never every control for a script as written."""
    from repro_check.checks.compare import condition_controls, condition_jobs
    from repro_check.plan.config import build_plan
    from repro_check.plan.defaults import default_controls
    from repro_check.plan.settings import Controls
    from repro_check.vocab import GATE, Condition

    for target in ("train.py", "-m pkg.train", "pkg.mod:objective"):
        for flags in ({}, {"controls": "sampler_seed"}, {"controls": "all"}):
            plan = build_plan(target, {**flags, "runs": 2}, pyproject=False)
            assert condition_controls(plan, GATE) == plan.controls
            jobs = condition_jobs(plan, GATE, offset=0)
            assert [job.controls for job in jobs] == [plan.controls] * 2
            assert condition_controls(plan, Condition.UNCONTROLLED) == Controls.none()
        assert build_plan(target, {}, pyproject=False).controls == default_controls(target)
    assert default_controls("train.py") == Controls.none()
    assert default_controls("pkg.mod:objective") == Controls()
    script = build_plan("train.py", {}, pyproject=False)
    assert condition_controls(script, GATE) == Controls.none()
    # a sweep of seeds nothing takes would be no sweep: a script as written sweeps controlled
    assert condition_controls(script, Condition.SEED_SWEEP) == Controls()
    seeded = build_plan("train.py", {"controls": "sampler_seed"}, pyproject=False)
    assert condition_controls(seeded, Condition.SEED_SWEEP) == seeded.controls


def test_a_sweep_that_never_reached_the_scripts_own_sampler_seed_says_so() -> None:
    """A script building ``TPESampler(seed=1)`` keeps that seed in the seed sweep (the check
    seeds only samplers built without one): "seed choice alone leaves the best value unchanged"
    would read as if the sampler's seed had been varied."""
    import dataclasses

    from repro_check.results.records import SamplerInfo, StudyRecord

    sweep = build([2.0, 2.0, 2.0])
    own = SamplerInfo("TPESampler", seed=1, at="train.py:9")
    runs = tuple(
        dataclasses.replace(r, studies=(StudyRecord("a", ("minimize",), own, r.trials),))
        for r in sweep.runs
    )
    sentence = summary_sentence({"seed_sweep": dataclasses.replace(sweep, runs=runs)})
    assert sentence == (
        "in the seed sweep, seed choice alone leaves the best value unchanged, but it did not "
        "reach the sampler(s) the script seeds itself (TPESampler(seed=1) at train.py:9)."
    )
    seeded = SamplerInfo("TPESampler", seed=5, at="train.py:9", seeded_by_check=True)
    runs = tuple(
        dataclasses.replace(r, studies=(StudyRecord("a", ("minimize",), seeded, r.trials),))
        for r in sweep.runs
    )
    assert "did not reach" not in summary_sentence(
        {"seed_sweep": dataclasses.replace(sweep, runs=runs)}
    )
