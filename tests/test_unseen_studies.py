"""Script mode: every study the script's process holds is seen (issue item 3). Studies that
never pass through ``Study.__init__`` (a ``copy.deepcopy``, a study saved and loaded with
``pickle``/``joblib``, one handed to a ``multiprocessing.Pool`` worker) were invisible, and
an unseeded one run there passed as REPRODUCIBLE; a SQLite file named by another SQLAlchemy URL
form (``sqlite+pysqlite:///``, a ``file:`` URI) was taken for a server and replaced by an empty
storage. The fixtures live in fixtures/scripts/unseen/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]
import pytest
from conftest import FIXTURES, cli, trial_count
from conftest import report_studies as studies

UNSEEN = FIXTURES / "scripts" / "unseen"


def check(name: str, tmp_path: Path, *script_args: str) -> tuple[Any, dict[str, Any]]:
    """``repro-check run unseen/NAME.py --runs 2 --workers 1 --json OUT -- ARGS`` in
    ``tmp_path``: the result and its report."""
    out = tmp_path / f"{name}.json"
    args = ["--", *script_args] if script_args else []
    result = cli(
        "run", str(UNSEEN / f"{name}.py"), "--runs", "2", "--workers", "1", "--json", str(out),
        *args, cwd=tmp_path,
    )  # fmt: skip
    assert out.exists(), (result.code, result.out, result.err)
    return result, json.loads(out.read_text())


@pytest.mark.e2e
def test_a_deep_copy_of_a_study_is_recorded_and_compared(tmp_path: Path) -> None:
    # was: the copy never passed through Study.__init__, so its unseeded trials were never
    # compared: only the seeded warmup and the empty original were, "reproducible"
    result, report = check("deepcopy_study", tmp_path)
    assert result.code == 1, result.out
    assert [s["name"] for s in studies(report)] == ["warmup", "base", "base"]
    assert "'base' (study 2)" in result.out
    assert trial_count(report, 0, 2) == 4


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["joblib", "pickle"])
def test_a_study_saved_and_loaded_back_is_recorded_and_compared(how: str, tmp_path: Path) -> None:
    # was: joblib.load/pickle.load rebuild the study without Study.__init__: unseen, "reproducible"
    result, report = check("pickled_study", tmp_path, how)
    assert result.code == 1, result.out
    assert [s["name"] for s in studies(report)] == ["warmup", "kept", "kept"]
    assert "'kept' (study 2)" in result.out


@pytest.mark.e2e
def test_a_copy_no_study_hook_rebuilt_is_recorded_when_it_asks_for_trials(tmp_path: Path) -> None:
    # a subclass restoring itself without Study.__setstate__: the ask hook records it
    result, report = check("own_setstate", tmp_path)
    assert result.code == 1, result.out
    assert [s["name"] for s in studies(report)] == ["warmup", "own", "own"]
    assert studies(report)[2]["sampler"]["class"] == "RandomSampler"  # as the script built it


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("deepcopy_study", ("0",)),
        ("pickled_study", ("joblib", "0")),
        ("pickled_study", ("pickle", "0")),
    ],
)
def test_a_seeded_copy_stays_reproducible_and_keeps_its_samplers_seed(
    name: str, args: tuple[str, ...], tmp_path: Path
) -> None:
    # no false fail: the copy carries the seeded sampler's state, and is shown as built
    result, report = check(name, tmp_path, *args)
    assert result.code == 0, result.out
    copy = studies(report)[2]
    assert (copy["sampler"]["class"], copy["sampler"]["seed"]) == ("RandomSampler", 0)
    assert trial_count(report, 0, 2) == trial_count(report, 1, 2) > 0
    assert "without seed" not in result.out


@pytest.mark.e2e
def test_a_study_pickled_before_the_check_is_recorded_with_its_sampler_unknown(
    tmp_path: Path,
) -> None:
    # the unseeded sampler was pickled before its first draw: every load samples afresh
    import optuna

    study = optuna.create_study(study_name="kept", sampler=optuna.samplers.RandomSampler())
    joblib.dump(study, tmp_path / "kept.pkl")
    result, report = check("pickled_study", tmp_path, "existing")
    assert result.code == 1, result.out
    loaded = studies(report)[2]
    assert loaded["sampler"]["class"] == "RandomSampler (unpickled)", loaded
    lines = (UNSEEN / "pickled_study.py").read_text().splitlines()
    line = lines.index('    loaded = joblib.load("kept.pkl")') + 1
    at = f"pickled_study.py:{line}"
    assert loaded["sampler"]["at"].endswith(at), loaded
    assert f"{at} builds" not in result.out  # no fix: the check cannot tell how it was built


@pytest.mark.e2e
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_study_a_pool_worker_optimizes_makes_the_run_crashed(method: str, tmp_path: Path) -> None:
    # was: the worker unpickled the study (no Study.__init__, in another process) and ran its
    # trials there; the script's own study stayed empty in every run: "reproducible"
    result, report = check("pool_study", tmp_path, method)
    assert result.code == 3, result.out
    errors = [run["error"] or "" for run in report["runs"]]
    assert all("asked for trials of study 'pooled'" in e for e in errors), errors
    assert all("pool_study.py:13" in e for e in errors), errors


def _warm_db(path: Path) -> bytes:
    import optuna

    storage = f"sqlite:///{path}"
    study = optuna.create_study(
        study_name="warm", storage=storage, sampler=optuna.samplers.RandomSampler(seed=1)
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=8)
    return path.read_bytes()


@pytest.mark.e2e
@pytest.mark.parametrize(
    "url",
    [
        "sqlite+pysqlite:///warm.db",
        "sqlite:///file:warm.db?uri=true",
        "sqlite+pysqlite:///file:warm.db?mode=rw&uri=true",
    ],
)
def test_any_sqlite_url_form_is_a_file_copied_privately(url: str, tmp_path: Path) -> None:
    # was: anything but "sqlite:///" was "a server": the script's 8-trial study was replaced by
    # an empty private one (and a file: URI opened a new empty file)
    before = _warm_db(tmp_path / "warm.db")
    result, report = check("sqlite_url", tmp_path, url)
    assert result.code == 0, result.out
    assert [trial_count(report, run, 0) for run in (0, 1)] == [12, 12]
    assert studies(report)[0]["loaded"] is True
    assert "a server" not in result.out
    assert "SQLite storage warm.db: every run used a private copy" in result.out
    assert (tmp_path / "warm.db").read_bytes() == before


@pytest.mark.e2e
def test_storages_unpickled_with_a_study_are_private_copies_too(tmp_path: Path) -> None:
    # was: an RDB or journal storage unpickled with its study opened the user's own file (it
    # never passed through the hooked __init__): each replicate wrote it and resumed the last
    import optuna
    from optuna.storages.journal import JournalFileBackend

    db = _warm_db(tmp_path / "warm.db")
    joblib.dump(optuna.load_study(study_name="warm", storage=f"sqlite:///{tmp_path}/warm.db"),
                tmp_path / "sqlite.pkl")  # fmt: skip
    journal = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "warm.log")))
    study = optuna.create_study(study_name="logged", storage=journal)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    joblib.dump(study, tmp_path / "journal.pkl")
    log = (tmp_path / "warm.log").read_bytes()
    result, report = check("unpickled_storage", tmp_path)
    assert result.code == 0, result.out
    assert [trial_count(report, run, i) for run in (0, 1) for i in (0, 1)] == [10, 7, 10, 7]
    assert (tmp_path / "warm.db").read_bytes() == db
    assert (tmp_path / "warm.log").read_bytes() == log
    assert "journal storage" in result.out and "SQLite storage" in result.out


@pytest.mark.parametrize(
    ("url", "file"),
    [
        ("sqlite:///warm.db", "warm.db"),
        ("sqlite+pysqlite:///warm.db", "warm.db"),
        ("sqlite:///file:warm.db?uri=true", "warm.db"),
        ("sqlite:///file:///tmp/a%20b.db?mode=ro&uri=true", "/tmp/a b.db"),
        ("sqlite:///file:warm.db", "file:warm.db"),  # without uri=true, a plain name
        ("sqlite:////abs/x.db", "/abs/x.db"),
    ],
)
def test_sqlite_file_reads_the_url_as_sqlalchemy_does(url: str, file: str) -> None:
    from sqlalchemy.engine import make_url

    from repro_check.storage.store import sqlite_file

    found = sqlite_file(url)
    assert found is not None and found[0] == file
    moved = make_url(found[1]("/p q/c.db"))
    assert moved.get_backend_name() == "sqlite" and dict(moved.query) == dict(make_url(url).query)
    assert moved.database in ("/p q/c.db", "file:/p%20q/c.db")


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?cache=shared&uri=true"]
)
def test_sqlite_file_in_memory(url: str) -> None:
    from repro_check.storage.store import sqlite_file

    found = sqlite_file(url)
    assert found is not None and found[0] is None


@pytest.mark.parametrize("url", ["postgresql://u:p@h/db", "mysql+pymysql://u@h/d", "not a url"])
def test_sqlite_file_not_sqlite(url: str) -> None:
    from repro_check.storage.store import sqlite_file

    assert sqlite_file(url) is None


def test_absolute_url_makes_any_sqlite_file_url_absolute(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    from repro_check.storage.store import absolute_url

    assert absolute_url("sqlite+pysqlite:///rel.db").endswith(str(Path.cwd() / "rel.db"))
    uri = make_url(absolute_url("sqlite:///file:rel.db?uri=true"))
    assert uri.database == f"file:{Path.cwd() / 'rel.db'}" and uri.query["uri"] == "true"
    assert absolute_url("sqlite:///:memory:") == "sqlite:///:memory:"
