"""Shared checks: heartbeats, dead and interrupted replicates (issue 8, item 11)."""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import cli, fixture, inprocess_cli, spawn_cli

from repro_check.errors import ConfigError
from repro_check.plan.config import build_plan
from repro_check.plan.liveness import (
    HEARTBEATS_PER_WINDOW,
    MAX_STALE_AFTER,
    MIN_STALE_AFTER,
    heartbeat_interval,
)
from repro_check.results.records import RunRecord
from repro_check.results.trial_record import TrialRecord
from repro_check.storage.store import ABANDONED, HEARTBEAT, STATUS, SUPERSEDED_BY, CheckStore


def _stored(url: str, name: str) -> dict[str, dict[str, Any]]:
    import optuna

    return {
        s.study_name: {"trials": s.n_trials, "status": s.user_attrs.get("repro_check_status")}
        for s in optuna.get_all_study_summaries(url)
        if s.study_name.startswith(name + "/")
    }


def _plan_flags(url: str, **extra: Any) -> dict[str, Any]:
    return {"storage": url, "name": "n", "runs": 2, "trials": 2, **extra}


@pytest.mark.parametrize("value", [0.1, 0.5, 1.9, 1e308, 1e12, math.inf, math.nan, -5.0, 0.0])
def test_stale_after_values_that_cannot_work_are_refused(tmp_path: Path, value: float) -> None:
    with pytest.raises(ConfigError) as caught:
        build_plan(fixture("deterministic"), _plan_flags("sqlite:///x.db", stale_after=value))
    message = str(caught.value)
    assert message.startswith("--stale-after ") and len(message.splitlines()) == 1


