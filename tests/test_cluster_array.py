"""The cluster recipe (issue 13, item 3), emulated locally: a Slurm job array (or a Kubernetes
Job with parallelism) is N copies of one shared-check command against one PostgreSQL storage,
then ``repro-check report`` gathers them. Here 4 concurrent processes run that command, one is
killed with SIGKILL mid-replicate (a lost node), the array task is re-run with ``--resume`` (a
requeue), and the gathered report must hold every replicate exactly once, all finished.

Skips without PostgreSQL (REPRO_CHECK_TEST_POSTGRES_URL) unless REPRO_CHECK_REQUIRE_POSTGRES=1,
as the other PostgreSQL tests do (CI starts a server: scripts/start-postgres.sh).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import cli, fixture, spawn_cli
from postgres import PG_URL, needs_postgres, require_postgres

from repro_check.storage.store import INFO, STATUS

TASKS = 4
RUNS = 8
TRIALS = 4  # fixtures/slow.py sleeps 0.5 s a trial: a replicate lasts ~2 s
STALE_AFTER = 4.0
"""Short, so the test is; not shorter: a live task's heartbeat (every STALE_AFTER / 4 s) must
never look stale on a loaded 2-core CI machine (at 2 s a live replicate was once seen dead)."""


require_postgres()

pytestmark = [needs_postgres(), pytest.mark.slow, pytest.mark.e2e]


@functools.cache
def _storage() -> Any:
    """One storage for the test's many polls (each ``get_all_study_summaries(url)`` opened a new
    one and read every study's best trial: seconds per poll on a database that other tests
    filled, so the tasks had moved on before a poll came back)."""
    import optuna

    assert PG_URL is not None
    return optuna.storages.RDBStorage(PG_URL)


def _attempts(name: str) -> list[Any]:
    """Every stored attempt of the check (FrozenStudy: name, id, user_attrs)."""
    return [s for s in _storage().get_all_studies() if s.study_name.startswith(name + "/")]


def _studies(name: str) -> dict[str, str | None]:
    """Every stored attempt of the check: study name -> repro_check_status."""
    return {s.study_name: s.user_attrs.get(STATUS) for s in _attempts(name)}


def _array_task(name: str, json_path: Path, *extra: str) -> list[str]:
    """The one command every array task runs (docs/how-to/cluster.md's recipe), with its JSON."""
    assert PG_URL is not None
    return [
        "run",
        fixture("slow"),
        "--runs",
        str(RUNS),
        "--trials",
        str(TRIALS),
        "--workers",
        "1",
        "--stale-after",
        str(STALE_AFTER),
        "--storage",
        PG_URL,
        "--name",
        name,
        "--json",
        str(json_path),
        *extra,
    ]


def _running_by_task(name: str) -> dict[int, int]:
    """The tasks running a replicate now: the task's pid (the claim's owner) -> the study id of
    that attempt (ids grow with each claim, so the highest is the newest)."""
    running: dict[int, int] = {}
    for s in _attempts(name):
        if s.user_attrs.get(STATUS) == "running":
            owner = s.user_attrs.get(INFO) or {}
            running[int(owner.get("pid", -1))] = s._study_id
    return running


def _newest_claimant(name: str, procs: list[Any]) -> int:
    """Wait until every task runs a replicate, then the index of the one whose replicate began
    last: killed now, it is surely mid-replicate. (The first to claim can be finishing its
    replicate by the time the last task starts, and a task killed between two replicates
    holds none: nothing would be left dead.)"""
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        running = _running_by_task(name)
        if all(p.pid in running for p in procs):
            return max(range(len(procs)), key=lambda k: running[procs[k].pid])
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.1)
    outs = [p.communicate(timeout=60) if p.poll() is not None else ("", "") for p in procs]
    pytest.fail(f"the {TASKS} tasks never all ran a replicate at once: {_studies(name)} {outs}")


def test_an_array_of_4_tasks_with_one_killed_and_requeued_gathers_every_replicate_once(
    tmp_path: Path,
) -> None:
    name = f"array-{os.getpid()}-{time.time_ns()}"
    reports = [tmp_path / f"task-{k}.json" for k in range(TASKS)]
    procs = [spawn_cli(*_array_task(name, reports[k])) for k in range(TASKS)]
    k = _newest_claimant(name, procs)
    victim, survivors = procs[k], procs[:k] + procs[k + 1 :]
    victim.send_signal(signal.SIGKILL)  # a lost node: no clean-up, its heartbeat just stops
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    outs = [p.communicate(timeout=240) for p in survivors]
    for proc, (out, err), path in zip(survivors, outs, reports[:k] + reports[k + 1 :], strict=True):
        # each survivor did its share: awaiting the dead replicate (0), or, the last one past
        # --stale-after, reporting it crashed (3); never a wrong verdict, never a traceback
        assert proc.returncode in (0, 3), out + err
        assert "Traceback" not in err and "s3cret" not in out + err
        report = json.loads(path.read_text())
        assert report["verdict"] in ("awaiting replicates", "incomplete"), report["verdict"]
        not_ok = [r for r in report["runs"] if r["status"] != "ok"]
        assert len(not_ok) <= 1 and all(r["status"] == "crashed" for r in not_ok), not_ok
    stored = _studies(name)
    assert sum(status == "ok" for status in stored.values()) == RUNS - 1, stored
    assert sum(status == "running" for status in stored.values()) == 1, stored  # the dead one

    time.sleep(STALE_AFTER + 0.5)  # past --stale-after: the dead replicate's heartbeat is stale
    requeued = subprocess.run(
        [*_python_cli(), *_array_task(name, tmp_path / "requeued.json", "--resume")],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )
    assert requeued.returncode == 0, requeued.stdout + requeued.stderr
    assert "REPRODUCIBLE" in requeued.stdout

    gathered = cli(
        "report", "--storage", str(PG_URL), "--name", name, json_path=tmp_path / "all.json"
    )
    assert gathered.code == 0, gathered.out + gathered.err
    report = gathered.report
    assert report["verdict"] == "reproducible"
    assert sorted(r["index"] for r in report["runs"]) == list(range(RUNS))
    assert all(r["status"] == "ok" and len(r["trials"]) == TRIALS for r in report["runs"])
    stored = _studies(name)
    # every replicate finished exactly once: 8 ok studies, the dead attempt abandoned and
    # retaken as run-<k>/attempt-1
    assert sum(status == "ok" for status in stored.values()) == RUNS, stored
    assert [n for n, s in stored.items() if s == "abandoned"] != [], stored
    retaken = [n for n in stored if "/attempt-" in n]
    assert len(retaken) == 1 and stored[retaken[0]] == "ok", stored


def _python_cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "repro_check"]
