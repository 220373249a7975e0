"""Optuna storages: replicates persisted, shared between processes, resumed after a kill -9.

SQLite and the journal file storage always run; PostgreSQL runs where
REPRO_CHECK_TEST_POSTGRES_URL points at a server (CI starts one with scripts/start-postgres.sh).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from conftest import cli, fixture, inprocess_cli, spawn_cli
from postgres import require_postgres, storage_for, storage_params

from repro_check.redact import redact, redact_text

require_postgres()


@pytest.fixture(params=storage_params())
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return storage_for(request.param, tmp_path)


def unique_name(tmp_path: Path) -> str:
    return f"check-{tmp_path.name}-{time.time_ns()}"


def studies(url: str, name: str) -> dict[str, dict[str, Any]]:
    import optuna

    return {
        s.study_name: {"trials": s.n_trials, "status": s.user_attrs.get("repro_check_status")}
        for s in optuna.get_all_study_summaries(url)
        if s.study_name.startswith(name + "/")
    }


def popen_run(url: str, name: str, *flags: str, json_path: Path | None = None) -> subprocess.Popen:
    out = ["--json", str(json_path)] if json_path is not None else []
    return spawn_cli(
        "run",
        fixture("slow"),
        "--trials",
        "4",
        "--workers",
        "1",
        "--storage",
        url,
        "--name",
        name,
        *flags,
        *out,
    )


def test_redaction() -> None:
    url = "postgresql+psycopg://alice:pa55@db.example:5432/checks"
    assert redact(url) == "postgresql+psycopg://alice:***@db.example:5432/checks"
    assert redact("sqlite:///x.db") == "sqlite:///x.db"
    assert redact_text(f"could not connect to {url}: pa55 rejected", url) == (
        "could not connect to postgresql+psycopg://alice:***@db.example:5432/checks: *** rejected"
    )


@pytest.mark.e2e
def test_studies_are_named_and_the_report_rebuilds_from_storage(
    storage_url: str, tmp_path: Path
) -> None:
    name = unique_name(tmp_path)
    result = cli(
        "run",
        fixture("deterministic"),
        "--trials",
        "4",
        "--runs",
        "2",
        "--storage",
        storage_url,
        "--name",
        name,
        json_path=tmp_path / "run.json",
    )
    assert result.code == 0, result.out + result.err
    found = studies(storage_url, name)
    assert found == {
        f"{name}/run-0": {"trials": 4, "status": "ok"},
        f"{name}/run-1": {"trials": 4, "status": "ok"},
    }
    import optuna

    study = optuna.load_study(study_name=f"{name}/run-0", storage=storage_url)
    info = study.user_attrs["repro_check"]
    assert info["settings"]["trials"] == 4 and info["target"] == fixture("deterministic")
    assert study.user_attrs["repro_check_result"]["environment"]["python"]
    rebuilt = cli(
        "report", "--storage", storage_url, "--name", name, json_path=tmp_path / "rebuilt.json"
    )
    assert rebuilt.code == 0, rebuilt.err
    original, again = result.report, rebuilt.report
    assert again["verdict"] == original["verdict"] == "reproducible"
    for a, b in zip(original["runs"], again["runs"], strict=True):
        assert [(t["params"], t["values"]) for t in a["trials"]] == [
            (t["params"], t["values"]) for t in b["trials"]
        ]
    for text in (result.out, result.err, rebuilt.out, json.dumps(original)):
        assert "s3cret" not in text


@pytest.mark.e2e
@pytest.mark.slow
def test_two_processes_share_the_replicates(storage_url: str, tmp_path: Path) -> None:
    name = unique_name(tmp_path)
    first = popen_run(storage_url, name, "--runs", "4", json_path=tmp_path / "a.json")
    time.sleep(0.5)
    second = popen_run(storage_url, name, "--runs", "4", json_path=tmp_path / "b.json")
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    found = studies(storage_url, name)
    assert sorted(found) == [f"{name}/run-{k}" for k in range(4)]  # none twice, none lost
    assert all(s == {"trials": 4, "status": "ok"} for s in found.values())
    reports = [json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json")]
    ran_somewhere = [r for r in reports if r["awaiting"] == 0]
    assert ran_somewhere, "the last process to finish prints the whole check"
    assert ran_somewhere[-1]["verdict"] == "reproducible"
    assert len(ran_somewhere[-1]["runs"]) == 4
    for out, err in outs:
        assert "s3cret" not in out + err
        assert "AWAITING" in out or "REPRODUCIBLE" in out


@pytest.mark.e2e
@pytest.mark.slow
def test_kill_9_then_resume_completes_without_loss_or_duplicates(
    storage_url: str, tmp_path: Path
) -> None:
    name = unique_name(tmp_path)
    flags = ("--runs", "3", "--stale-after", "2")
    victim = popen_run(storage_url, name, *flags)
    survivor = popen_run(storage_url, name, *flags)
    time.sleep(3.0)
    victim.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    victim.communicate(timeout=30)
    survivor.communicate(timeout=120)
    # let the dead replicate's heartbeat go stale: its last beat was before the kill, so 2.5 s
    # after the kill is enough (the survivor usually took longer than that already)
    time.sleep(max(0.0, killed + 2.5 - time.monotonic()))
    resumed = cli(
        "run",
        fixture("slow"),
        "--trials",
        "4",
        "--workers",
        "1",
        "--storage",
        storage_url,
        "--name",
        name,
        *flags,
        "--resume",
        json_path=tmp_path / "resumed.json",
    )
    if resumed.code == 2:  # the victim had finished its share before the kill: nothing to retake
        assert "already finished" in resumed.err, resumed.err
        resumed = cli(
            "report", "--storage", storage_url, "--name", name, json_path=tmp_path / "resumed.json"
        )
    assert resumed.code == 0, resumed.out + resumed.err
    report = resumed.report
    assert report["verdict"] == "reproducible"
    assert sorted(run["index"] for run in report["runs"]) == [0, 1, 2]
    assert all(run["status"] == "ok" and len(run["trials"]) == 4 for run in report["runs"])
    found = studies(storage_url, name)
    finished = [n for n, s in found.items() if s["status"] == "ok"]
    assert len(finished) == 3  # one finished study per replicate: nothing ran twice to the end


@pytest.mark.e2e
def test_a_finished_replicate_is_stored_before_its_process_ends(tmp_path: Path) -> None:
    """A node lost after finishing a replicate (preempted while running the next) must leave
    that replicate ok, not running: its outcome was stored only when the process's whole
    share ended, so a kill made it crashed and --resume ran it again."""
    url = f"sqlite:///{tmp_path / 'lost.db'}"
    name = unique_name(tmp_path)
    proc = popen_run(url, name, "--runs", "2", "--stale-after", "2")
    try:
        deadline = time.monotonic() + 120
        found: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                found = studies(url, name) if (tmp_path / "lost.db").exists() else {}
            except sqlalchemy.exc.OperationalError:  # this reader raced the check's first
                found = {}  # schema creation ("table ... already exists"): look again
            if any(s["status"] == "ok" for s in found.values()):
                break
            time.sleep(0.1)
        assert proc.poll() is None, f"the check ended before any replicate was stored: {found}"
        proc.send_signal(signal.SIGKILL)  # a lost node, running its second replicate
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    stored = studies(url, name)
    assert sorted(s["status"] for s in stored.values()) == ["ok", "running"], stored


@pytest.mark.e2e
def test_joining_a_check_with_other_settings_is_refused(storage_url: str, tmp_path: Path) -> None:
    name = unique_name(tmp_path)
    first = cli(
        "run",
        fixture("deterministic"),
        "--trials",
        "3",
        "--runs",
        "2",
        "--storage",
        storage_url,
        "--name",
        name,
    )
    assert first.code == 0, first.err
    second = inprocess_cli(  # refused before any worker starts: no interpreter needed
        "run",
        fixture("deterministic"),
        "--trials",
        "5",
        "--runs",
        "2",
        "--storage",
        storage_url,
        "--name",
        name,
    )
    assert second.code == 2
    assert "trials: 3 in the check, 5 now" in second.err or "trials: 3" in second.err
    assert len(second.err.strip().splitlines()) == 1


@pytest.mark.e2e
def test_hyperband_brackets_do_not_depend_on_the_stored_study_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hb.db'}"
    result = cli(
        "run",
        fixture("pruned"),
        "--trials",
        "12",
        "--runs",
        "2",
        "--pruner",
        "hyperband",
        "--storage",
        url,
        "--name",
        "hb",
        json_path=tmp_path / "r.json",
    )
    assert result.code == 0, result.out + result.err
    assert result.report["verdict"] == "reproducible"


@pytest.mark.e2e
def test_journal_storage(tmp_path: Path) -> None:
    url = f"journal:{tmp_path / 'checks.log'}"
    result = cli(
        "run",
        fixture("deterministic"),
        "--trials",
        "3",
        "--runs",
        "2",
        "--storage",
        url,
        "--name",
        "j",
        json_path=tmp_path / "r.json",
    )
    assert result.code == 0, result.out + result.err
    rebuilt = cli("report", "--storage", url, "--name", "j")
    assert rebuilt.code == 0 and "REPRODUCIBLE" in rebuilt.out


def test_storage_errors_are_one_line_and_hide_the_password(tmp_path: Path) -> None:
    url = "postgresql+psycopg://bob:hunter2@127.0.0.1:1/none"
    result = inprocess_cli("run", fixture("deterministic"), "--storage", url, "--name", "x")
    assert result.code == 2
    assert "hunter2" not in result.err + result.out
    assert len(result.err.strip().splitlines()) == 1 and "bob:***@" in result.err
    missing = inprocess_cli(
        "report", "--storage", f"sqlite:///{tmp_path / 'empty.db'}", "--name", "nope"
    )
    assert missing.code == 2 and "no check named 'nope'" in missing.err


@pytest.mark.e2e
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


@pytest.mark.e2e
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


@pytest.mark.e2e
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
    again = inprocess_cli(
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


@pytest.mark.e2e
def test_joining_with_another_tolerance_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tol.db'}"
    flags = ("--trials", "2", "--runs", "3", "--storage", url, "--name", "t")
    first = cli("run", fixture("deterministic"), *flags)  # finishes its 3; a joiner must match
    assert first.code == 0, first.err
    join = inprocess_cli(
        "run",
        fixture("deterministic"),
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
