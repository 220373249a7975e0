"""The test PostgreSQL server, for the tests that use one: imported only by them, since asking
whether it is reachable costs ~1.5 s (optuna and SQLAlchemy)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest

PG_URL = os.environ.get("REPRO_CHECK_TEST_POSTGRES_URL")
"""The test server (``scripts/start-postgres.sh`` exports it; CI starts one)."""
REQUIRE_POSTGRES = bool(os.environ.get("REPRO_CHECK_REQUIRE_POSTGRES"))  # .ci/run sets it
"""Set: a PostgreSQL test never skips (an unreachable server fails it instead)."""


@functools.cache
def postgres_reachable() -> bool:
    """Optuna can open the test server (asked once per test process). Through the product's
    ``open_storage``: xdist workers asking at once race to create the schema on a new
    database, and that retries the race instead of calling the server unreachable."""
    if not PG_URL:
        return False
    try:
        from repro_check.storage.store import open_storage

        open_storage(PG_URL).get_all_studies()
    except Exception:
        return False
    return True


def require_postgres() -> None:
    """Fail at once, not test by test, when PostgreSQL is required but cannot be reached."""
    if REQUIRE_POSTGRES and not postgres_reachable():
        raise RuntimeError("REPRO_CHECK_REQUIRE_POSTGRES is set but no PostgreSQL is reachable")


def needs_postgres() -> pytest.MarkDecorator:
    """Skip without a reachable test server, unless PostgreSQL is required (CI)."""
    return pytest.mark.skipif(
        not REQUIRE_POSTGRES and not postgres_reachable(),
        reason="no PostgreSQL at REPRO_CHECK_TEST_POSTGRES_URL "
        "(CI starts one: scripts/start-postgres.sh)",
    )


def storage_params() -> list[Any]:
    """``storage_url`` fixture params: SQLite, and PostgreSQL where reachable or required."""
    return ["sqlite", pytest.param("postgres", marks=needs_postgres())]


def storage_for(param: str, tmp_path: Path) -> str:
    """The URL of one ``storage_params`` entry: a fresh SQLite file, or the test server."""
    if param == "sqlite":
        return f"sqlite:///{tmp_path / 'checks.db'}"
    assert PG_URL is not None
    return PG_URL
