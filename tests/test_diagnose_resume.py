"""``diagnose --resume-at K`` / ``diagnose --storage URL`` (issue 13, item 2): the resume
experiment, each replicate stopped after K trials and resumed in a fresh process, compared with
the fully controlled runs; and ``repro_check.check(resume_at=K)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli, fixture, inprocess_cli, one_line_error

from repro_check.checks.diagnose_resume import resume_point
from repro_check.errors import ConfigError
from repro_check.plan.config import build_plan


def _diagnose(tmp_path: Path, *flags: str) -> dict[str, Any]:
    result = cli("diagnose", *flags, json_path=tmp_path / "d.json", timeout=300)
    assert result.code == 0, result.out + result.err
    report: dict[str, Any] = result.report
    for cause in report["causes"]:
        assert cause["id"] in result.out
    report["_out"] = result.out
    return report


def _experiment(report: dict[str, Any], exp_id: str) -> dict[str, Any] | None:
    return next((e for e in report["experiments"] if e["id"] == exp_id), None)


@pytest.mark.e2e
def test_random_sampler_resume_names_the_lost_sampler_state_and_the_fix(tmp_path: Path) -> None:
    report = _diagnose(
        tmp_path, fixture("deterministic"), "--sampler", "random", "--trials", "6",
        "--resume-at", "3",
    )  # fmt: skip
    assert report["reproducible_under_full_control"] is True
    cause = next(c for c in report["causes"] if c["id"] == "resume_sampler_state")
    assert cause["trial"] == 3
    assert "random state" in cause["evidence"] and "#3255" in cause["evidence"]
    assert "part at trial 3 (params" in cause["evidence"]
    assert (
        "study.sampler = optuna.samplers.RandomSampler(seed=0 + len(study.trials))"
        in (cause["fix"])
    )
    # the experiment is in the JSON: the resumed runs, K, and the straight-through runs reused
    resume = _experiment(report, "resume")
    assert resume is not None
    assert resume["verdict"] == "not reproducible"
    assert resume["divergence"]["trial"] == 3 and resume["divergence"]["field"] == "params"
    assert resume["resume"]["at"] == 3 and resume["resume"]["chosen_by_diagnose"] is False
    assert resume["resume"]["straight_through"] == "full_control"
    assert resume["resume"]["resumed_reproducible"] is True
    assert resume["reference"] is None  # its runs are its own (the cost benchmark counts them)
    assert [r["trials"] for r in resume["runs"]] == [6, 6, 6]  # --replicates, 3 by default
    assert report["settings"]["resume_at"] == 3
    assert "resume_sampler_state" in report["_out"] and "stopped after 3 of 6" in report["_out"]


@pytest.mark.e2e
def test_tpe_resumed_right_after_its_start_up_trials_has_no_resume_cause(tmp_path: Path) -> None:
    config = tmp_path / "tpe.toml"
    config.write_text("[sampler_kwargs]\nn_startup_trials = 3\n")
    report = _diagnose(
        tmp_path, fixture("deterministic"), "--trials", "5", "--resume-at", "3",
        "--config", str(config),
    )  # fmt: skip
    ids = [c["id"] for c in report["causes"]]
    assert "resume_sampler_state" not in ids and "resume_state" not in ids
    resume = _experiment(report, "resume")
    assert resume is not None
    assert resume["verdict"] == "reproducible"
    assert resume["resume"]["matches"] is True and resume["divergence"] is None


@pytest.mark.e2e
@pytest.mark.slow  # two processes per replicate, SQLite
def test_storage_runs_the_experiment_at_half_the_trials_in_it(tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'study.db'}"
    report = _diagnose(
        tmp_path, fixture("deterministic"), "--sampler", "random", "--trials", "6",
        "--storage", url,
    )  # fmt: skip
    resume = _experiment(report, "resume")
    assert resume is not None
    assert resume["resume"]["at"] == 3 and resume["resume"]["chosen_by_diagnose"] is True
    assert "resume_sampler_state" in [c["id"] for c in report["causes"]]
    assert any("after 3 of 6 trials (half)" in w for w in report["warnings"])
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(url))
    assert len(names) == 3 and all(n.startswith("diagnose/resume-at-3/") for n in names)
    assert all(len(optuna.load_study(study_name=n, storage=url).trials) == 6 for n in names)


def test_without_storage_or_resume_at_there_is_no_resume_experiment() -> None:
    # no new cost for a study that does not resume (benchmarks/bench_diagnose_cost.py)
    plan = build_plan(fixture("deterministic"), {"trials": 6}, pyproject=False)
    assert resume_point(plan) is None
    with_storage = build_plan(
        fixture("deterministic"),
        {"trials": 7, "storage": "sqlite:///x.db", "name": "diagnose"},
        pyproject=False,
    )
    assert resume_point(with_storage) == (3, True)
    given = build_plan(fixture("deterministic"), {"trials": 7, "resume_at": 5}, pyproject=False)
    assert resume_point(given) == (5, False)


def test_diagnose_resume_at_is_validated_like_run() -> None:
    one_line_error(
        inprocess_cli("diagnose", fixture("deterministic"), "--trials", "4", "--resume-at", "4"),
        "below the trials (4)",
    )


def _script_diagnosis(tmp_path: Path, script: str, *flags: str) -> tuple[Any, Path]:
    """``diagnose SCRIPT FLAGS`` in a folder of its own (the script opens study.db there)."""
    import shutil

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(FIXTURES / "scripts" / script, work)
    result = cli("diagnose", script, *flags, json_path=tmp_path / "d.json", cwd=work, timeout=300)
    return result, work


@pytest.mark.e2e
def test_diagnose_resume_at_on_a_script_names_its_sampler_and_line(tmp_path: Path) -> None:
    """The script's RandomSampler(seed=0) replays its stream when the restarted script loads
    the study (was: diagnose refused --resume-at on a script)."""
    result, work = _script_diagnosis(
        tmp_path, "resume_storage.py", "--trials", "6", "--resume-at", "3"
    )
    assert result.code == 0, result.out + result.err
    report = result.report
    resume = _experiment(report, "resume")
    assert resume is not None and resume["verdict"] == "not reproducible"
    assert resume["reference"] is None or resume["reference"] == "as_written"
    cause = next(c for c in report["causes"] if c["id"] == "resume_sampler_state")
    assert cause["trial"] == 3
    lines = (FIXTURES / "scripts" / "resume_storage.py").read_text().splitlines()
    line = next(
        i for i, text in enumerate(lines, 1) if "= optuna.samplers.RandomSampler(seed=0)" in text
    )
    assert f"resume_storage.py:{line}" in cause["evidence"] + cause["fix"]
    assert "private copies of the script's storages" in resume["description"]
    assert sorted(p.name for p in work.iterdir()) == ["resume_storage.py"]  # nothing written


@pytest.mark.e2e
def test_diagnose_resume_at_on_a_script_kept_in_memory_resumes_nothing(tmp_path: Path) -> None:
    result, _work = _script_diagnosis(tmp_path, "seeded42.py", "--trials", "4", "--resume-at", "2")
    assert result.code == 0, result.out + result.err
    report = result.report
    assert _experiment(report, "resume") is None
    assert not [c for c in report["causes"] if c["id"].startswith("resume")]
    assert any("no resume experiment" in w and "nothing to resume" in w for w in report["warnings"])


def test_diagnose_resume_at_on_a_script_needs_its_trials() -> None:
    script = str(FIXTURES / "scripts" / "seeded42.py")
    one_line_error(inprocess_cli("diagnose", script, "--resume-at", "2"), "needs --trials N")


@pytest.mark.e2e
def test_script_with_its_own_storage_says_why_no_resume_ran(tmp_path: Path) -> None:
    script = FIXTURES / "scripts" / "resume_sqlite.py"
    report = _diagnose(tmp_path, str(script))
    assert _experiment(report, "resume") is None
    assert any(
        "uses a storage (the script's SQLite storage" in w and "--resume-at K" in w
        for w in report["warnings"]
    ), report["warnings"]


@pytest.mark.e2e
def test_api_resume_at_on_random_sampler_is_not_reproducible() -> None:
    import repro_check

    report = repro_check.check(
        fixture("deterministic"), runs=2, trials=4, sampler="random", resume_at=2
    )
    assert report.reproducible is False and report.exit_code == 1
    assert report.resume is not None and report.resume.first_difference is not None
    assert report.resume.first_difference.trial == 2
    assert report.resume.reason is not None and "random state" in report.resume.reason


@pytest.mark.parametrize(
    ("at", "fragment"),
    [(0, ">= 1"), (4, "below the trials (4)"), (9, "below the trials (4)"), (True, "integer")],
)
def test_api_bad_resume_at_raises_one_line(at: Any, fragment: str) -> None:
    import repro_check

    with pytest.raises(ConfigError) as raised:
        repro_check.check(fixture("deterministic"), runs=2, trials=4, resume_at=at)
    message = str(raised.value)
    assert fragment in message and "resume" in message and "\n" not in message


@pytest.mark.e2e
@pytest.mark.slow  # two processes per replicate, SQLite
def test_objective_state_lost_on_resume_is_resume_state(tmp_path: Path) -> None:
    # module_state's counter restarts in the resuming process: same params, other values
    config = tmp_path / "tpe.toml"
    config.write_text("[sampler_kwargs]\nn_startup_trials = 3\n")
    report = _diagnose(
        tmp_path, fixture("module_state"), "--trials", "4", "--resume-at", "3",
        "--config", str(config),
    )  # fmt: skip
    cause = next(c for c in report["causes"] if c["id"] == "resume_state")
    assert cause["trial"] == 3 and "state the objective keeps" in cause["evidence"]
    assert "resume_sampler_state" not in [c["id"] for c in report["causes"]]
    assert all(line.startswith("# ") for line in cause["fix"].splitlines())


def test_no_resume_experiment_when_full_control_differs() -> None:
    from repro_check.checks.diagnose_resume import resume_experiment
    from repro_check.checks.lab import Lab
    from repro_check.plan.settings import Controls
    from repro_check.results.diagnosis import Experiment

    plan = build_plan(fixture("deterministic"), {"trials": 4, "resume_at": 2}, pyproject=False)
    lab = Lab(plan, "cpu", 2, None)
    full = Experiment("full_control", "every control on", Controls(), "not reproducible", None, ())
    found = resume_experiment(lab, full, plan.study)
    assert found.experiments == () and lab.next_index == 0  # nothing ran
    assert found.causes == ()
    assert any("resume experiment" in w and "did not run" in w for w in found.warnings)


@pytest.mark.parametrize("command", ["diagnose", "run"])
def test_a_storage_that_cannot_open_is_bad_input_before_any_run(command: str) -> None:
    progress: list[Any] = []
    plan = build_plan(
        fixture("deterministic"),
        {"trials": 4, "storage": "nonsense://x", "name": "n", "resume_at": 2},
        pyproject=False,
    )
    from repro_check.checks.diagnose import run_diagnose
    from repro_check.checks.run import run_check
    from repro_check.errors import ReproCheckError

    with pytest.raises(ReproCheckError) as raised:
        if command == "diagnose":
            run_diagnose(plan, on_progress=lambda *a: progress.append(a))
        else:
            run_check(plan, on_progress=lambda *a: progress.append(a))
    assert "cannot open storage" in str(raised.value) and raised.value.exit_code == 2
    assert progress == []  # no worker started


@pytest.mark.e2e
def test_script_with_storage_flag_says_why_no_resume_ran(tmp_path: Path) -> None:
    script = FIXTURES / "scripts" / "seeded42.py"
    url = f"sqlite:///{tmp_path / 'given.db'}"
    report = _diagnose(tmp_path, str(script), "--trials", "3", "--storage", url)
    assert _experiment(report, "resume") is None
    assert any(
        w.startswith("the study uses a storage; give --trials N --resume-at K")
        for w in report["warnings"]
    ), report["warnings"]
