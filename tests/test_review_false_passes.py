"""False passes (and false refusals) found by the adversarial review of the issue-8 work."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import cli, fixture, inprocess_cli

from repro_check.results.records import stopped_note


@pytest.mark.e2e
def test_a_worker_that_dies_after_its_study_but_before_done_is_not_finished(run_check) -> None:
    # both workers streamed every trial and 'study_done', then exited with code 1 before 'done'
    # (environment, notes, torch's ops lost): this was "REPRODUCIBLE", exit 0
    result = run_check(fixture("hostile_exit_after_study"), "--trials", "6", "--runs", "2")
    assert result.code == 3, result.out + result.err
    assert result.report["reproducible"] is False
    assert result.report["verdict"] != "reproducible"
    for run in result.report["runs"]:
        assert run["status"] == "crashed", run
        assert "before it reported the end of its job" in run["error"]
        assert "exited with code 1" in run["error"]
        assert len(run["trials"]) == 6  # the trials that arrived are kept
    assert "Traceback" not in result.out + result.err


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One live run of the study that stops itself early, read (never changed) by two tests."""
    out = tmp_path_factory.mktemp("stopped") / "r.json"
    return cli("run", fixture("hostile_stop"), "--trials", "8", "--runs", "2", json_path=out)


@pytest.mark.e2e
def test_the_report_of_a_stopped_study_can_be_read_back(stopped_run, tmp_path: Path) -> None:
    # a live run of a study stopped early (fewer trials, its note says so) saved a report that
    # `report` and `--baseline` then refused (exit 2: "a finished run holds trials 0..7")
    result = stopped_run
    assert result.code == 0, result.out + result.err
    saved = tmp_path / "stopped.json"
    saved.write_text(json.dumps(result.report))
    again = cli("report", str(saved), "-q")
    assert again.code == 0, again.out + again.err
    assert "REPRODUCIBLE" in again.out
    base = cli(
        "run", fixture("hostile_stop"), "--trials", "8", "--runs", "2", "--baseline", str(saved)
    )
    assert base.code == 0, base.out + base.err


@pytest.mark.e2e
def test_a_short_finished_run_without_the_stopped_note_is_still_refused(
    stopped_run, tmp_path: Path
) -> None:
    result = stopped_run
    data = copy.deepcopy(result.report)  # the shared report stays as the run wrote it
    for run in data["runs"]:
        run["notes"] = [n for n in run["notes"] if "stopped after" not in n]
    saved = tmp_path / "tampered.json"
    saved.write_text(json.dumps(data))
    again = inprocess_cli("report", str(saved), "-q")  # refused on reading: no worker
    assert again.code == 2, again.out + again.err
    assert "a finished run holds trials 0..7 exactly once" in again.err
    # a gap (trials 0, 1, 3, 4 under a note for 4) is refused too
    data = copy.deepcopy(result.report)
    for run in data["runs"]:
        run["notes"] = [stopped_note(4, 8)]
        run["trials"] = [t for t in run["trials"] if t["number"] != 2][:4]
    saved.write_text(json.dumps(data))
    gap = inprocess_cli("report", str(saved), "-q")
    assert gap.code == 2, gap.out + gap.err


@pytest.mark.e2e
def test_a_live_report_with_unruly_user_attrs_and_errors_reads_back(
    run_check, tmp_path: Path
) -> None:
    # the live run passed, then `report` refused its own report (exit 2: a lone surrogate, a
    # string over 65,536 characters, nesting over 32 levels in user_attrs or the error)
    result = run_check(fixture("unreadable_attrs"), "--trials", "3", "--runs", "2")
    assert result.code == 0, result.out + result.err
    saved = tmp_path / "attrs.json"
    saved.write_text(json.dumps(result.report))
    again = cli("report", str(saved), "-q")
    assert again.code == 0, again.out + again.err
    trial = result.report["runs"][0]["trials"][0]
    assert trial["user_attrs"]["text"] == "bad \\ud800 text"
    assert len(trial["user_attrs"]["long"]) <= 65_536
    failed = result.report["runs"][0]["trials"][1]
    assert failed["state"] == "FAIL" and failed["error"].startswith("ValueError: xxx")


@pytest.mark.e2e
def test_a_huge_error_message_does_not_stall_the_worker(run_check) -> None:
    # the search for "X does not have a deterministic implementation" backtracked
    # quadratically: minutes per failing trial, so every run hit the --timeout (exit 3)
    result = run_check(fixture("long_error"), "--trials", "3", "--runs", "2", "--timeout", "60")
    assert result.code == 0, result.out + result.err
    assert [run["status"] for run in result.report["runs"]] == ["ok", "ok"]
    assert result.report["runs"][0]["trials"][1]["state"] == "FAIL"
