"""diagnose never suggests a tolerance it has not checked (issue 9 item 11).

`repro_check.examples.noisy` used to get "--atol 2", with which `run` still failed: the noise
steers what TPE suggests next, which no tolerance absorbs."""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest
from conftest import cli

from repro_check.checks.causes import FixContext, ToleranceCheck, fix_for
from repro_check.checks.causes.tolerance_advice import run_command
from repro_check.checks.diagnose_noise import candidate_atol
from repro_check.plan.config import build_plan
from repro_check.plan.settings import StudySettings
from repro_check.results.comparison import Divergence

NOISY = "repro_check.examples.noisy:objective"


def noise_fix(tmp_path: Path, *flags: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    result = cli("diagnose", NOISY, *flags, json_path=tmp_path / "d.json")
    assert result.code == 0, result.out + result.err
    report = result.report
    assert report is not None
    causes = {c["id"]: c for c in report["causes"]}
    assert "objective_noise" in causes
    return causes["objective_noise"]["fix"], report


@pytest.mark.e2e
def test_noise_that_steers_the_sampler_gets_no_tolerance(tmp_path: Path) -> None:
    """Whether these runs already forked (params) or only could (values closer together than
    the noise, under TPE), the advice is the same: no tolerance for the whole study; only the
    sampler's start-up trials, which no run's noise can steer (not the trials before where
    these runs happened to fork: another run forks sooner, and that advice failed one check
    in three). The command pastes as printed: the target and the flags that matter."""
    fix, report = noise_fix(tmp_path, "--trials", "20", "--seed", "3")
    check = {e["id"]: e for e in report["experiments"]}["tolerance_check"]
    assert len(check["runs"]) == 3  # as many as `run` compares by default
    atol = re.search(r"compared with --atol (\S+)", check["description"])
    assert atol is not None
    assert "# no tolerance rescues this check: the noise " in fix
    assert "tolerance ten times it" not in fix and "..." not in fix
    first = re.search(
        r"# or compare only the sampler's 10 start-up trials, which it suggests without\n"
        r"# looking at the values \(checked: 3 runs agree on them within --atol (\S+)\):\n"
        rf"# repro-check run {NOISY} --seed 3 --trials 10 --atol (\S+)$",
        fix,
    )
    assert first is not None, fix
    assert first.group(1) == first.group(2) == atol.group(1)
    command = fix.splitlines()[-1].removeprefix("# ").split()
    passed = cli(*command[1:])
    assert passed.code == 0, passed.out + passed.err


@pytest.mark.e2e
def test_a_checked_tolerance_is_suggested_and_makes_run_pass(tmp_path: Path) -> None:
    # the random sampler's params do not depend on the values: a tolerance does absorb the noise
    fix, _ = noise_fix(tmp_path, "--trials", "8", "--sampler", "random")
    found = re.search(
        r"\(checked: 3 runs × 8 trials agree with it\):\n"
        rf"# repro-check run {NOISY} --sampler random --trials 8 --atol (\S+)$",
        fix,
    )
    assert found is not None, fix
    passed = cli("run", NOISY, "--trials", "8", "--sampler", "random", "--atol", found.group(1))
    assert passed.code == 0, passed.out + passed.err


@pytest.mark.e2e
def test_a_study_no_longer_than_the_start_up_trials_gets_its_tolerance(tmp_path: Path) -> None:
    """Eight trials of TPE are all start-up trials (its default is 10, not 8): the noise cannot
    reorder what the sampler never looks at, so the tolerance is checked and suggested."""
    fix, _ = noise_fix(tmp_path, "--trials", "8")
    assert "start-up" not in fix and "rescues" not in fix, fix
    assert re.search(rf"# repro-check run {NOISY} --trials 8 --atol \S+$", fix), fix


def test_fix_text_for_each_outcome() -> None:
    study = StudySettings(trials=30)
    parted = Divergence(11, "params", (0, 1), 0.3, 0.1, "param x = 1.0 vs 1.3 (run 0 vs run 1)")
    command = "repro-check run m:f --seed 3"

    def fix(check: ToleranceCheck | None) -> str:
        if check is not None:
            check = dataclasses.replace(check, command=command)
        return fix_for("objective_noise", FixContext(study, 0, "m:f", tolerance=check))

    unchecked = fix(None)
    assert "--atol" not in unchecked
    assert unchecked.endswith("(no tolerance suggested: none could be checked against the runs)")
    failed = fix(ToleranceCheck(2.0, 2, 30, parted))
    assert "with --atol 2 the runs still part at trial 11, params, |Δ| 0.3)" in failed
    assert "--trials" not in failed  # no start-up trials known: no shorter check holds
    # parted at 11, after TPE's 10 start-up trials: those 10, never the 11 before the fork
    after_startup = fix(ToleranceCheck(2.0, 2, 30, parted, startup=10))
    assert after_startup.endswith(
        "# or compare only the sampler's 10 start-up trials, which it suggests without\n"
        "# looking at the values (checked: 2 runs agree on them within --atol 2):\n"
        "# repro-check run m:f --seed 3 --trials 10 --atol 2"
    )
    # agreeing within the tolerance on different params is luck: not a pass
    steered = fix(ToleranceCheck(2.0, 3, 30, None, steered_at=10, startup=10))
    assert (
        "# suggests next (from trial 10 on the runs get different params; within --atol 2 "
        "this time only)"
    ) in steered
    assert steered.endswith("# repro-check run m:f --seed 3 --trials 10 --atol 2")
    assert "checked: 3 runs ×" not in steered
    # forked inside the start-up trials: the values did not steer it, no shorter check holds
    early = fix(ToleranceCheck(2.0, 3, 30, None, steered_at=4, startup=10))
    assert "rescues" in early and "--trials" not in early
    lucky = fix(ToleranceCheck(2.0, 3, 20, None, reorder=(0.2, 0.004), startup=10))
    assert (
        "# no tolerance rescues this check: the noise (about 0.2) can reorder trials whose "
        "values\n# are as close as 0.004, and the sampler then suggests other params\n"
        "# (3 runs × 20 trials agreed within --atol 2 by luck);\n"
        "# or compare only the sampler's 10 start-up trials, which it suggests without\n"
        "# looking at the values (checked: 3 runs agree on them within --atol 2):\n"
        "# repro-check run m:f --seed 3 --trials 10 --atol 2"
    ) in lucky
    at_zero = fix(ToleranceCheck(2.0, 2, 30, Divergence(0, "params", (0, 1), 0.3, 0.1, "")))
    assert "--trials" not in at_zero and "rescues" in at_zero
    passed = fix(ToleranceCheck(0.5, 2, 30, None))
    assert passed.endswith(
        "(checked: 2 runs × 30 trials agree with it):\n"
        "# repro-check run m:f --seed 3 --trials 30 --atol 0.5"
    )
    assert "..." not in "".join((failed, after_startup, steered, lucky, passed))


def test_candidate_atol_is_round_and_at_least_ten_times_the_noise() -> None:
    assert candidate_atol(0.157) == 2.0
    assert candidate_atol(0.149) == 2.0  # rounded up: 1 would be less than 10x
    assert candidate_atol(0.0123) == 0.2
    assert candidate_atol(0.1) == 1.0
    for noise in (0.093, 0.35, 1.7e-9, 42.0):
        assert 10 * noise <= candidate_atol(noise) < 20 * noise


def test_the_run_command_names_the_target_and_every_setting_that_matters() -> None:
    """What `run` needs to check the study diagnose checked: the target, the settings that
    are not run's defaults (the retried n_jobs=1 too), none that are."""
    plain = build_plan(NOISY, {}, pyproject=False)
    assert run_command(plain, plain.study) == f"repro-check run {NOISY}"
    flags = {
        "seed": 7, "sampler": "tpe", "runs": 5, "rtol": 1e-6, "n_jobs": 4,
        "direction": ["maximize"], "sampler_kwargs": {"n_startup_trials": 4},
    }  # fmt: skip
    plan = build_plan("train dir/model.py:objective", flags, pyproject=False)
    study = dataclasses.replace(plan.study, n_jobs=1)
    command = run_command(plan, study)
    assert command == (
        "repro-check run 'train dir/model.py:objective' --direction maximize "
        "--n-jobs 1 --seed 7 --runs 5 --rtol 1e-06  # with your config file's sampler_kwargs"
    )
    words = shlex.split(command, comments=True)
    assert words[2] == "train dir/model.py:objective"


def test_reorder_risk_has_a_margin_and_ends_with_the_start_up_trials() -> None:
    from repro_check.checks.diagnose_noise import REORDER_MARGIN, _reorder_risk
    from repro_check.results.records import RunRecord
    from repro_check.results.trial_record import TrialRecord

    def run(values: list[float]) -> RunRecord:
        trials = tuple(TrialRecord(i, "COMPLETE", {"x": v}, (v,)) for i, v in enumerate(values))
        return RunRecord(0, 0, "ok", trials)

    gap = [run([0.0, 1.0, 1.15])]  # smallest gap 0.15: 1.5x a noise of 0.1
    assert REORDER_MARGIN * 0.1 > 0.15
    risk = _reorder_risk(gap, 0.1, StudySettings(trials=20))
    assert risk is not None and risk[0] == 0.1 and abs(risk[1] - 0.15) < 1e-12
    assert _reorder_risk(gap, 0.05, StudySettings(trials=20)) is None  # 3x the noise
    # TPE never looks at the values of a study no longer than its 10 start-up trials
    assert _reorder_risk(gap, 0.1, StudySettings(trials=10)) is None
    assert _reorder_risk(gap, 0.1, StudySettings(trials=20, sampler="random")) is None


def test_params_split_is_the_first_trial_with_other_params() -> None:
    from repro_check.checks.diagnose_noise import params_split
    from repro_check.results.records import RunRecord
    from repro_check.results.trial_record import TrialRecord

    def run(xs: list[float]) -> RunRecord:
        trials = tuple(TrialRecord(i, "COMPLETE", {"x": x}, (1.0,)) for i, x in enumerate(xs))
        return RunRecord(0, 0, "ok", trials)

    assert params_split([run([1.0, 2.0, 3.0]), run([1.0, 2.0, 3.0 + 1e-12])]) == 2
    assert params_split([run([1.0, 2.0]), run([1.0, 2.0, 5.0])]) is None
    assert params_split([run([1.0]), run([1.0])]) is None
