"""Reports a person can read: failed trials in a "reproducible" check, a wrong number of
``--direction``s (issue 8 item 1, issue 9 item 8)."""

from __future__ import annotations

from conftest import cli, fixture

from repro_check import report
from repro_check.records import RunRecord, TrialRecord
from repro_check.render import fmt, markdown
from repro_check.settings import CheckPlan


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
    assert report.returned_count("objective returned (0.97, 150)") == 2
    assert report.returned_count("objective returned [1.0, (2, 3), 'a,b']") == 3
    assert report.returned_count("objective returned (np.float64(0.5), np.float64(1.0), 2)") == 3
    assert report.returned_count("objective returned (1.0,)") == 1
    assert report.returned_count("objective returned 0.97") == 1
    assert report.returned_count("objective returned None") is None
    assert report.returned_count("ValueError: objective returned (1, 2)") is None


def test_one_value_for_two_directions_says_so() -> None:
    assert report.direction_advice(1, 2) == (
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
