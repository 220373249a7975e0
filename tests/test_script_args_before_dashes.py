"""A script's own arguments typed before ``--`` (issue 21, item 1): never a silent wrong answer.

``repro-check run train.py --seed 42`` used to take ``--seed`` as the check's own, where it
changes nothing for a script checked as written, and report NOT REPRODUCIBLE; an option the
command lacks (``--num-workers 2``) answered "No such option (Possible options: --workers)".
Both now stop before anything runs (exit 2, one line) and show the command corrected. All in
process: the errors come before any worker starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, fixture, inprocess_cli, one_line_error

from repro_check.plan.inert import InertSettingError, check_settings_apply
from repro_check.plan.settings import CheckPlan, Controls

SCRIPTS = FIXTURES / "scripts"
SCRIPT = str(SCRIPTS / "seeded42.py")


@pytest.fixture(autouse=True)
def _no_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty folder: no pyproject.toml layer."""
    monkeypatch.chdir(tmp_path)


def test_a_seed_before_dashes_is_refused_with_the_command_corrected() -> None:
    line = one_line_error(inprocess_cli("run", SCRIPT, "--seed", "42"))
    assert line == (
        "error: --seed applies to the check's controls, which are off for a script; "
        f"to pass it to seeded42.py: repro-check run {SCRIPT} -- --seed 42"
    )


def test_the_readme_bundled_example_typed_without_dashes() -> None:
    line = one_line_error(inprocess_cli("run", "-m", "repro_check.examples.train", "--seed", "42"))
    assert line == (
        "error: --seed applies to the check's controls, which are off for a script; "
        "to pass it to repro_check.examples.train: "
        "repro-check run -m repro_check.examples.train -- --seed 42"
    )


def test_the_corrected_command_keeps_the_checks_flags_and_the_scripts_arguments() -> None:
    result = inprocess_cli("run", SCRIPT, "--seed=7", "--runs", "2", "--", "--epochs", "3")
    assert one_line_error(result).endswith(
        f"repro-check run {SCRIPT} --runs 2 -- --seed=7 --epochs 3"
    )


def test_a_thread_count_before_dashes_shows_the_command_corrected_too() -> None:
    line = one_line_error(inprocess_cli("run", SCRIPT, "--threads", "4"))
    assert line.startswith("error: --threads sets the count the threads control pins")
    assert line.endswith(f"; to pass it to seeded42.py: repro-check run {SCRIPT} -- --threads 4")


def test_a_seed_a_control_reads_is_the_checks() -> None:
    """With a control that takes the seed (here the sampler's), --seed is the check's: no
    error (the check then runs; only the plan is built here)."""
    plan = CheckPlan(SCRIPT, controls=Controls.only(["sampler_seed"]))
    check_settings_apply(plan, {"seed": "--seed"})
    hash_only = CheckPlan(SCRIPT, controls=Controls.only(["hash_seed"]))  # PYTHONHASHSEED=seed
    check_settings_apply(hash_only, {"seed": "--seed"})


def test_an_objective_with_no_seeded_control_refuses_a_seed_without_the_dashes_advice() -> None:
    result = inprocess_cli("run", fixture("deterministic"), "--controls", "threads", "--seed", "3")
    assert one_line_error(result) == (
        "error: --seed applies to the controls that take a seed (sampler_seed, global_rng, "
        "trial_reseed, hash_seed), and none of them is on: turn one on in --controls, or leave "
        "--seed out"
    )


def test_compare_refuses_a_seed_only_when_no_condition_reads_it() -> None:
    """compare turns controls on itself: its seed sweep reads the seed (S, S+1, ...) even for
    a script as written; without the sweep, --seed changes nothing for a script."""
    plan = CheckPlan(SCRIPT, controls=Controls.none())
    from repro_check.checks.compare import condition_controls

    every = [condition_controls(plan, c) for c in ("fixed_seed", "seed_sweep", "uncontrolled")]
    check_settings_apply(plan, {"seed": "--seed"}, every)
    line = one_line_error(
        inprocess_cli("compare", SCRIPT, "--conditions", "fixed_seed,uncontrolled", "--seed", "4")
    )
    assert line.endswith(
        f"to pass it to seeded42.py: repro-check compare {SCRIPT} "
        "--conditions fixed_seed,uncontrolled -- --seed 4"
    )


def test_the_refusal_carries_the_setting_and_the_script() -> None:
    with pytest.raises(InertSettingError) as caught:
        check_settings_apply(CheckPlan("-m pkg.train", controls=Controls.none()), {"seed": "s"})
    assert (caught.value.setting, caught.value.script) == ("seed", "pkg.train")
    assert str(caught.value).endswith("; a script's own arguments go after --")


def test_an_unknown_option_with_a_script_says_where_the_scripts_arguments_go() -> None:
    line = one_line_error(inprocess_cli("run", "train.py", "--num-workers", "2"))
    assert line == (
        "error: No such option: --num-workers (Possible options: --workers); the script's own "
        "arguments go after --: repro-check run train.py -- --num-workers 2"
    )


def test_every_unknown_option_moves_and_the_checks_own_stay() -> None:
    result = inprocess_cli(
        "run", "--runs", "2", "-m", "pkg.train", "--epochs", "3", "--lr", "0.1", "--trials", "5"
    )
    assert one_line_error(result).endswith(
        "the script's own arguments go after --: "
        "repro-check run --runs 2 -m pkg.train --trials 5 -- --epochs 3 --lr 0.1"
    )


def test_an_unknown_option_before_the_script_and_with_arguments_after_dashes() -> None:
    result = inprocess_cli("diagnose", "--fast", "train.py", "--", "--lr", "0.1")
    assert one_line_error(result).endswith("repro-check diagnose train.py -- --fast --lr 0.1")


def test_an_unknown_option_with_an_objective_keeps_clicks_message() -> None:
    line = one_line_error(inprocess_cli("run", fixture("deterministic"), "--num-workers", "2"))
    assert line == "error: No such option: --num-workers (Possible options: --workers)"


def test_a_study_flag_for_a_script_shows_the_command_corrected_too() -> None:
    """--sampler, --direction, --pruner, --n-jobs were already refused for a script (it builds
    its own studies); they may as well be the script's own flags: the corrected command too."""
    result = inprocess_cli(
        "run", SCRIPT, "--direction", "maximize", "--runs", "2", "--direction", "minimize"
    )
    line = one_line_error(result, "--direction does not apply to a script")
    assert line.endswith(
        f"; to pass it to seeded42.py: repro-check run {SCRIPT} --runs 2 -- "
        "--direction maximize --direction minimize"
    )
    line = one_line_error(inprocess_cli("run", "-m", "pkg.train", "--n-jobs", "2"))
    assert line.endswith("; to pass it to pkg.train: repro-check run -m pkg.train -- --n-jobs 2")
