"""Shared checks started together on a new database (issue 8, item 5).

Several ``repro-check run --storage URL --name N`` processes started at the same instant race to
create the storage's schema; the losers used to exit 2 with ``table studies already exists``,
``UNIQUE constraint failed: alembic_version.version_num`` or PostgreSQL's ``duplicate key value
violates unique constraint "pg_type_typname_nsp_index"``. Each round below uses a storage that
does not exist yet, so the schema is really created by the racing processes.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import fixture, spawn_cli

from repro_check.storage import store as storage
from repro_check.storage.store import StorageError, open_storage, schema_race

PG_URL = os.environ.get("REPRO_CHECK_TEST_POSTGRES_URL")
ROUNDS = {2: 2, 4: 1}
"""Rounds per process count: one round loses the race often (4 in 5 with 2 SQLite processes;
with 4 processes, 3 can lose), so this makes a failure all but certain on code that does not
tolerate the race, and keeps each test under ~30 s on a busy 2-core machine."""


def _postgres_reachable() -> bool:
    if not PG_URL:
        return False
    try:
        with _admin() as conn:
            conn.execute("SELECT 1")
    except Exception:
        return False
    return True


def _admin() -> Any:
    """An autocommit connection to the test server's maintenance database."""
    import psycopg
    from sqlalchemy.engine import make_url

    assert PG_URL is not None
    url = make_url(PG_URL)
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname="postgres",
        autocommit=True,
    )


REQUIRED = bool(os.environ.get("REPRO_CHECK_REQUIRE_POSTGRES"))  # .ci/run sets it
needs_postgres = pytest.mark.skipif(
    not REQUIRED and not _postgres_reachable(),
    reason="no PostgreSQL at REPRO_CHECK_TEST_POSTGRES_URL "
    "(CI starts one: scripts/start-postgres.sh)",
)

_counter = itertools.count()


@pytest.fixture
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """``new_database()`` → the URL of a storage nobody has opened yet (a new SQLite file, or
    a database just created on the PostgreSQL test server, dropped afterwards)."""
    backend = request.param
    created: list[str] = []

    def make() -> str:
        n = next(_counter)
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'new-{n}.db'}"
        from sqlalchemy.engine import make_url

        assert PG_URL is not None
        name = f"race_{os.getpid()}_{time.time_ns()}_{n}"
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

    yield make
    if created:
        with _admin() as conn:
            for name in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


BACKENDS = ["sqlite", pytest.param("postgres", marks=needs_postgres)]


def _stored(url: str, name: str) -> dict[str, dict[str, Any]]:
    import optuna

    return {
        s.study_name: {"trials": s.n_trials, "status": s.user_attrs.get("repro_check_status")}
        for s in optuna.get_all_study_summaries(url)
        if s.study_name.startswith(name + "/")
    }


@pytest.mark.e2e
@pytest.mark.parametrize("new_database", BACKENDS, indirect=True)
@pytest.mark.parametrize("processes", [2, 4])
@pytest.mark.slow
def test_processes_started_together_on_a_new_database_all_finish(
    new_database: Any, processes: int
) -> None:
    for _ in range(ROUNDS[processes]):
        url = new_database()
        argv = [
            "run",
            fixture("deterministic"),
            "--trials",
            "2",
            "--runs",
            "2",  # processes beyond the 2 replicates find nothing to claim: they race the schema
            "--workers",
            "1",
            "--storage",
            url,
            "--name",
            "N",
        ]
        procs = [spawn_cli(*argv) for _ in range(processes)]  # as close to one instant as can be
        outs = [p.communicate(timeout=120) for p in procs]
        codes = [p.returncode for p in procs]
        # every process exits with the check's verdict: 0 (reproducible, or its share done)
        assert codes == [0] * processes, outs
        for out, err in outs:
            assert "already exists" not in err and "UNIQUE constraint" not in err, err
            assert "duplicate key" not in err and "s3cret" not in out + err
        # every replicate ran exactly once, to the end: no attempt-k retakes, none missing
        assert _stored(url, "N") == {f"N/run-{k}": {"trials": 2, "status": "ok"} for k in (0, 1)}
        verdicts = [out for out, _err in outs if "REPRODUCIBLE: 2 runs" in out]
        assert verdicts, "the last process to finish prints the whole check, reproducible"
        assert all("AWAITING" in out or "REPRODUCIBLE: 2 runs" in out for out, _ in outs), outs


