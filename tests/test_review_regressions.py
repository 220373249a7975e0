"""Regressions for bugs a review found: every one of the false passes stays fixed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import cli, fixture, spawn_cli

from repro_check.plan.settings import CheckPlan, Tolerance
from repro_check.results import report
from repro_check.results.comparison import first_divergence
from repro_check.results.records import RunRecord, TrialRecord


def trial(number: int, value: float) -> TrialRecord:
    return TrialRecord(number, "COMPLETE", {"x": 0.5}, (value,))


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


def test_all_trials_failing_is_incomplete_not_reproducible(run_check) -> None:
    result = run_check(fixture("all_fail"), "--trials", "3", "--runs", "2")
    assert result.code == 3, result.out + result.err
    assert result.report["verdict"] == "incomplete"
    assert "no trial completed" in result.out


def test_failures_of_different_kinds_differ() -> None:
    a = RunRecord(0, 0, "ok", (TrialRecord(0, "FAIL", {}, None, error="ValueError: x"),))
    b = RunRecord(1, 0, "ok", (TrialRecord(0, "FAIL", {}, None, error="TypeError: x"),))
    divergence = first_divergence([a, b], Tolerance())
    assert divergence is not None and divergence.field == "state"
    assert "ValueError" in divergence.detail and "TypeError" in divergence.detail


def test_negative_zero_survives_sqlite_storage(tmp_path: Path) -> None:
    env = {"REPRO_CHECK_TEST_FLAG_FILE": str(tmp_path / "flag")}
    result = cli(
        "run",
        fixture("neg_zero"),
        "--trials",
        "1",
        "--runs",
        "2",
        "--storage",
        f"sqlite:///{tmp_path / 'z.db'}",
        "--name",
        "nz",
        env=env,
        json_path=tmp_path / "r.json",
    )
    assert result.code == 1, result.out + result.err
    assert result.report["divergence"]["field"] == "values"


def test_shared_fail_fast_with_a_divergence_exits_1(tmp_path: Path) -> None:
    result = cli(
        "run",
        fixture("private_rng"),
        "--trials",
        "30",
        "--runs",
        "3",
        "--workers",
        "2",
        "--fail-fast",
        "--storage",
        f"sqlite:///{tmp_path / 'f.db'}",
        "--name",
        "ff",
        json_path=tmp_path / "r.json",
    )
    assert result.code == 1, result.out + result.err
    assert result.report["verdict"] == "not reproducible"
    rebuilt = cli("report", "--storage", f"sqlite:///{tmp_path / 'f.db'}", "--name", "ff")
    assert rebuilt.code == 1, rebuilt.out + rebuilt.err


def test_a_finished_check_is_not_rerun_under_its_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'done.db'}"
    first = cli(
        "run",
        fixture("deterministic"),
        "--trials",
        "2",
        "--runs",
        "2",
        "--storage",
        url,
        "--name",
        "nightly",
    )
    assert first.code == 0, first.err
    again = cli(
        "run",
        fixture("deterministic"),
        "--trials",
        "2",
        "--runs",
        "2",
        "--storage",
        url,
        "--name",
        "nightly",
    )
    assert again.code == 2
    assert "already finished" in again.err


def test_joining_with_another_tolerance_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tol.db'}"
    flags = ("--trials", "2", "--runs", "3", "--workers", "1", "--storage", url, "--name", "t")
    first = cli("run", fixture("slow"), *flags)  # finishes its 3; a joiner must still match
    assert first.code == 0, first.err
    join = cli(
        "run",
        fixture("slow"),
        "--trials",
        "2",
        "--runs",
        "4",
        "--storage",
        url,
        "--name",
        "t",
        "--atol",
        "1",
    )
    assert join.code == 2 and "tolerance" in join.err and "runs" in join.err


def test_baseline_and_diff_need_a_finished_run(tmp_path: Path) -> None:
    ok = cli(
        "run",
        fixture("deterministic"),
        "--trials",
        "3",
        "--runs",
        "2",
        json_path=tmp_path / "ok.json",
    )
    assert ok.code == 0
    data = json.loads((tmp_path / "ok.json").read_text())
    for run in data["runs"]:
        run["status"] = "cancelled"
        run["trials"] = run["trials"][:1]
    lag = tmp_path / "lag.json"
    lag.write_text(json.dumps(data))
    baseline = cli(
        "run", fixture("deterministic"), "--trials", "3", "--runs", "2", "--baseline", str(lag)
    )
    assert baseline.code == 2 and "no finished run" in baseline.err
    diff = cli("diff", str(lag), str(tmp_path / "ok.json"))
    assert diff.code == 2 and "no finished run" in diff.err


def test_complete_trial_without_values_is_bad_input(tmp_path: Path) -> None:
    ok = cli(
        "run",
        fixture("deterministic"),
        "--trials",
        "2",
        "--runs",
        "2",
        json_path=tmp_path / "ok.json",
    )
    data = json.loads((tmp_path / "ok.json").read_text())
    data["runs"][0]["trials"][0]["values"] = []
    data["runs"][1]["wall_s"] = "NaN"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = cli("report", str(bad))
    assert ok.code == 0 and result.code == 2, result.err
    assert "values" in result.err and len(result.err.strip().splitlines()) == 1


def test_a_lingering_thread_does_not_hang_the_check() -> None:
    start = time.monotonic()
    result = cli("run", fixture("linger"), "--trials", "3", "--runs", "2", timeout=60)
    assert result.code == 0, result.out + result.err
    assert time.monotonic() - start < 30


def test_closed_stdout_keeps_the_verdict_exit_code() -> None:
    script = (
        f"{sys.executable} -m repro_check run {fixture('private_rng')} --trials 2 "
        "--runs 2 | head -1 >/dev/null; echo ${PIPESTATUS[0]}"
    )
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "1", out.stderr


def test_unwritable_output_is_refused_before_running(tmp_path: Path) -> None:
    start = time.monotonic()
    result = cli(
        "run", fixture("slow"), "--trials", "20", "--json", str(tmp_path / "missing" / "r.json")
    )
    assert result.code == 2 and "does not exist" in result.err
    assert time.monotonic() - start < 10  # refused before 20 slow trials ran


def test_compare_ignores_fail_fast_from_config(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("fail_fast = true\n")
    result = cli(
        "compare",
        fixture("deterministic"),
        "--trials",
        "4",
        "--runs",
        "2",
        "--config",
        str(config),
        json_path=tmp_path / "c.json",
    )
    assert result.code == 0, result.err
    for condition in result.report["conditions"].values():
        assert all(len(run["trials"]) == 4 for run in condition["runs"])


def test_sigterm_stops_the_workers(tmp_path: Path) -> None:
    proc = spawn_cli("run", fixture("slow"), "--trials", "40", "--runs", "2")
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    time.sleep(0.5)
    leftover = subprocess.run(
        ["pgrep", "-f", "repro_check.execution.worker"], capture_output=True, text=True
    )
    assert str(proc.pid) not in leftover.stdout


def test_a_short_run_list_is_never_complete() -> None:
    plan = CheckPlan(target="m:f", runs=3)
    runs = [RunRecord(0, 0, "ok", (trial(0, 1.0),))]
    built = report.build("run", plan, "cpu", runs)
    assert built.verdict == "incomplete" and built.exit_code == 3


def test_an_interrupted_report_stays_interrupted_when_reloaded() -> None:
    runs = [RunRecord(i, 0, "ok", (trial(0, 1.0),)) for i in range(3)]
    built = report.build("run", CheckPlan(target="m:f"), "cpu", runs)
    import dataclasses

    stopped = dataclasses.replace(built, interrupted=True)
    again = report.RunReport.from_dict(json.loads(json.dumps(stopped.to_dict())))
    assert again.verdict == "interrupted" and again.exit_code == 130


def test_awaiting_is_skipped_in_junit_and_not_a_green_tick_in_markdown() -> None:
    import dataclasses
    import xml.etree.ElementTree as ET

    from repro_check.render import junit, markdown

    runs = [RunRecord(0, 0, "ok", (trial(0, 1.0),))]
    built = report.build("run", CheckPlan(target="m:f", runs=2), "cpu", runs)
    waiting = dataclasses.replace(built, awaiting=1, ran_here=1)
    suite = ET.fromstring(junit.render(waiting)).find("testsuite")
    assert suite is not None and suite.get("skipped") == "1" and suite.get("failures") == "0"
    assert not markdown.render(waiting).startswith("### ✅")


def test_failure_kinds_ignore_memory_addresses() -> None:
    a = TrialRecord(1, "FAIL", {}, None, error="objective returned <Loss object at 0x7f31aa>")
    b = TrialRecord(1, "FAIL", {}, None, error="objective returned <Loss object at 0x7f64bb>")
    assert a.fail_kind == b.fail_kind and a.digest == b.digest
