"""Shared (storage-backed) checks of scripts (issue 11, item 6).

``repro-check run train.py --storage URL --name NAME`` used to ignore the storage in the worker:
the replicate studies stayed empty and the check read back from the storage lost the script's
studies (an "incomplete: no trial completed" report, whatever the script did). Every study a
replicate's script makes now reaches the storage, so the last process and ``report --storage``
give the script report a local run gives.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli, spawn_cli
from postgres import require_postgres, storage_for, storage_params

from repro_check.storage.store import (
    HEARTBEAT,
    RESULT,
    STATUS,
    STUDY,
    CheckStore,
    absolute_url,
    script_study_name,
)

SCRIPTS = FIXTURES / "scripts"
TWO_STUDIES = str(SCRIPTS / "two_studies.py")
REPRODUCIBLE = str(SCRIPTS / "callable_class.py")

require_postgres()


@pytest.fixture(params=storage_params())
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return storage_for(request.param, tmp_path)


def _name(tmp_path: Path) -> str:
    return f"scripts-{tmp_path.name}-{time.time_ns()}"


def _studies(run: dict[str, Any]) -> list[tuple[str, list[str], str, int]]:
    return [
        (s["name"], s["directions"], s["sampler"]["class"], len(s["trials"] or run["trials"]))
        for s in run["studies"]
    ]


def _stored(url: str, name: str) -> dict[str, int]:
    import optuna

    return {
        s.study_name: s.n_trials
        for s in optuna.get_all_study_summaries(url)
        if s.study_name.startswith(name + "/")
    }


def _without_timing(run: dict[str, Any]) -> dict[str, Any]:
    trials = [{k: v for k, v in t.items() if k != "duration_s"} for t in run["trials"]]
    return {**{k: v for k, v in run.items() if k != "wall_s"}, "trials": trials}


@pytest.mark.e2e
@pytest.mark.slow
def test_two_processes_share_a_script_check_and_the_storage_keeps_every_study(
    tmp_path: Path, storage_url: str
) -> None:
    name = _name(tmp_path)
    flags = ("--runs", "3", "--workers", "1", "--storage", storage_url, "--name", name)
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    procs = [spawn_cli("run", TWO_STUDIES, *flags, "--json", str(p)) for p in paths]
    outs = [p.communicate(timeout=180) for p in procs]
    for (out, err), proc in zip(outs, procs, strict=True):
        assert "Traceback" not in out + err, out + err
        assert proc.returncode in (0, 1), out + err  # 0: its share done, the check awaited
    reports = [json.loads(p.read_text()) for p in paths]
    final = [r for r in reports if r["awaiting"] == 0]
    assert final, reports  # the last process to finish printed the whole check
    last = final[-1]
    assert last["mode"] == "script" and last["verdict"] == "not reproducible"
    assert last["exit_code"] == 1
    assert [run["index"] for run in last["runs"]] == [0, 1, 2]
    assert all(run["status"] == "ok" for run in last["runs"])
    for run in last["runs"]:  # every study, in order, with its info
        assert _studies(run) == [
            ("seeded", ["minimize"], "RandomSampler", 4),
            ("unseeded", ["minimize"], "RandomSampler", 4),
        ]
        assert run["studies"][0]["sampler"]["seed"] == 1
        assert run["studies"][1]["sampler"]["seed"] is None
    # study 0 ('seeded') agrees, study 1 ('unseeded') parts: it is what makes the verdict
    firsts = [[t["params"] for t in run["trials"]] for run in last["runs"]]
    seconds = [[t["params"] for t in run["studies"][1]["trials"]] for run in last["runs"]]
    assert firsts[0] == firsts[1] == firsts[2] and seconds[0] != seconds[1]
    # each replicate's studies are Optuna studies of their own in the storage
    stored = _stored(storage_url, name)
    for k in range(3):
        assert stored[f"{name}/run-{k}/study-0"] == 4
        assert stored[f"{name}/run-{k}/study-1"] == 4
    # the check from the storage alone: the same verdict, studies and trials
    rebuilt = cli("report", "--storage", storage_url, "--name", name, json_path=tmp_path / "r.json")
    assert rebuilt.code == 1, rebuilt.out + rebuilt.err
    assert rebuilt.report is not None
    assert rebuilt.report["mode"] == "script"
    assert rebuilt.report["verdict"] == last["verdict"]
    assert [r["studies"] for r in rebuilt.report["runs"]] == [r["studies"] for r in last["runs"]]
    assert [r["trials"] for r in rebuilt.report["runs"]] == [r["trials"] for r in last["runs"]]
    assert "'unseeded' (study 1)" in rebuilt.out


@pytest.mark.e2e
def test_a_reproducible_shared_script_check_is_the_local_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    shared = cli(
        "run",
        REPRODUCIBLE,
        *("--runs", "2", "--storage", url, "--name", "ok"),
        json_path=tmp_path / "s.json",
    )
    assert shared.code == 0, shared.out + shared.err
    local = cli("run", REPRODUCIBLE, "--runs", "2", json_path=tmp_path / "l.json")
    assert local.code == 0, local.out + local.err
    assert shared.report is not None and local.report is not None
    assert shared.report["mode"] == local.report["mode"] == "script"
    assert shared.report["verdict"] == "reproducible"
    assert [_without_timing(r) for r in shared.report["runs"]] == [
        _without_timing(r) for r in local.report["runs"]
    ]
    assert _studies(shared.report["runs"][0]) == [("faq", ["minimize"], "RandomSampler", 6)]
    rebuilt = cli("report", "--storage", url, "--name", "ok", json_path=tmp_path / "r.json")
    assert rebuilt.code == 0, rebuilt.out + rebuilt.err
    assert rebuilt.report is not None and rebuilt.report["verdict"] == "reproducible"
    assert rebuilt.report["runs"] == shared.report["runs"]


@pytest.mark.e2e
def test_a_scripts_own_directions_are_kept_in_the_storage(tmp_path: Path) -> None:
    script = tmp_path / "maximize.py"
    script.write_text(
        "import optuna\n"
        "study = optuna.create_study(study_name='up', direction='maximize',\n"
        "                            sampler=optuna.samplers.RandomSampler(seed=2))\n"
        "study.optimize(lambda t: -(t.suggest_float('x', -1, 1) ** 2), n_trials=3)\n"
    )
    url = f"sqlite:///{tmp_path / 'c.db'}"
    result = cli("run", str(script), "--runs", "2", "--storage", url, "--name", "up", cwd=tmp_path)
    assert result.code == 0, result.out + result.err
    rebuilt = cli("report", "--storage", url, "--name", "up", json_path=tmp_path / "r.json")
    assert rebuilt.code == 0 and rebuilt.report is not None, rebuilt.out + rebuilt.err
    for run in rebuilt.report["runs"]:
        assert run["directions"] == ["maximize"]
        assert run["studies"][0]["directions"] == ["maximize"]
        assert run["best_value"] == max(t["values"][0] for t in run["trials"])
    import optuna

    copy = optuna.load_study(study_name="up/run-0/study-0", storage=url)
    assert copy.direction == optuna.study.StudyDirection.MAXIMIZE and len(copy.trials) == 3
    assert copy.user_attrs[STUDY]["info"]["name"] == "up"


@pytest.mark.e2e
def test_the_checks_own_storage_file_is_not_the_script_changing_its_folder(
    tmp_path: Path,
) -> None:
    result = cli(
        "run",
        REPRODUCIBLE,
        *("--runs", "2", "--workers", "2", "--storage", "sqlite:///here.db", "--name", "f"),
        cwd=tmp_path,
        json_path=tmp_path / "r.json",
    )
    assert result.code == 0, result.out + result.err
    assert (tmp_path / "here.db").exists()
    assert result.report is not None
    assert not any("working folder" in note for note in result.report["notes"])


@pytest.mark.e2e
def test_a_script_that_fails_after_its_study_is_an_error_with_its_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    result = cli(
        "run",
        str(SCRIPTS / "raises.py"),
        *("--runs", "2", "--storage", url, "--name", "e"),
        json_path=tmp_path / "r.json",
    )
    assert result.code == 3, result.out + result.err
    assert result.report is not None
    for run in result.report["runs"]:
        assert run["status"] == "error"
        assert "the evaluation step broke" in run["error"]
        assert len(run["studies"]) == 1 and len(run["trials"]) == 2
    assert _stored(url, "e")["e/run-0/study-0"] == 2


@pytest.mark.e2e
def test_a_study_the_worker_cannot_store_makes_its_run_an_error(tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'c.db'}"
    optuna.create_study(study_name=script_study_name("w/run-0", 0), storage=url)  # in the way
    result = cli(
        "run",
        REPRODUCIBLE,
        *("--runs", "2", "--storage", url, "--name", "w"),
        json_path=tmp_path / "r.json",
    )
    assert result.code == 3, result.out + result.err
    assert result.report is not None
    runs = {run["index"]: run for run in result.report["runs"]}
    assert runs[0]["status"] == "error"
    assert "cannot store study 0 in the check's storage" in runs[0]["error"]
    assert runs[1]["status"] == "ok"
    assert "Traceback" not in result.out + result.err


def _finished_check(tmp_path: Path, name: str) -> tuple[str, CheckStore]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    result = cli("run", TWO_STUDIES, "--runs", "2", "--storage", url, "--name", name)
    assert result.code == 1, result.out + result.err
    return url, CheckStore(url, name)


def _rewrite(store: CheckStore, replicate: int, **attrs: Any) -> None:
    study_id = store.attempts()[replicate][-1].study_id
    for key, value in attrs.items():
        store._set_id(study_id, key, value)


@pytest.mark.e2e
def test_a_replicate_that_died_after_storing_its_studies_shows_crashed_with_them(
    tmp_path: Path,
) -> None:
    url, store = _finished_check(tmp_path, "dead")
    # replicate 1's process died after its worker stored the studies, before it finished
    _rewrite(store, 1, **{STATUS: "running", HEARTBEAT: time.time() - 600, RESULT: {}})
    rebuilt = cli("report", "--storage", url, "--name", "dead", json_path=tmp_path / "r.json")
    assert rebuilt.code == 3, rebuilt.out + rebuilt.err
    assert rebuilt.report is not None and rebuilt.report["mode"] == "script"
    runs = {run["index"]: run for run in rebuilt.report["runs"]}
    assert runs[0]["status"] == "ok"
    assert runs[1]["status"] == "crashed" and "no heartbeat" in runs[1]["error"]
    assert [s["name"] for s in runs[1]["studies"]] == ["seeded", "unseeded"]
    # what the storage kept of it: study 0 as replicate 0 has it (the seeded study agrees)
    assert _without_timing(runs[1])["trials"] == _without_timing(runs[0])["trials"]
    assert len(runs[1]["studies"][1]["trials"]) == 4


@pytest.mark.e2e
def test_a_finished_replicate_whose_studies_are_gone_never_counts_as_compared(
    tmp_path: Path,
) -> None:
    url, store = _finished_check(tmp_path, "gone")
    import optuna

    _rewrite(store, 1, **{RESULT: {}})  # still "ok", but what it recorded is lost
    for i in range(2):
        optuna.delete_study(study_name=script_study_name("gone/run-1", i), storage=url)
    rebuilt = cli("report", "--storage", url, "--name", "gone", json_path=tmp_path / "r.json")
    assert rebuilt.code == 3, rebuilt.out + rebuilt.err
    assert rebuilt.report is not None
    run = rebuilt.report["runs"][1]
    assert run["status"] == "crashed"
    assert "studies are missing from the storage" in run["error"]


def test_absolute_url_pins_relative_files_to_the_folder_the_check_started_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_url("sqlite:///x.db") == f"sqlite:///{tmp_path / 'x.db'}"
    assert absolute_url("sqlite:///x.db?timeout=5") == f"sqlite:///{tmp_path / 'x.db'}?timeout=5"
    assert absolute_url("journal:j.log") == f"journal:{tmp_path / 'j.log'}"
    assert absolute_url("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert absolute_url("sqlite:///:memory:") == "sqlite:///:memory:"
    url = "postgresql+psycopg://u:pw@db/checks"
    assert absolute_url(url) == url