class _Race(Exception):
    pass


def _integrity_error(text: str) -> Exception:
    import sqlalchemy.exc

    return sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version ...", {}, _Race(text))


def test_a_lost_schema_race_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def flaky(url: str) -> str:
        calls.append(url)
        if len(calls) < 3:
            raise _integrity_error("UNIQUE constraint failed: alembic_version.version_num")
        return "opened"

    monkeypatch.setattr(storage, "_open", flaky)
    monkeypatch.setattr(storage.time, "sleep", lambda _s: None)  # type: ignore[attr-defined]
    assert open_storage("sqlite:///x.db") == "opened"
    assert len(calls) == 3


def test_other_errors_are_not_retried_and_a_race_lost_every_time_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def refused(url: str) -> None:
        calls.append(url)
        raise _integrity_error("connection refused")

    monkeypatch.setattr(storage, "_open", refused)
    monkeypatch.setattr(storage.time, "sleep", lambda _s: None)  # type: ignore[attr-defined]
    with pytest.raises(StorageError):
        open_storage("postgresql+psycopg://u:hunter2@h/db")
    assert len(calls) == 1

    def always_racing(url: str) -> None:
        calls.append(url)
        raise _integrity_error('duplicate key value violates unique constraint "pg_type"\nDETAIL')

    calls.clear()
    monkeypatch.setattr(storage, "_open", always_racing)
    with pytest.raises(StorageError) as caught:
        open_storage("postgresql+psycopg://u:hunter2@h/db", attempts=4)
    assert len(calls) == 4
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and "hunter2" not in message


def test_schema_race_recognises_the_reported_errors_only() -> None:
    import optuna
    import sqlalchemy.exc

    for text in (
        "table studies already exists",
        "UNIQUE constraint failed: alembic_version.version_num",
        'duplicate key value violates unique constraint "pg_type_typname_nsp_index"',
        "database is locked",
    ):
        assert schema_race(sqlalchemy.exc.OperationalError("CREATE", {}, _Race(text))), text
    wrapped = optuna.exceptions.StorageInternalError("commit failed")
    wrapped.__cause__ = sqlalchemy.exc.OperationalError("x", {}, _Race("database is locked"))
    assert schema_race(wrapped)
    assert not schema_race(ValueError("table studies already exists"))  # not from the database
    assert not schema_race(sqlalchemy.exc.OperationalError("x", {}, _Race("connection refused")))


def _bare_claim(tmp_path: Path) -> tuple[storage.CheckStore, int]:
    """A replicate study created as a claim creates it, before its attributes are written."""
    import optuna

    store = storage.CheckStore(f"sqlite:///{tmp_path / 'claim.db'}", "N")
    name = storage.study_name("N", 0)
    study_id = store.storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], name)
    return store, study_id


def test_a_replicate_caught_between_its_claim_and_first_heartbeat_is_not_dead(
    tmp_path: Path,
) -> None:
    """With 4 processes on 2 replicates, a process that claimed nothing read the listing
    between another's create_new_study and its heartbeat, and reported that replicate as
    crashed (exit 3)."""
    import threading

    store, study_id = _bare_claim(tmp_path)

    def finish_claim() -> None:
        time.sleep(0.3)
        store.storage.set_study_user_attr(study_id, storage.STATUS, storage.RUNNING)
        store.storage.set_study_user_attr(study_id, storage.HEARTBEAT, time.time())

    writer = threading.Thread(target=finish_claim)
    writer.start()
    attempt = store.attempts()[0][0]
    writer.join()
    assert attempt.alive(120.0, time.time())
    assert store.load_runs(120.0).running == [0]


def test_a_claimer_that_died_before_its_first_heartbeat_counts_as_dead(tmp_path: Path) -> None:
    store, _ = _bare_claim(tmp_path)
    started = time.monotonic()
    attempt = store.attempts()[0][0]
    assert storage.CLAIM_GRACE <= time.monotonic() - started < storage.CLAIM_GRACE + 5
    assert not attempt.alive(120.0, time.time())
    again = time.monotonic()
    assert not store.attempts()[0][0].alive(120.0, time.time())
    assert time.monotonic() - again < storage.CLAIM_GRACE  # waited for once, not per listing
