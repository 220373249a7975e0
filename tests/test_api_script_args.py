"""The Python API and the pytest plugin take a script's arguments (issue 21, items 5 and 4):
``repro_check.check("train.py", args=[...])``, the fixture's calls and the marker; a seed meant
for the script is refused with the ``args=`` to pass instead; the plugin's failure message says
what is true per mode (a script's studies carry the real trial counts)."""

from __future__ import annotations

import pytest
from conftest import FIXTURES

from repro_check.api import check
from repro_check.errors import ConfigError
from repro_check.plan.inert import InertSettingError
from repro_check.pytest_plugin import ReproCheck, failure_message

SCRIPTS = FIXTURES / "scripts"
ARGV = str(SCRIPTS / "argv_trials.py")
UNSEEDED = str(SCRIPTS / "unseeded_sampler.py")


def test_args_must_be_a_list_not_one_string() -> None:
    with pytest.raises(ConfigError, match=r"args= takes a list of strings, e\.g\. \['--n-trials'"):
        check(ARGV, args="--n-trials 3")


def test_args_need_a_script_target() -> None:
    with pytest.raises(ConfigError, match="script arguments need a script target"):
        check("repro_check.examples.quadratic:objective", args=["--n-trials", "3"])


def test_a_seed_meant_for_the_script_is_refused_with_the_args_to_pass() -> None:
    with pytest.raises(InertSettingError) as caught:
        check(ARGV, args=["--n-trials", "3"], seed=42)
    assert str(caught.value) == (
        "seed= applies to the check's controls, which are off for a script; "
        "to pass it to argv_trials.py: args=['--n-trials', '3', '--seed', '42']"
    )
    with pytest.raises(InertSettingError, match=r"leave seed= out"):
        check("repro_check.examples.quadratic:objective", controls="none", seed=3)


@pytest.mark.e2e
def test_check_passes_the_arguments_to_the_script() -> None:
    report = check(ARGV, runs=2, args=["--n-trials", "3", "--name", "given"])
    assert report.reproducible, report.verdict
    assert report.plan.args == ("--n-trials", "3", "--name", "given")
    study = report.runs[0].studies[0]
    assert (study.name, len(study.trials)) == ("given", 3)


@pytest.mark.e2e
def test_the_fixture_takes_the_arguments_from_the_marker_and_the_call() -> None:
    helper = ReproCheck({"runs": 2, "args": ["--n-trials", "2"]})  # as a marker gives them
    report = helper.assert_reproducible(ARGV)
    assert len(report.runs[0].studies[0].trials) == 2
    report = helper.check(ARGV, args=["--n-trials", "4"])  # the call's own win
    assert len(report.runs[0].studies[0].trials) == 4


@pytest.mark.e2e
def test_the_failure_message_of_a_script_says_its_real_trial_counts() -> None:
    report = check(UNSEEDED, runs=2, trials=3)
    assert not report.reproducible
    message = failure_message(report)
    checked = message.splitlines()[1]
    assert checked == f"  checked {UNSEEDED}: 2 runs × 3 trials", message  # no "× 20", no seed
    seeded = check(UNSEEDED, runs=2, trials=3, controls=["global_rng"])
    assert failure_message(seeded).splitlines()[1].endswith("2 runs × 3 trials, seed 0")
