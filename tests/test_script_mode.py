"""Script mode: `repro-check run train.py` checks the user's own script, run whole in each
replicate as `python train.py` runs it, study by study."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli, inprocess_cli
from conftest import report_studies as studies

SCRIPTS = FIXTURES / "scripts"


def script(name: str) -> str:
    return str(SCRIPTS / name)


def run(*args: str, tmp_path: Path, cwd: Path | None = None) -> Any:
    """``repro-check run ARGS --json`` (the JSON flag before any ``--``)."""
    out = tmp_path / f"report-{len(list(tmp_path.glob('report-*.json')))}.json"
    argv = list(args)
    at = argv.index("--") if "--" in argv else len(argv)
    argv[at:at] = ["--json", str(out)]
    return cli("run", *argv, cwd=cwd)


def report_of(result: Any, tmp_path: Path) -> dict[str, Any]:
    latest = sorted(tmp_path.glob("report-*.json"))[-1]
    return json.loads(latest.read_text())  # type: ignore[no-any-return]


# --- the founding article's three scripts ---------------------------------------------------


@pytest.mark.e2e
def test_unseeded_sampler_is_not_reproducible_as_written(tmp_path: Path) -> None:
    result = run(script("unseeded_sampler.py"), "--runs", "2", tmp_path=tmp_path)
    assert result.code == 1, result.err
    report = report_of(result, tmp_path)
    assert report["mode"] == "script"
    assert report["settings"]["controls"] == {k: False for k in report["settings"]["controls"]}
    assert "NOT REPRODUCIBLE" in result.out
    sampler = studies(report)[0]["sampler"]
    assert sampler["class"] == "TPESampler" and sampler["seed"] is None
    assert sampler["at"].endswith("unseeded_sampler.py:12")
    assert "unseeded_sampler.py:12 builds TPESampler() without seed" in result.out


@pytest.mark.e2e
def test_controls_all_seeds_the_sampler_and_names_what_it_added(tmp_path: Path) -> None:
    result = run(
        script("unseeded_sampler.py"), "--runs", "2", "--controls", "all", tmp_path=tmp_path
    )
    assert result.code == 0, result.out + result.err
    report = report_of(result, tmp_path)
    assert studies(report)[0]["sampler"]["seeded_by_check"] is True
    assert "unseeded_sampler.py:12 builds TPESampler() without seed: seeded with 0" in " ".join(
        report["notes"]
    )


@pytest.mark.e2e
def test_default_sampler_is_seeded_under_controls_and_named(tmp_path: Path) -> None:
    as_written = run(script("default_sampler.py"), "--runs", "2", tmp_path=tmp_path)
    assert as_written.code == 1, as_written.err
    controlled = run(
        script("default_sampler.py"), "--runs", "2", "--controls", "all", tmp_path=tmp_path
    )
    assert controlled.code == 0, controlled.out + controlled.err
    report = report_of(controlled, tmp_path)
    study = studies(report)[0]
    assert study["directions"] == ["maximize"]  # the script's own direction, not ours
    assert study["sampler"]["at"] is None and study["sampler"]["seeded_by_check"] is True
    notes = " ".join(report["notes"])
    assert "default_sampler.py:5: create_study() without a sampler" in notes


@pytest.mark.e2e
def test_seeded_script_is_reproducible_as_written_with_its_own_seed_and_length(
    tmp_path: Path,
) -> None:
    result = run(script("seeded42.py"), "--runs", "2", tmp_path=tmp_path)
    assert result.code == 0, result.out + result.err
    report = report_of(result, tmp_path)
    study = studies(report)[0]
    assert study["name"] == "seeded" and study["sampler"]["seed"] == 42
    assert study["n_trials"] == 50 and not study["capped"]
    trials = report["runs"][0]["trials"]
    assert [t["number"] for t in trials] == list(range(50))
    # what the check saw is what `python seeded42.py` does
    direct = subprocess.run(
        [sys.executable, script("seeded42.py"), "--print"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(direct.stdout.strip().splitlines()[-1]) == [t["params"] for t in trials]


@pytest.mark.e2e
def test_trials_caps_every_optimize_call_and_says_so(tmp_path: Path) -> None:
    result = run(script("seeded42.py"), "--runs", "2", "--trials", "5", tmp_path=tmp_path)
    assert result.code == 0, result.out + result.err
    report = report_of(result, tmp_path)
    assert [len(r["trials"]) for r in report["runs"]] == [5, 5]
    assert studies(report)[0]["capped"] is True
    assert report["settings"]["cap"] == 5
    assert "--trials 5 capped study 'seeded' at 5 trials" in " ".join(report["notes"])


# --- objectives the old mode could not check -------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "trials"), [("callable_class.py", 6), ("partial_objective.py", 5)]
)
def test_objectives_built_in_main_are_checked(name: str, trials: int, tmp_path: Path) -> None:
    result = run(script(name), "--runs", "2", tmp_path=tmp_path)
    assert result.code == 0, result.out + result.err
    report = report_of(result, tmp_path)
    assert [len(r["trials"]) for r in report["runs"]] == [trials, trials]
    assert all(t["state"] == "COMPLETE" for t in report["runs"][0]["trials"])


@pytest.mark.e2e
def test_ask_tell_loop_with_added_and_enqueued_trials(tmp_path: Path) -> None:
    result = run(script("ask_tell.py"), "--runs", "2", tmp_path=tmp_path)
    assert result.code == 0, result.out + result.err
    trials = report_of(result, tmp_path)["runs"][0]["trials"]
    assert [t["number"] for t in trials] == list(range(41))  # 1 added + 40 asked
    # trial 0 was enqueued (run by the first ask), trial 1 added by hand
    assert trials[0]["params"] == {"x": 0.25} and trials[1]["params"] == {"x": 0.5}


@pytest.mark.e2e
def test_trials_caps_an_ask_tell_loop(tmp_path: Path) -> None:
    result = run(script("ask_tell.py"), "--runs", "2", "--trials", "3", tmp_path=tmp_path)
    assert result.code == 0, result.out + result.err
    report = report_of(result, tmp_path)
    assert [len(r["trials"]) for r in report["runs"]] == [4, 4]  # the added one + 3 asked
    assert "reached the cap in an ask/tell loop" in " ".join(report["notes"])


@pytest.mark.e2e
def test_two_studies_compared_study_by_study(tmp_path: Path) -> None:
    result = run(script("two_studies.py"), "--runs", "2", tmp_path=tmp_path)
    assert result.code == 1, result.err
    report = report_of(result, tmp_path)
    assert [s["name"] for s in studies(report)] == ["seeded", "unseeded"]
    assert studies(report)[0]["trials"] is None  # the run's own trials
    assert len(studies(report)[1]["trials"]) == 4
    assert "'unseeded' (study 1): runs part at trial 0 (params)" in result.out
    assert "Study 0 'seeded': RandomSampler(seed=1)" in result.out
    assert "the runs agree" in result.out


# --- isolation ---------------------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.e2e
def test_a_resumed_sqlite_study_is_private_to_each_replicate(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SCRIPTS / "resume_sqlite.py", work)
    seed = subprocess.run([sys.executable, "resume_sqlite.py"], cwd=work, check=False)
    assert seed.returncode == 0
    db = work / "user_study.db"
    before = _digest(db)
    result = run("resume_sqlite.py", "--runs", "3", "--workers", "2", tmp_path=tmp_path, cwd=work)
    assert result.code == 0, result.out + result.err
    assert _digest(db) == before  # the user's storage was never written
    report = report_of(result, tmp_path)
    # each replicate resumed the same 4 stored trials and added its own 4
    assert [len(r["trials"]) for r in report["runs"]] == [8, 8, 8]
    assert studies(report)[0]["loaded"] is True
    assert "every run used a private copy" in " ".join(report["notes"])


# --- how the script is run ---------------------------------------------------------------------


@pytest.mark.e2e
def test_arguments_after_double_dash_reach_the_script(tmp_path: Path) -> None:
    result = run(
        script("argv_trials.py"),
        "--runs",
        "2",
        "--",
        "--n-trials",
        "3",
        "--name",
        "cli",
        tmp_path=tmp_path,
    )
    assert result.code == 0, result.out + result.err
    report = report_of(result, tmp_path)
    assert report["settings"]["args"] == ["--n-trials", "3", "--name", "cli"]
    assert studies(report)[0]["name"] == "cli"
    assert [len(r["trials"]) for r in report["runs"]] == [3, 3]


@pytest.mark.e2e
def test_module_mode_runs_a_package_module_as_main(tmp_path: Path) -> None:
    result = run("--runs", "2", "-m", "pkg.train", "--", "--n", "3", tmp_path=tmp_path, cwd=SCRIPTS)
    assert result.code == 0, result.out + result.err
    report = report_of(result, tmp_path)
    assert report["target"] == "-m pkg.train"
    assert studies(report)[0]["name"] == "module"
    assert [len(r["trials"]) for r in report["runs"]] == [3, 3]


@pytest.mark.e2e
def test_a_file_defining_objective_is_run_as_a_script_with_a_note(tmp_path: Path) -> None:
    result = run(script("also_objective.py"), "--runs", "2", tmp_path=tmp_path)
    assert result.code == 0, result.out + result.err
    notes = " ".join(report_of(result, tmp_path)["notes"])
    assert "also_objective.py also defines `objective`" in notes
    assert f"{script('also_objective.py')}:objective" in notes


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_script_that_creates_no_study_is_bad_input(tmp_path: Path) -> None:
    result = cli("run", script("no_study.py"), "--runs", "2")
    assert result.code == 2, result.err
    assert result.err.strip() == "error: no_study.py ran but created no Optuna study"


@pytest.mark.e2e
def test_a_script_that_raises_is_a_crashed_run_naming_its_line(tmp_path: Path) -> None:
    result = run(script("raises.py"), "--runs", "2", tmp_path=tmp_path)
    assert result.code == 3, result.err
    error = report_of(result, tmp_path)["runs"][0]["error"]
    assert "RuntimeError: the evaluation step broke" in error
    assert "raises.py:7: raise RuntimeError" in error
    assert "Traceback" not in result.err


@pytest.mark.e2e
def test_sys_exit_0_after_the_studies_is_a_normal_end(tmp_path: Path) -> None:
    result = run(script("exits_after.py"), "--runs", "2", tmp_path=tmp_path)
    assert result.code == 0, result.out + result.err


@pytest.mark.e2e
def test_sys_exit_inside_the_study_is_a_crashed_run(tmp_path: Path) -> None:
    result = run(script("exits_during.py"), "--runs", "2", tmp_path=tmp_path)
    assert result.code == 3, result.out + result.err
    error = report_of(result, tmp_path)["runs"][0]["error"]
    assert "sys.exit(0)" in error and "before its study finished" in error


def test_study_flags_are_refused_for_a_script() -> None:
    result = inprocess_cli("run", script("seeded42.py"), "--sampler", "random")
    assert result.code == 2
    assert "--sampler does not apply to a script" in result.err
    assert result.err.count("\n") == 1


def test_script_arguments_need_a_script() -> None:
    result = inprocess_cli("run", f"{script('seeded42.py')}:objective", "--", "--lr", "1")
    assert result.code == 2
    assert "script arguments need a script target" in result.err


# --- false passes ------------------------------------------------------------------------------


@pytest.mark.e2e
def test_n_jobs_in_the_script_is_never_reproducible(tmp_path: Path) -> None:
    result = run(script("n_jobs.py"), "--runs", "2", tmp_path=tmp_path)
    assert result.code == 1, result.out + result.err
    report = report_of(result, tmp_path)
    assert report["reproducible"] is False
    notes = " ".join(report["notes"])
    assert "optimize(n_jobs=2)" in notes and "optimize(timeout=600)" in notes


@pytest.mark.e2e
def test_a_script_forging_the_stream_and_leaving_is_a_crash(tmp_path: Path) -> None:
    result = run(script("forges_stream.py"), "--runs", "2", tmp_path=tmp_path)
    assert result.code == 3, result.out + result.err
    assert all(r["status"] == "crashed" for r in report_of(result, tmp_path)["runs"])


# --- compare and diagnose on a script --------------------------------------------------------


@pytest.mark.e2e
def test_compare_on_a_script_exits_as_run_does(tmp_path: Path) -> None:
    """Issue item 4.1: the gate is exactly ``run``. An unseeded TPESampler is not reproducible
    as written (``run`` exits 1) though it is under every control; ``compare`` exited 0 because
    its fixed_seed condition turned every control on for a script."""
    out = tmp_path / "compare.json"
    ran = run(script("unseeded_sampler.py"), "--runs", "2", tmp_path=tmp_path)
    assert ran.code == 1, ran.out + ran.err
    result = cli("compare", script("unseeded_sampler.py"), "--runs", "2", "--json", str(out))
    assert result.code == ran.code, result.out + result.err
    conditions = json.loads(out.read_text())["conditions"]
    assert conditions["fixed_seed"]["reproducible"] is False
    assert (
        conditions["fixed_seed"]["settings"]["controls"]
        == report_of(ran, tmp_path)["settings"]["controls"]
    )
    # the seeds reach a script as written through no control: the sweep turns them all on
    assert all(conditions["seed_sweep"]["settings"]["controls"].values())
    assert conditions["uncontrolled"]["reproducible"] is False
    assert conditions["uncontrolled"]["mode"] == "script"
    assert "as written" in result.out and "fixed seed" in result.out


@pytest.mark.e2e
def test_diagnose_names_the_missing_sampler_seed_at_the_scripts_line(tmp_path: Path) -> None:
    out = tmp_path / "diagnose.json"
    result = cli("diagnose", script("unseeded_sampler.py"), "--json", str(out))
    assert result.code == 0, result.out + result.err
    diagnosis = json.loads(out.read_text())
    assert [c["id"] for c in diagnosis["causes"]] == ["sampler_seed"]
    fix = diagnosis["causes"][0]["fix"]
    assert "unseeded_sampler.py:12: TPESampler() has no seed" in fix
    location = diagnosis["causes"][0]["location"]
    assert location["line"] == 12 and "TPESampler()" in location["source"]
    ids = [e["id"] for e in diagnosis["experiments"]]
    assert ids[0] == "as_written" and "only_needed" in ids
    assert any(
        "smallest set of controls" in w and "sampler_seed" in w for w in diagnosis["warnings"]
    )
    # each ablation is one new run against full control's run 0 (reused, not rerun)
    experiments = {e["id"]: e for e in diagnosis["experiments"]}
    assert experiments["no_sampler_seed"]["reference"] == "full_control"
    assert experiments["no_trial_reseed"]["reference"] is None  # two fresh runs of its own


@pytest.mark.e2e
def test_a_script_drawing_from_the_global_stream_before_its_study_is_global_rng(
    tmp_path: Path,
) -> None:
    # the audit sees the global streams around each trial only: global RNG seeding is always
    # tested on a script, never skipped as "not consumed"
    out = tmp_path / "diagnose.json"
    result = cli("diagnose", script("shuffled_before_study.py"), "--json", str(out))
    assert result.code == 0, result.out + result.err
    diagnosis = json.loads(out.read_text())
    assert [c["id"] for c in diagnosis["causes"]] == ["global_rng"]
    verdicts = {e["id"]: e["verdict"] for e in diagnosis["experiments"]}
    assert verdicts["no_global_rng"] == "not reproducible"
    assert verdicts["only_needed"] == "reproducible"


@pytest.mark.e2e
def test_diagnose_of_a_script_reproducible_as_written_runs_one_experiment(tmp_path: Path) -> None:
    out = tmp_path / "diagnose.json"
    result = cli("diagnose", script("callable_class.py"), "--json", str(out))
    assert result.code == 0, result.out + result.err
    diagnosis = json.loads(out.read_text())
    assert diagnosis["causes"] == []
    assert [e["id"] for e in diagnosis["experiments"]] == ["as_written"]


@pytest.mark.e2e
@pytest.mark.parametrize(("workers", "warned"), [("2", True), ("1", False)])
def test_files_written_in_the_shared_folder_are_noticed(
    workers: str, warned: bool, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for name in ("writes_file.py", "script_helper.py"):
        shutil.copy(SCRIPTS / name, work)
    result = run("writes_file.py", "--runs", "2", "--workers", workers, tmp_path=tmp_path, cwd=work)
    assert result.code == 0, result.out + result.err
    notes = " ".join(report_of(result, tmp_path)["notes"])
    assert ("wrote files in its working folder (results.csv)" in notes) is warned
    assert "__pycache__" not in notes
