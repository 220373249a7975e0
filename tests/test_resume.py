"""``run --resume-at K`` (issue 13 item 2): each replicate runs K trials in a storage, its
process exits, a fresh process resumes the study with ``load_study`` and the same sampler
set-up; the resumed replicates are compared with each other and with straight-through ones."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import cli, fixture, inprocess_cli
from test_cli_errors import assert_one_line_error

from repro_check.execution.protocol import StudyDone
from repro_check.execution.stream import StreamCheck
from repro_check.plan.settings import StudySettings
from repro_check.results.comparison import Divergence
from repro_check.results.records import trials_digest
from repro_check.results.resume import explain


def _tpe_config(tmp_path: Path, startup: int = 3) -> Path:
    """TPE with ``startup`` random start-up trials (the default, 10, makes slow tests)."""
    config = tmp_path / "tpe.toml"
    config.write_text(f"[sampler_kwargs]\nn_startup_trials = {startup}\n")
    return config


@pytest.mark.e2e
@pytest.mark.slow  # two processes per replicate, SQLite
def test_random_sampler_differs_from_trial_k(tmp_path: Path) -> None:
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    result = cli(
        "run", fixture("deterministic"), "--sampler", "random", "--runs", "2", "--trials", "5",
        "--resume-at", "2", "--markdown", str(md), json_path=out,
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    report = result.report
    assert report["verdict"] == "not reproducible"
    assert report["settings"]["resume_at"] == 2
    resume = report["resume"]
    assert resume["at"] == 2
    assert resume["straight_reproducible"] is True  # each half is deterministic on its own
    assert resume["resumed_reproducible"] is True
    assert resume["matches"] is False
    assert resume["first_difference"]["trial"] == 2
    assert resume["first_difference"]["field"] == "params"
    assert resume["first_difference"]["between"] == "straight-through and resumed"
    assert "random state" in resume["reason"] and "#3255" in resume["reason"]
    assert (
        "study.sampler = optuna.samplers.RandomSampler(seed=0 + len(study.trials))"
        in (resume["fix"])
    )
    # each resumed run holds the study's whole trial list 0..N-1, the first K from process one
    for run in resume["runs"]:
        assert run["status"] == "ok"
        assert [t["number"] for t in run["trials"]] == [0, 1, 2, 3, 4]
    assert [t["params"] for t in resume["runs"][0]["trials"][:2]] == [
        t["params"] for t in report["runs"][0]["trials"][:2]
    ]
    assert "resuming at trial 2 changes the study" in result.out
    assert "Resume: resumed at trial 2" in result.out
    assert "diagnose" not in result.out  # diagnose does not run resumes: no misleading hint
    assert "**Resume:**" in md.read_text()
    # the saved report reads back to the same verdict, recomputed from the resumed runs
    again = inprocess_cli("report", str(out), json_path=tmp_path / "again.json")
    assert again.code == 1, again.out + again.err
    assert again.report["resume"]["first_difference"]["trial"] == 2


@pytest.mark.e2e
def test_tpe_sampler_resumes_identically(tmp_path: Path) -> None:
    # measured with Optuna 5.0.0: TPE resumes identically when stopped right after its random
    # start-up trials (as the 10 of 10); resumed later, its random stream restarts too
    result = cli(
        "run", fixture("deterministic"), "--runs", "2", "--trials", "5", "--resume-at", "3",
        "--config", str(_tpe_config(tmp_path)), json_path=tmp_path / "t.json",
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    resume = result.report["resume"]
    assert resume["matches"] is True
    assert resume["first_difference"] is None
    assert resume["reason"] is None and resume["fix"] is None
    assert result.report["verdict"] == "reproducible"
    for run in resume["runs"]:
        assert [t["number"] for t in run["trials"]] == [0, 1, 2, 3, 4]


@pytest.mark.e2e
def test_tpe_resumed_after_its_start_up_trials_differs(tmp_path: Path) -> None:
    result = cli(
        "run", fixture("deterministic"), "--runs", "2", "--trials", "4", "--resume-at", "3",
        "--config", str(_tpe_config(tmp_path, startup=2)), json_path=tmp_path / "t.json",
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    resume = result.report["resume"]
    assert (resume["first_difference"]["trial"], resume["first_difference"]["field"]) == (
        3,
        "params",
    )
    assert "exactly after its 2 random start-up trials" in resume["reason"]


@pytest.mark.e2e
def test_objective_state_lost_on_resume_is_named(tmp_path: Path) -> None:
    # module_state's counter restarts in the resuming process: same params, other values
    result = cli(
        "run", fixture("module_state"), "--runs", "2", "--trials", "4", "--resume-at", "3",
        "--config", str(_tpe_config(tmp_path)), json_path=tmp_path / "m.json",
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    resume = result.report["resume"]
    assert resume["first_difference"]["trial"] == 3
    assert resume["first_difference"]["field"] == "values"
    assert "state the objective keeps" in resume["reason"]


@pytest.mark.e2e
def test_a_crash_in_the_resuming_process_is_incomplete(tmp_path: Path) -> None:
    result = cli(
        "run", fixture("crash_on_resume"), "--runs", "2", "--trials", "4", "--resume-at", "2",
        json_path=tmp_path / "c.json",
    )  # fmt: skip
    assert result.code == 3, result.out + result.err
    report = result.report
    assert report["verdict"] == "incomplete"
    assert [r["status"] for r in report["runs"]] == ["ok", "ok"]
    assert {r["status"] for r in report["resume"]["runs"]} == {"crashed"}
    assert any(
        n.startswith("resumed run 0 crashed: after the resume at trial 2")
        for n in (report["notes"])
    )


@pytest.mark.e2e
@pytest.mark.slow  # two processes per replicate, SQLite
def test_given_storage_keeps_the_resumed_studies(tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'mine.db'}"
    result = cli(
        "run", fixture("deterministic"), "--sampler", "random", "--runs", "2", "--trials", "4",
        "--resume-at", "1", "--storage", url, "--name", "nightly",
        json_path=tmp_path / "s.json",
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    assert result.report["resume"]["first_difference"]["trial"] == 1
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(url))
    assert len(names) == 2 and all(n.startswith("nightly/resume-at-1/") for n in names)
    assert all(len(optuna.load_study(study_name=n, storage=url).trials) == 4 for n in names)


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--resume-at", "0"], ["--resume-at", ">= 1"]),
        (["--trials", "5", "--resume-at", "5"], ["--resume-at", "below the trials (5)"]),
        (["--resume-at", "20"], ["below the trials (20)"]),
        (["--resume-at", "2", "--resume", "--name", "x"], ["cannot be combined with --resume"]),
    ],
)
def test_resume_at_outside_1_to_trials_is_bad_input(flags: list[str], fragments: list[str]) -> None:
    assert_one_line_error(inprocess_cli("run", fixture("deterministic"), *flags), *fragments)


def test_resume_at_from_a_config_file_is_checked_too(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("trials = 4\nresume_at = 4\n")
    result = inprocess_cli("run", fixture("deterministic"), "--config", str(config))
    assert_one_line_error(result, "resume_at", "below the trials (4)")


@pytest.mark.e2e
def test_saved_report_without_its_resume_block_is_refused(tmp_path: Path) -> None:
    good = cli(
        "run", fixture("deterministic"), "--runs", "2", "--trials", "3", "--resume-at", "1",
        "--sampler", "random", json_path=tmp_path / "g.json",
    )  # fmt: skip
    assert good.code == 1
    data: dict[str, Any] = dict(good.report)
    del data["resume"]  # would read back as "reproducible" without the resumed runs
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = inprocess_cli("report", str(bad))
    assert result.code == 2, result.out + result.err
    assert "resume" in result.err


# --- the protocol: a resumed process streams trials K..N-1 only --------------------------------


def _streamed(numbers: list[int], count: int) -> StreamCheck:
    protocol = StreamCheck("n", 1, 1)
    protocol.started = True
    for n in numbers:
        protocol._add_trial(0, {"number": n, "state": "COMPLETE", "params": {}, "values": [1.0]})
    digest = trials_digest((n, "COMPLETE") for n in numbers)
    protocol.summaries.append(
        StudyDone(study=0, count=count, emitted=len(numbers), digest=digest, stopped=False)
    )
    return protocol


def test_resumed_stream_must_start_at_its_first_trial() -> None:
    assert _streamed([3, 4], 2).study_problem(0, 2, first=3) is None
    problem = _streamed([3, 4], 2).study_problem(0, 2)  # not resumed: 0..1 expected
    assert problem is not None and "[3..4]" in problem
    shifted = _streamed([4, 5], 2).study_problem(0, 2, first=3)
    assert shifted is not None and "from trial 3" in shifted


# --- why the runs part -----------------------------------------------------------------------


def _at(trial: int, field: str) -> Divergence:
    return Divergence(trial, field, (0, 2), None, None, "")


def test_reasons_name_where_and_why() -> None:
    tpe = StudySettings(sampler="tpe")
    inside, fix = explain(_at(3, "params"), 3, tpe, 0, straight_ok=True)
    assert "exactly after its 10 random start-up trials" in inside and "n_startup_trials" in fix
    assert "len(study.trials)" in fix
    rand, fix = explain(_at(3, "params"), 3, StudySettings(sampler="random"), 7, True)
    assert "seed 7" in rand and "RandomSampler(seed=7 + len(study.trials))" in fix
    before, _ = explain(_at(1, "values"), 3, tpe, 0, straight_ok=True)
    assert "before trial 3" in before
    straight, _ = explain(_at(0, "values"), 3, tpe, 0, straight_ok=False)
    assert "without resuming" in straight


# --- a script: a preemptible job restarted (`run train.py --trials N --resume-at K`) ----------

SCRIPTS = Path(__file__).parent / "fixtures" / "scripts"


def _script_resume(tmp_path: Path, *args: str, kind: str = "random", held: int = 0) -> Any:
    """``run resume_storage.py --runs 2 ARGS -- KIND`` in a folder holding the user's own
    study.db (a study 'train' with ``held`` trials); asserts the user's file stays
    byte-identical."""
    import hashlib

    import optuna

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SCRIPTS / "resume_storage.py", work)
    db = work / "study.db"
    mine = optuna.create_study(study_name="train", storage=f"sqlite:///{db}")
    mine.optimize(lambda trial: trial.suggest_float("x", -5, 5), n_trials=held)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    out = tmp_path / "report.json"
    result = cli(
        "run", "resume_storage.py", "--runs", "2", *args, "--json", str(out), "--", kind,
        cwd=work, timeout=600,
    )  # fmt: skip
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # never written
    assert sorted(p.name for p in work.iterdir()) == ["resume_storage.py", "study.db"]
    return result, (json.loads(out.read_text()) if out.exists() else None)


def _sampler_line(text: str) -> int:
    lines = (SCRIPTS / "resume_storage.py").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


@pytest.mark.e2e
def test_script_with_random_sampler_resumed_differs_from_trial_k(tmp_path: Path) -> None:
    result, report = _script_resume(tmp_path, "--trials", "6", "--resume-at", "3")
    assert result.code == 1, result.out + result.err
    resume = report["resume"]
    assert resume["straight_reproducible"] is True and resume["resumed_reproducible"] is True
    assert resume["matches"] is False
    first = resume["first_difference"]
    assert (first["trial"], first["field"]) == (3, "params")
    assert first["between"] == "straight-through and resumed"
    assert "study 0 'train'" in first["detail"]
    at = f"resume_storage.py:{_sampler_line('= optuna.samplers.RandomSampler(seed=0)')}"
    assert f"the script's RandomSampler(seed=0) at {at}" in resume["reason"]
    assert "#3255" in resume["reason"]
    assert f"{at}: reseed" in resume["fix"]
    assert "optuna.samplers.RandomSampler(seed=0 + len(study.trials))" in resume["fix"]
    straight = report["runs"][0]["trials"]
    for run in resume["runs"]:
        # the resumed run is the restarted script's: its study, loaded from the storage the
        # first process left, holds every trial 0..N-1, the first K being the first process's
        assert run["status"] == "ok"
        assert run["studies"][0]["loaded"] is True
        assert [t["number"] for t in run["trials"]] == [0, 1, 2, 3, 4, 5]
        assert [t["params"] for t in run["trials"][:3]] == [t["params"] for t in straight[:3]]
        # the restarted RandomSampler replays its stream from the start
        assert [t["params"] for t in run["trials"][3:]] == [t["params"] for t in straight[:3]]
        assert any("SQLite storage study.db" in n for n in run["notes"])  # phase 1's note
    assert report["runs"][0]["studies"][0]["loaded"] is False
    assert "resuming at trial 3 changes the study" in result.out
    # read back, the resume block is recomputed study by study
    again = inprocess_cli("report", str(tmp_path / "report.json"))
    assert again.code == 1, again.out + again.err
    assert "the script's RandomSampler(seed=0)" in again.out


@pytest.mark.e2e
def test_script_with_tpe_resumed_right_after_its_start_up_trials_is_identical(
    tmp_path: Path,
) -> None:
    result, report = _script_resume(tmp_path, "--trials", "6", "--resume-at", "3", kind="tpe")
    assert result.code == 0, result.out + result.err
    resume = report["resume"]
    assert resume["matches"] is True and resume["first_difference"] is None
    for run in resume["runs"]:
        assert run["studies"][0]["loaded"] is True
        assert [t["number"] for t in run["trials"]] == [0, 1, 2, 3, 4, 5]
    assert report["verdict"] == "reproducible"


@pytest.mark.e2e
def test_script_resume_ends_at_the_cap_on_top_of_the_trials_the_users_file_held(
    tmp_path: Path,
) -> None:
    # the user's study already holds 2 trials: every replicate loads them and adds --trials 4;
    # the first process adds 1 (K), the restart the other 3, whatever it loaded. The study
    # kept in memory starts over in the restart, and each resumed run says so
    result, report = _script_resume(
        tmp_path, "--trials", "4", "--resume-at", "1", kind="tpe+memory", held=2
    )
    assert result.code == 0, result.out + result.err
    assert [len(s["trials"] or r["trials"]) for r in report["runs"] for s in r["studies"]] == [
        6,
        4,
        6,
        4,
    ]
    resume = report["resume"]
    assert resume["matches"] is True
    for run in resume["runs"]:
        assert [t["number"] for t in run["trials"]] == [0, 1, 2, 3, 4, 5]
        assert len(run["studies"][1]["trials"]) == 4
        restarted = [n for n in run["notes"] if "the restart started it over" in n]
        assert len(restarted) == 1 and restarted[0].startswith("study 1:")
    assert "(study 1: not resumed, the restart started over)" in " ".join(result.out.split())


@pytest.mark.e2e
def test_script_whose_restart_fails_is_incomplete(tmp_path: Path) -> None:
    result, report = _script_resume(
        tmp_path, "--trials", "4", "--resume-at", "2", kind="crash-on-resume"
    )
    assert result.code == 3, result.out + result.err
    assert report["verdict"] == "incomplete"
    assert [r["status"] for r in report["runs"]] == ["ok", "ok"]
    assert {r["status"] for r in report["resume"]["runs"]} == {"error"}  # the script raised
    assert any(
        n.startswith("resumed run 0 error: after the resume at trial 2") and "cannot resume" in n
        for n in report["notes"]
    )


@pytest.mark.e2e
def test_script_keeping_its_study_in_memory_has_nothing_to_resume(tmp_path: Path) -> None:
    # was: refused outright (the first version ran the whole script in the first process and
    # reported "resumed = straight-through"); now the restart runs, finds no study with trials
    # to load, and says there was nothing to resume: never a pass
    script = SCRIPTS / "seeded42.py"
    result = cli("run", str(script), "--runs", "2", "--trials", "4", "--resume-at", "2",
                 cwd=tmp_path, timeout=600)  # fmt: skip
    assert_one_line_error(
        result, "seeded42.py keeps its studies in memory", "nothing to resume", "storage"
    )
    assert "straight-through" not in result.out + result.err


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--trials", "6", "--resume-at", "6"], ["--resume-at", "below the trials (6)"]),
        (["--trials", "6", "--resume-at", "9"], ["below the trials (6)"]),  # not the default 20
        (["--resume-at", "3"], ["--resume-at on a script needs --trials N"]),
        (
            ["--trials", "6", "--resume-at", "3", "--storage", "sqlite:///x.db", "--name", "n"],
            ["does not apply"],
        ),
    ],
)
def test_script_resume_at_needs_k_below_its_trials_cap(
    tmp_path: Path, flags: list[str], fragments: list[str]
) -> None:
    script = str(SCRIPTS / "resume_storage.py")
    assert_one_line_error(inprocess_cli("run", script, *flags, cwd=tmp_path), *fragments)
    assert not (tmp_path / "study.db").exists()  # refused before anything ran


def _script_run(index: int, xs: list[float], *names: str) -> Any:
    from repro_check.results.records import RunRecord, SamplerInfo, StudyRecord
    from repro_check.results.trial_record import TrialRecord

    trials = tuple(TrialRecord(n, "COMPLETE", {"x": x}, (x,)) for n, x in enumerate(xs))
    sampler = SamplerInfo("RandomSampler", 3, "train.py:9")
    studies = tuple(StudyRecord(name, ("minimize",), sampler, trials) for name in names)
    return RunRecord(index, 0, "ok", trials, studies=studies)


def test_script_resume_reasons_other_studies_and_a_difference_before_k() -> None:
    from repro_check.plan.settings import Tolerance
    from repro_check.results.resume import compare_resumed

    tol, study = Tolerance(0.0, 0.0), StudySettings()
    straight = [_script_run(i, [0.1, 0.2, 0.3], "train") for i in range(2)]
    other = [_script_run(i, [0.1, 0.2, 0.3], "train", "extra") for i in range(2)]
    check = compare_resumed(straight, other, 2, study, 0, tol)
    assert not check.matches and check.first_difference is not None
    assert check.first_difference.field == "studies"
    assert check.reason is not None and "studies are not the straight-through ones" in check.reason
    # one restart started over while the other resumed: never "resumed = straight-through"
    from repro_check.results.resume import RESTARTED

    over = dataclasses.replace(straight[1], notes=(f"study 0 'train': ..., {RESTARTED}",))
    check = compare_resumed(straight, [straight[0], over], 2, study, 0, tol)
    assert not check.matches and check.first_difference is not None
    assert "resumed run 1 loaded none of the trials" in check.first_difference.detail
    assert "(study 0 'train': not resumed, the restart started over)" in check.summary()
    early = [_script_run(i, [0.1, 0.25, 0.3], "train") for i in range(2)]
    check = compare_resumed(straight, early, 2, study, 0, tol)
    assert check.first_difference is not None and check.first_difference.trial == 1
    assert check.reason is not None and "before trial 2" in check.reason
    assert "--storage" not in (check.fix or "")  # a script's resume takes no --storage
    late = [_script_run(i, [0.1, 0.2, 0.9], "train") for i in range(2)]
    check = compare_resumed(straight, late, 2, study, 0, tol)
    assert check.first_difference is not None and check.first_difference.field == "params"
    assert check.reason is not None and "RandomSampler(seed=3) at train.py:9" in check.reason
    assert "train.py:9: reseed" in (check.fix or "")
    assert compare_resumed(straight, straight, 2, study, 0, tol).matches
