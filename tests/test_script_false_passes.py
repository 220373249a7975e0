"""Script mode under attack (issue 11): scripts whose runs differ where the check did not look,
or that the check ran otherwise than `python` does. Each one here was a false "reproducible"
or a check of something else before its fix; the fixtures live in fixtures/scripts/hostile/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli, trial_count
from conftest import report_studies as studies

HOSTILE = FIXTURES / "scripts" / "hostile"


def check(name: str, *args: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """``repro-check run hostile/NAME.py --runs 2 ARGS --json``: the result and its report."""
    out = tmp_path / f"{name}.json"
    result = cli("run", str(HOSTILE / f"{name}.py"), "--runs", "2", *args, json_path=out)
    assert out.exists(), (result.code, result.out, result.err)
    return result, json.loads(out.read_text())


@pytest.mark.e2e
def test_a_study_of_a_study_subclass_is_recorded_and_compared(tmp_path: Path) -> None:
    # was: a study built as a subclass of optuna.Study was not recorded at all, so its
    # unseeded trials (different in every run) were never compared: "reproducible"
    result, report = check("subclass_study", tmp_path=tmp_path)
    assert [s["name"] for s in studies(report)] == ["first", "second"]
    assert result.code == 1, result.out
    assert "'second' (study 1)" in result.out


@pytest.mark.e2e
def test_trials_asked_and_never_told_are_compared(tmp_path: Path) -> None:
    # was: only finished trials were streamed, so a trial asked from an unseeded study and
    # never told (its params differ in every run, and the script uses them) went unseen
    result, report = check("asked_never_told", tmp_path=tmp_path)
    pending = studies(report)[1]["pending"]
    assert len(pending) == 1 and json.loads(pending[0])["state"] == "RUNNING"
    assert result.code == 1, result.out
    assert "unfinished trials" in result.out


@pytest.mark.e2e
def test_numpy_integer_n_jobs_counts_as_threads(tmp_path: Path) -> None:
    # was: optimize(n_jobs=numpy.int64(2)) runs two racing threads, yet only a Python int
    # counted, so the study was recorded as n_jobs=1 and an agreement by luck passed
    result, report = check("numpy_n_jobs", tmp_path=tmp_path)
    assert studies(report)[0]["n_jobs"] == 2
    assert result.code == 1, result.out
    assert "n_jobs" in result.out


@pytest.mark.e2e
def test_optimize_calls_racing_in_the_scripts_own_threads_are_never_reproducible(
    tmp_path: Path,
) -> None:
    # was: two threads of the script calling study.optimize(n_jobs=1) at once race exactly as
    # n_jobs=2 does, but nothing said so: a lucky agreement was "reproducible"
    result, report = check("own_threads", tmp_path=tmp_path)
    assert studies(report)[0]["n_jobs"] == 2
    assert result.code == 1, result.out
    assert "several study.optimize calls on it at once" in result.out


@pytest.mark.e2e
def test_studies_run_in_threads_the_script_leaves_running_are_waited_for(
    tmp_path: Path,
) -> None:
    # was: the worker read the studies as soon as the main code returned, while `python`
    # waits for non-daemon threads (and wakes an executor left open): 0 trials were checked
    result, report = check("thread_optimize", tmp_path=tmp_path)
    assert result.code == 0, result.out
    assert [trial_count(report, run, i) for run in (0, 1) for i in (0, 1)] == [5, 4, 5, 4]


@pytest.mark.e2e
def test_a_study_optimized_in_an_atexit_handler_is_checked(tmp_path: Path) -> None:
    # was: the worker left with os._exit before the script's atexit handlers ran
    result, report = check("atexit_optimize", tmp_path=tmp_path)
    assert result.code == 0, result.out
    assert [trial_count(report, run, 0) for run in (0, 1)] == [4, 4]


@pytest.mark.e2e
def test_a_daemon_thread_still_optimizing_at_the_end_is_a_crashed_run(tmp_path: Path) -> None:
    # was: whatever trials the daemon thread had run by then were compared, a count that
    # depends on timing (often the same in every run: "reproducible")
    result, report = check("daemon_optimize", tmp_path=tmp_path)
    assert result.code == 3, result.out
    errors = [run["error"] for run in report["runs"]]
    assert all("daemon thread" in (e or "") for e in errors), errors


@pytest.mark.e2e
def test_a_script_replacing_get_trials_does_not_choose_what_is_compared(tmp_path: Path) -> None:
    # was: the worker read each study through Study.get_trials as the script left it, so a
    # patched one returning the same made-up trial in every run hid the unseeded study
    result, report = check("patches_get_trials", tmp_path=tmp_path)
    assert trial_count(report, 0, 0) == 4
    assert result.code == 1, result.out


@pytest.mark.e2e
def test_a_subprocess_writing_the_users_storage_file_is_a_crashed_run(tmp_path: Path) -> None:
    # was: the run's study (a private copy) agreed in every run, "reproducible", while the
    # script's subprocess wrote the user's own user.db, which every replicate then shared
    out = tmp_path / "report.json"
    name = str(HOSTILE / "child_writes_storage.py")
    result = cli("run", name, "--runs", "2", "--workers", "1", cwd=tmp_path, json_path=out)
    assert result.code == 3, result.out
    report = json.loads(out.read_text())
    assert all("user.db changed while the script ran" in r["error"] for r in report["runs"])


@pytest.mark.e2e
def test_the_script_sees_file_package_and_argv_as_python_gives_them(tmp_path: Path) -> None:
    # was: runpy.run_path kept __file__ as typed (relative) and set __package__ to "", where
    # `python as_python.py` gives an absolute __file__ and None: a check of something else
    probe = subprocess.run(
        [sys.executable, "as_python.py"], cwd=HOSTILE, capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr  # the script is right about python
    out = tmp_path / "report.json"
    result = cli("run", "as_python.py", "--runs", "2", cwd=HOSTILE, json_path=out)
    assert result.code == 0, result.out


@pytest.mark.e2e
def test_sys_exit_inside_optimize_in_a_thread_is_a_crashed_run(tmp_path: Path) -> None:
    # was: the SystemExit ended only the optimizing thread, the script ended well and the 2
    # trials before it agreed: "reproducible" for a study cut short at trial 2 of 5
    result, report = check("exit_in_thread", tmp_path=tmp_path)
    assert result.code == 3, result.out
    errors = [run["error"] or "" for run in report["runs"]]
    assert all("sys.exit(0) was called inside study.optimize" in e for e in errors), errors


@pytest.mark.e2e
def test_a_loop_that_swallows_the_trials_cap_stops_at_the_cap(tmp_path: Path) -> None:
    # was: the loop caught CapReached with a bare except and asked again forever (a hang
    # without --timeout; with it, a crashed run): it now ends there, as the cap says
    result, report = check("swallows_cap", "--trials", "3", "--timeout", "60", tmp_path=tmp_path)
    assert result.code == 0, result.out
    assert [trial_count(report, run, 0) for run in (0, 1)] == [3, 3]
    assert studies(report)[0]["capped"] is True
