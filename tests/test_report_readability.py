"""Reports a person can read: failed trials in a "reproducible" check, a wrong number of
``--direction``s (issue 8 item 1, issue 9 item 8)."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import cli, fixture

from repro_check.plan.settings import CheckPlan, StudySettings
from repro_check.render import fmt, markdown
from repro_check.results import report, report_notes
from repro_check.results.records import RunRecord
from repro_check.results.trial_record import TrialRecord


@pytest.mark.e2e
def test_mostly_failed_reproducible_check_says_so_with_the_reasons() -> None:
    result = cli("run", fixture("mostly_fail"), "--runs", "2", "--trials", "10")
    assert result.code == 0, result.out + result.err
    assert (
        "REPRODUCIBLE, but 9 of 10 trials failed in every run: 2 runs × 10 trials agree bit for bit"
        in result.out
    )
    assert (
        "In every run: 9 failed trials: "
        "ModuleNotFoundError: No module named 'repro_check_missing_package' (9)"
    ) in result.out


@pytest.mark.e2e
def test_two_values_with_one_direction_says_pass_direction_twice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r.json"
    result = cli("run", fixture("multi"), "--runs", "2", "--trials", "2", json_path=out)
    assert result.code == 3, result.out + result.err
    assert (
        "INCOMPLETE: no trial completed: the objective returned 2 values; pass --direction twice"
        in result.out
    )
    assert result.report is not None
    assert any("pass --direction twice" in note for note in result.report["notes"])


def _run(index: int, errors: list[str | None]) -> RunRecord:
    trials = tuple(
        TrialRecord(i, "FAIL" if e else "COMPLETE", {"x": 1.0}, None if e else (1.0,), error=e)
        for i, e in enumerate(errors)
    )
    return RunRecord(index, 0, "ok", trials)


def test_returned_count_reads_the_workers_message() -> None:
    assert report_notes.returned_count("objective returned (0.97, 150)") == 2
    assert report_notes.returned_count("objective returned [1.0, (2, 3), 'a,b']") == 3
    assert (
        report_notes.returned_count("objective returned (np.float64(0.5), np.float64(1.0), 2)") == 3
    )
    assert report_notes.returned_count("objective returned (1.0,)") == 1
    assert report_notes.returned_count("objective returned 0.97") == 1
    assert report_notes.returned_count("objective returned None") is None
    assert report_notes.returned_count("objective returned None (is a `return` missing?)") is None
    assert report_notes.returned_count("ValueError: objective returned (1, 2)") is None


def test_one_value_for_two_directions_says_so() -> None:
    assert report_notes.direction_advice(1, 2) == (
        "the objective returned 1 value but 2 --directions were given; pass --direction once"
    )


def test_failure_lines_per_run_when_runs_differ_and_markdown_shows_them() -> None:
    plan = CheckPlan(target="m:f", runs=2)
    runs = [_run(0, [None, "ValueError: a", "ValueError: a"]), _run(1, [None, None, "KeyError: b"])]
    built = report.build("run", plan, "cpu", runs)
    assert built.failure_lines == [
        "Run 0: 2 failed trials: ValueError: a (2)",
        "Run 1: 1 failed trial: KeyError: b (1)",
    ]
    assert not fmt.headline(built).startswith("REPRODUCIBLE")
    assert "- Run 0: 2 failed trials: ValueError: a (2)" in markdown.render_run(built)


def test_few_failures_keep_the_plain_headline() -> None:
    plan = CheckPlan(target="m:f", runs=2)
    runs = [_run(i, [None, None, "ValueError: a"]) for i in range(2)]
    built = report.build("run", plan, "cpu", runs)
    assert fmt.headline(built) == "REPRODUCIBLE: 2 runs × 3 trials agree bit for bit"
    assert built.failure_lines == ["In every run: 1 failed trial: ValueError: a (1)"]


def test_many_distinct_reasons_are_summed_up() -> None:
    plan = CheckPlan(target="m:f", runs=2)
    errors = [f"ValueError: x too large: {i}" for i in range(5)]
    built = report.build("run", plan, "cpu", [_run(i, [None, *errors]) for i in range(2)])
    assert built.failure_lines == [
        "In every run: 5 failed trials: ValueError: x too large: 0 (1); "
        "ValueError: x too large: 1 (1); ValueError: x too large: 2 (1); 2 other reasons (2)"
    ]


def _trials(values: list[float]) -> tuple[TrialRecord, ...]:
    return tuple(TrialRecord(i, "COMPLETE", {"x": float(i)}, (v,)) for i, v in enumerate(values))


def _runs_with_empty(second: list[float], status: str = "ok") -> list[RunRecord]:
    return [
        RunRecord(0, 0, status, _trials([3.0, 2.0, 1.0])),
        RunRecord(1, 0, "cancelled", _trials(second)),
        RunRecord(2, 0, "cancelled", ()),
        RunRecord(3, 0, "cancelled", ()),
    ]


def test_runs_with_no_trials_are_neither_marked_nor_counted_after_fail_fast() -> None:
    """Issue 9 item 10: --fail-fast used to show `- ≠` for runs that never started and
    counted the histories inconsistently; a run with no trials now counts nowhere."""
    plan = CheckPlan(target="m:f", runs=4, fail_fast=True)
    built = report.build("run", plan, "cpu", _runs_with_empty([3.5]), stopped_early=True)
    assert built.verdict == "not reproducible"
    assert built.comparison.differing_cells == {1: {"value", "x"}}
    assert built.comparison.distinct_histories == 1  # the finished run; run 1 stopped
    assert fmt.histories_text(built) == "1 of 1 (not counted: 1 unfinished, 2 with no trials)"
    rows = fmt.best_table(built).rows
    assert [(c.text, c.differs) for c in rows[2][2:4]] == [("-", False), ("-", False)]


def test_runs_with_no_trials_follow_the_same_rule_after_ctrl_c() -> None:
    plan = CheckPlan(target="m:f", runs=4)
    runs = [dataclasses.replace(r, status="cancelled") for r in _runs_with_empty([3.0, 2.0])]
    built = dataclasses.replace(report.build("run", plan, "cpu", runs), interrupted=True)
    assert built.verdict == "interrupted"
    assert built.comparison.distinct_histories == 1  # run 1 agrees with run 0 on its 2 trials
    assert fmt.histories_text(built) == "1 of 2 (not counted: 2 with no trials)"
    assert built.comparison.differing_cells == {1: {"value", "x"}}  # a partial run's best differs
    # a stopped run that differs on the trials it has is its own history, here as there
    runs = [dataclasses.replace(r, status="cancelled") for r in _runs_with_empty([3.0, 9.0])]
    built = report.build("run", plan, "cpu", runs)
    assert built.comparison.distinct_histories == 2


def test_reference_of_the_marks_is_the_first_run_with_trials() -> None:
    plan = CheckPlan(target="m:f", runs=3)
    runs = [
        RunRecord(0, 0, "cancelled", ()),
        RunRecord(1, 0, "ok", _trials([1.0])),
        RunRecord(2, 0, "ok", _trials([2.0])),
    ]
    built = report.build("run", plan, "cpu", runs)
    assert fmt.reference_index(built) == 1
    assert built.comparison.differing_cells == {2: {"value"}}


@pytest.mark.e2e
def test_fail_fast_cli_leaves_unstarted_runs_unmarked() -> None:
    # 40 trials, not 4: run 1 parts at trial 0, and with 4 fast trials it could finish them all
    # before the stop reached it on a loaded machine (seen once in CI), ending "ok"
    result = cli(
        "run", "repro_check.examples.noisy:objective", "--runs", "4", "--trials", "40",
        "--workers", "1", "--fail-fast",
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    assert "- ≠" not in result.out
    assert "distinct histories: 1 of 1 (not counted: 1 unfinished, 2 with no trials)" in result.out


def test_when_every_run_was_stopped_empty_runs_still_do_not_count() -> None:
    """--fail-fast with concurrent workers stops every run: the empty ones used to count as
    distinct histories there (and not after Ctrl-C)."""
    plan = CheckPlan(target="m:f", runs=3, fail_fast=True)
    runs = [
        RunRecord(0, 0, "cancelled", _trials([3.0])),
        RunRecord(1, 0, "cancelled", _trials([3.5])),
        RunRecord(2, 0, "cancelled", ()),
    ]
    built = report.build("run", plan, "cpu", runs, stopped_early=True)
    assert built.comparison.distinct_histories == 2
    assert fmt.histories_text(built) == "2 of 2 (not counted: 1 with no trials)"


def _multi_run(index: int, fronts: list[tuple[float, float, float]]) -> RunRecord:
    """Trials (value 1, value 2, x), all on the Pareto front (value 1 up, value 2 up)."""
    trials = tuple(
        TrialRecord(i, "COMPLETE", {"x": x}, (v1, v2)) for i, (v1, v2, x) in enumerate(fronts)
    )
    return RunRecord(index, 0, "ok", trials, ("minimize", "maximize"))


def test_pareto_front_per_run_marks_the_differing_cells() -> None:
    plan = CheckPlan(target="m:f", runs=3, study=StudySettings(directions=("minimize", "maximize")))
    ref = [(1.0, 1.0, 0.5), (2.0, 3.0, 0.25)]
    runs = [
        _multi_run(0, ref),
        _multi_run(1, ref),
        _multi_run(2, [(1.0, 1.0, 0.5), (2.5, 3.0, 0.75)]),
    ]
    built = report.build("run", plan, "cpu", runs)
    front = fmt.pareto_table(built)
    assert front is not None
    assert front.columns == ["run", "trial", "value 1 (minimize)", "value 2 (maximize)", "x"]
    shown = [[c.text + (" ≠" if c.differs else "") for c in row] for row in front.rows]
    assert shown == [
        ["0", "0", "1", "1", "0.5"],
        ["0", "1", "2", "3", "0.25"],
        ["1", "0", "1", "1", "0.5"],
        ["1", "1", "2", "3", "0.25"],
        ["2", "0", "1", "1", "0.5"],
        ["2", "1", "2.5 ≠", "3", "0.75 ≠"],
    ]
    best = fmt.best_table(built)
    assert [row[2].text + (" ≠" if row[2].differs else "") for row in best.rows] == [
        "2 trials",
        "2 trials",
        "2 trials ≠",
    ]
    assert fmt.pareto_line(built) == "2 trials in every run"
    md = markdown.render_run(built)
    assert "| 2 | 1 | 2.5 ≠ | 3 | 0.75 ≠ |" in md
    assert "**Pareto front:** 2 trials in every run" in md


@pytest.mark.e2e
def test_multi_objective_console_shows_the_front_not_best_value_dash() -> None:
    result = cli(
        "run", fixture("multi"), "--runs", "2", "--trials", "3",
        "--direction", "minimize", "--direction", "maximize",
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    assert "Pareto front per run (≠: differs from run 0's at the same position)" in result.out
    assert "┃ run ┃ trial ┃ value 1 (minimize) ┃ value 2 (maximize) ┃" in result.out
    assert "Pareto front: 3 trials in every run" in result.out
    assert "Best value: -" not in result.out


@pytest.mark.e2e
def test_noisy_multi_objective_marks_the_noisy_objective_only() -> None:
    result = cli(
        "run", fixture("multi_noisy"), "--runs", "2", "--trials", "3",
        "--direction", "minimize", "--direction", "maximize",
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    rows = [line for line in result.out.splitlines() if line.startswith("│   1 │     ")]
    assert len(rows) == 3  # run 1's Pareto trials 0, 1, 2
    for row in rows:
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert cells[2].endswith(" ≠")  # the noisy first objective
        assert not cells[3].endswith("≠") and not cells[4].endswith("≠")  # the rest agree


def test_junit_system_out_lists_the_failure_reasons() -> None:
    from repro_check.render import junit

    plan = CheckPlan(target="m:f", runs=2)
    built = report.build("run", plan, "cpu", [_run(i, [None, "KeyError: b"]) for i in range(2)])
    assert "  In every run: 1 failed trial: KeyError: b (1)" in junit.summary_lines(built)
