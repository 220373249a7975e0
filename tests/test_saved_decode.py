"""Saved reports decoded into typed records (results.saved): what the speed-ups must not change.

In process, no worker: reports are built from hand-made records and written as ``run --json``
writes them. Replicates share equal trial records when a report is read (and ``diff`` shares
them across its two files), so these tests pin that only bit-identical trials are shared.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
from pathlib import Path
from typing import Any

import pytest

from repro_check.plan.settings import CheckPlan, StudySettings, Tolerance
from repro_check.render.json_report import dumps
from repro_check.results import report, validate
from repro_check.results.records import RunRecord
from repro_check.results.saved_errors import SavedReportError
from repro_check.results.trial_record import TrialRecord


def _trial(number: int, value: float, params: dict[str, Any] | None = None) -> TrialRecord:
    return TrialRecord(
        number=number,
        state="COMPLETE",
        params={"x": 0.5} if params is None else params,
        values=(value,),
        duration_s=0.001,
    )


def _write(tmp_path: Path, runs: list[list[TrialRecord]], name: str = "r.json") -> Path:
    plan = CheckPlan(target="pkg.mod:objective", runs=len(runs))
    plan = dataclasses.replace(plan, study=StudySettings(trials=len(runs[0])))
    records = [RunRecord(index=i, seed=0, status="ok", trials=tuple(t)) for i, t in enumerate(runs)]
    path = tmp_path / name
    path.write_text(dumps(report.build("run", plan, "cpu", records).to_dict()))
    return path


def test_equal_replicates_share_their_trial_records(tmp_path: Path) -> None:
    trials = [_trial(n, n * 0.25) for n in range(5)]
    loaded = validate.load_run_report(_write(tmp_path, [trials, list(trials), list(trials)]))
    first, *others = loaded.runs
    for run in others:
        assert all(a is b for a, b in zip(first.trials, run.trials, strict=True))
    assert loaded.reproducible


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (_trial(0, 0.0), _trial(0, -0.0)),  # equal as floats, not the same result
        (_trial(0, 1.0, {"x": 1}), _trial(0, 1.0, {"x": 1.0})),  # an int and a float choice
        (_trial(0, 1.0, {"x": True}), _trial(0, 1.0, {"x": 1})),
        (_trial(0, 1.0, {"x": "NaN"}), _trial(0, 1.0, {"x": float("nan")})),
    ],
)
def test_trials_that_differ_in_their_bits_are_never_shared(
    tmp_path: Path, one: TrialRecord, other: TrialRecord
) -> None:
    loaded = validate.load_run_report(_write(tmp_path, [[one], [other]]))
    a, b = (run.trials[0] for run in loaded.runs)
    assert a is not b
    assert not loaded.reproducible
    assert loaded.comparison.divergence is not None


def test_diff_shares_records_across_its_two_files(tmp_path: Path) -> None:
    trials = [_trial(n, n * 0.5) for n in range(4)]
    path_a = _write(tmp_path, [trials, list(trials)], "a.json")
    path_b = _write(tmp_path, [list(trials), list(trials)], "b.json")
    a, b = validate.load_run_reports([path_a, path_b], Tolerance())
    assert all(x is y for x, y in zip(a.runs[0].trials, b.runs[1].trials, strict=True))


def test_reading_leaves_the_collector_as_it_found_it(tmp_path: Path) -> None:
    good = _write(tmp_path, [[_trial(0, 1.0)], [_trial(0, 1.0)]])
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert gc.isenabled()
    validate.load_run_report(good)
    with pytest.raises(validate.ReportError):
        validate.load_run_report(bad)
    assert gc.isenabled()
    gc.disable()
    try:
        validate.load_run_report(good)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _tampered(tmp_path: Path, change: Any) -> str:
    path = _write(tmp_path, [[_trial(0, 1.0)], [_trial(0, 1.0)]])
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(validate.ReportError) as caught:
        validate.load_run_report(path)
    return str(caught.value)


def test_an_error_names_the_dict_key_msgspec_leaves_out(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["runs"][1]["trials"][0]["params"]["lr"] = {"nested": 1}

    message = _tampered(tmp_path, change)
    assert "report.runs[1].trials[0].params.lr: expected a parameter value" in message


def test_a_float_tag_with_another_key_is_refused(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["runs"][0]["trials"][0]["params"]["x"] = {"$float": "NaN", "extra": 1}

    assert "report.runs[0].trials[0].params.x" in _tampered(tmp_path, change)


def test_a_trial_count_beyond_the_bound_is_refused(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["runs"][0]["trials"][0]["number"] = 10**10

    message = _tampered(tmp_path, change)
    assert "report.runs[0].trials[0].number: expected an integer from 0 to 1000000000" in message


def test_from_dict_decodes_as_a_saved_report_does(tmp_path: Path) -> None:
    path = _write(tmp_path, [[_trial(0, 1.0)], [_trial(0, 1.0)]])
    data = json.loads(path.read_text())
    again = report.RunReport.from_dict(data, tolerance=Tolerance())
    assert again.to_dict() == validate.load_run_report(path).to_dict()
    data["runs"][0]["seed"] = "zero"
    with pytest.raises(SavedReportError, match=r"report\.runs\[0\]\.seed"):
        report.RunReport.from_dict(data)


def test_a_studys_n_jobs_past_its_bound_is_refused() -> None:
    """Found by a differential fuzz of issue 20's decoder: the bound had lost its maximum."""
    from conftest import golden_report

    from repro_check.results.validate import ReportError, check_report_data

    data = golden_report("script_two_studies", "script_two_studies.py")
    data["runs"][1]["studies"][0]["n_jobs"] = 2**64
    with pytest.raises(ReportError, match=r"n_jobs: expected an integer from -1000000000"):
        check_report_data(data, "r.json")


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_python_nan_in_plain_values_is_refused_not_nulled(value: float) -> None:
    """msgspec writes a float NaN or infinity as null: two user attributes that differ (NaN
    and inf) would read back equal. Plain values are encoded strictly instead."""
    from conftest import golden_report

    from repro_check.results.report import RunReport
    from repro_check.results.saved_errors import SavedReportError

    data = golden_report("objective_5_trials", "deterministic.py:objective")
    data["runs"][0]["trials"][0]["user_attrs"] = {"loss": value}
    with pytest.raises(SavedReportError, match="JSON has no NaN or infinity"):
        RunReport.from_dict(data)
