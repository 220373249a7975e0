"""False passes (and false refusals) found by the adversarial review of the issue-8 work."""

from __future__ import annotations

from conftest import fixture


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