def test_stale_after_from_a_config_file_is_checked_too(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("stale_after = 1.0\n")
    with pytest.raises(ConfigError, match="stale_after must be between"):
        build_plan(fixture("deterministic"), _plan_flags("sqlite:///x.db"), config)


@pytest.mark.parametrize("value", [MIN_STALE_AFTER, 2.5, 120.0, 3600.0, MAX_STALE_AFTER])
def test_every_accepted_stale_after_holds_several_heartbeats(value: float) -> None:
    plan = build_plan(fixture("deterministic"), _plan_flags("sqlite:///x.db", stale_after=value))
    interval = heartbeat_interval(plan.stale_after)
    assert interval * HEARTBEATS_PER_WINDOW <= plan.stale_after
    assert 0 < interval <= threading.TIMEOUT_MAX  # Event.wait(interval) cannot overflow


@pytest.mark.e2e
def test_a_huge_stale_after_is_one_line_not_a_thread_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    result = cli(
        "run",
        fixture("deterministic"),
        "--trials",
        "2",
        "--runs",
        "2",
        "--storage",
        url,
        "--name",
        "h",
        "--stale-after",
        "1e308",
    )
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    assert "--stale-after" in result.err
    tiny = inprocess_cli("report", "--storage", url, "--name", "h", "--stale-after", "0.5")
    assert tiny.code == 2 and "--stale-after" in tiny.err, tiny.err
    assert len(tiny.err.strip().splitlines()) == 1


def _info(url: str, name: str, **flags: Any) -> dict[str, Any]:
    """What ``run_shared`` stores with each claim, for the same flags."""
    plan = build_plan(fixture("deterministic"), {"storage": url, "name": name, **flags})
    return {
        "check": name,
        "target": plan.target,
        "seed": plan.seed,
        "settings": plan.to_dict("cpu"),
    }


@pytest.mark.e2e
@pytest.mark.slow
def test_resume_marks_the_dead_attempt_abandoned(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dead.db'}"
    flags = {"runs": 2, "trials": 2, "stale_after": 2.0}
    store = CheckStore(url, "d")
    dead = store.claim(0, ["minimize"], _info(url, "d", **flags), resume=False, stale_after=2.0)
    assert dead is not None
    store._set(dead, HEARTBEAT, time.time() - 60)  # its process died a minute ago
    result = cli(
        "run",
        fixture("deterministic"),
        *("--trials", "2", "--runs", "2", "--stale-after", "2"),
        *("--storage", url, "--name", "d", "--resume"),
        json_path=tmp_path / "r.json",
    )
    assert result.code == 0, result.out + result.err
    assert result.report is not None and result.report["verdict"] == "reproducible"
    assert [run["index"] for run in result.report["runs"]] == [0, 1]  # each replicate once
    assert _stored(url, "d") == {
        "d/run-0": {"trials": 0, "status": ABANDONED},  # no longer "running" forever
        "d/run-0/attempt-1": {"trials": 2, "status": "ok"},
        "d/run-1": {"trials": 2, "status": "ok"},
    }
    import optuna

    old = optuna.load_study(study_name="d/run-0", storage=url)
    assert old.user_attrs[SUPERSEDED_BY] == "d/run-0/attempt-1"


def test_a_late_finish_of_an_abandoned_attempt_stays_abandoned(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'late.db'}"
    info = _info(url, "l", runs=2, trials=2, stale_after=2.0)
    store = CheckStore(url, "l")
    slow = store.claim(0, ["minimize"], info, resume=False, stale_after=2.0)
    assert slow is not None
    store._set(slow, HEARTBEAT, time.time() - 60)  # looked dead (a stalled machine)
    retake = store.claim(0, ["minimize"], info, resume=True, stale_after=2.0)
    assert retake is not None and retake.attempt == 1
    # the stalled process wakes up and reports its run: the replicate keeps one owner
    run = RunRecord(0, 0, "ok", (TrialRecord(0, "COMPLETE", {"x": 0.5}, (1.0,)),))
    store.finish(slow, run)
    attempts = store.attempts()[0]
    assert [a.status for a in attempts] == [ABANDONED, "running"]
    loaded = store.load_runs(2.0)
    assert loaded.runs == [] and loaded.running == [0]


def _wait_for_trials(url: str, name: str, studies: int, deadline: float = 60.0) -> None:
    import optuna

    start = time.monotonic()
    while time.monotonic() - start < deadline:
        try:
            found = [
                s
                for s in optuna.get_all_study_summaries(url)
                if s.study_name.startswith(name + "/") and s.n_trials >= 1
            ]
        except Exception:  # the racing process is still creating the schema
            found = []
        if len(found) >= studies:
            return
        time.sleep(0.1)
    raise AssertionError(f"no trials in {studies} studies after {deadline} s")


@pytest.mark.e2e
@pytest.mark.slow
def test_a_sigterm_fail_fast_shared_check_is_interrupted_not_a_divergence(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ff.db'}"
    flags = (
        *("--trials", "6", "--runs", "2", "--workers", "2", "--fail-fast"),
        *("--storage", url, "--name", "ff"),
    )
    proc = spawn_cli("run", fixture("slow"), *flags)
    _wait_for_trials(url, "ff", studies=2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "NOT REPRODUCIBLE" not in out
    later = cli("report", "--storage", url, "--name", "ff", json_path=tmp_path / "later.json")
    assert later.report is not None, later.err
    assert "NOT REPRODUCIBLE" not in later.out and "--resume" in later.out, later.out
    assert later.report["verdict"] == "interrupted" and later.code == 130, later.out
    assert later.report["stopped_early"] is False and later.report["reproducible"] is False
    saved = json.loads((tmp_path / "later.json").read_text())
    assert saved["exit_code"] == 130
    statuses = {s["status"] for s in _stored(url, "ff").values()}
    assert statuses == {"interrupted"}, _stored(url, "ff")
    # --resume retakes the interrupted replicates and finishes the check, each replicate once
    resumed = cli("run", fixture("slow"), *flags, "--resume", json_path=tmp_path / "r.json")
    assert resumed.code == 0, resumed.out + resumed.err
    assert resumed.report is not None and resumed.report["verdict"] == "reproducible"
    assert [run["index"] for run in resumed.report["runs"]] == [0, 1]
    assert {k: v["status"] for k, v in _stored(url, "ff").items()} == {
        "ff/run-0": "interrupted",
        "ff/run-0/attempt-1": "ok",
        "ff/run-1": "interrupted",
        "ff/run-1/attempt-1": "ok",
    }


def test_a_stored_cancelled_run_without_divergence_is_never_a_fail_fast_verdict(
    tmp_path: Path,
) -> None:
    """Checks stored before this fix keep ``cancelled`` for interrupted runs: with no divergence
    in the stored trials they are incomplete, not "NOT REPRODUCIBLE: --fail-fast stopped"."""
    from repro_check.checks.shared import load_report

    url = f"sqlite:///{tmp_path / 'old.db'}"
    plan = build_plan(
        fixture("deterministic"),
        {"storage": url, "name": "o", "runs": 2, "trials": 2, "fail_fast": True},
    )
    info = _info(url, "o", runs=2, trials=2, fail_fast=True)
    store = CheckStore(url, "o")
    for k in (0, 1):
        claim = store.claim(k, ["minimize"], info, resume=False, stale_after=120.0)
        assert claim is not None
        trials = (TrialRecord(0, "COMPLETE", {"x": 0.5}, (1.0,)),)
        store.finish(claim, RunRecord(k, 0, "cancelled", trials, error="stopped"))
    built = load_report(plan, "cpu", store)
    assert built.stopped_early is False
    assert built.verdict == "incomplete" and built.exit_code == 3
    assert store.attempts()[0][-1].attrs[STATUS] == "cancelled"


def test_replicates_claimed_with_other_settings_are_never_reported_together(
    tmp_path: Path,
) -> None:
    """Two processes started together on a new storage both find no settings to check
    against; the report must refuse the mix rather than call it reproducible."""
    from repro_check.checks.shared import load_report

    url = f"sqlite:///{tmp_path / 'mixed.db'}"
    flags = {"storage": url, "name": "m", "trials": 1, "runs": 2}
    plan = build_plan(fixture("deterministic"), flags)
    store = CheckStore(url, "m")
    trials = (TrialRecord(0, "COMPLETE", {"x": 0.5}, (1.0,)),)
    for k, seed in ((0, 0), (1, 7)):  # replicate 1 came from a process given --seed 7
        info = _info(url, "m", trials=1, runs=2, seed=seed)
        claim = store.claim(k, ["minimize"], info, resume=False, stale_after=120.0)
        assert claim is not None
        store.finish(claim, RunRecord(k, seed, "ok", trials))
    with pytest.raises(ConfigError, match=r"mixes settings: replicate 1 .*seed"):
        load_report(plan, "cpu", store)
    joined = inprocess_cli(  # refused before any worker starts
        "run", fixture("deterministic"), "--trials", "1", "--runs", "2",
        "--storage", url, "--name", "m",
    )  # fmt: skip
    assert joined.code == 2 and "other settings" in joined.err, joined.err


@pytest.mark.e2e
def test_a_check_that_stops_with_an_error_leaves_no_replicate_running(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'err.db'}"
    result = cli(
        "run", fixture("import_error"), "--trials", "2", "--runs", "2",
        "--storage", url, "--name", "e",
    )  # fmt: skip
    assert result.code == 2, result.out + result.err
    stored = _stored(url, "e")
    assert stored and all(s["status"] == "error" for s in stored.values()), stored


@pytest.mark.e2e
def test_report_judges_staleness_by_the_checks_own_heartbeat(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'own.db'}"
    store = CheckStore(url, "s")
    info = _info(url, "s", runs=2, trials=2, stale_after=2.0)
    dead = store.claim(0, ["minimize"], info, resume=False, stale_after=2.0)
    assert dead is not None
    store._set(dead, HEARTBEAT, time.time() - 10)  # dead by the check's 2 s, alive by 120 s
    later = cli("report", "--storage", url, "--name", "s", json_path=tmp_path / "r.json")
    assert later.report is not None, later.err
    assert later.report["awaiting"] == 1  # replicate 1 was never claimed
    assert [(r["index"], r["status"]) for r in later.report["runs"]] == [(0, "crashed")]
    assert "no heartbeat for 2 s" in later.out
    patient = cli("report", "--storage", url, "--name", "s", "--stale-after", "60")
    assert "AWAITING" in patient.out and patient.code == 0, patient.out + patient.err
    other = CheckStore(url, "t")
    busy = _info(url, "t", runs=2, trials=2)  # the default 120 s: a beat every 30 s
    assert other.claim(0, ["minimize"], busy, resume=False, stale_after=120.0) is not None
    hasty = inprocess_cli("report", "--storage", url, "--name", "t", "--stale-after", "60")
    assert hasty.code == 2 and "beats every 30 s" in hasty.err, hasty.err
    assert len(hasty.err.strip().splitlines()) == 1
