"""diagnose never suggests a tolerance it has not checked (issue 9 item 11).

`repro_check.examples.noisy` used to get "--atol 2", with which `run` still failed: the noise
steers what TPE suggests next, which no tolerance absorbs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import cli

from repro_check.checks.causes import FixContext, ToleranceCheck, fix_for
from repro_check.checks.diagnose_noise import candidate_atol
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
    the noise, under TPE), the advice is the same: no tolerance; the trials before the fork."""
    fix, report = noise_fix(tmp_path, "--trials", "20")
    check = {e["id"]: e for e in report["experiments"]}["tolerance_check"]
    assert len(check["runs"]) == 3  # as many as `run` compares by default
    atol = re.search(r"compared with --atol (\S+)", check["description"])
    assert atol is not None
    assert "# no tolerance rescues this check: the noise " in fix
    assert "tolerance (checked" not in fix
    first = re.search(
        r"# or compare only the (?:first|sampler's) (\d+) (?:start-up )?trials, which .*:\n"
        r"# repro-check run \.\.\. --trials (\d+) --atol (\S+)$",
        fix,
    )
    assert first is not None, fix
    assert first.group(1) == first.group(2) and first.group(3) == atol.group(1)
    # TPE's 10 random start-up trials do not depend on the values: any fork comes after
    assert int(first.group(1)) >= 10
    passed = cli("run", NOISY, "--trials", "10", "--atol", atol.group(1))
    assert passed.code == 0, passed.out + passed.err


@pytest.mark.e2e
def test_a_checked_tolerance_is_suggested_and_makes_run_pass(tmp_path: Path) -> None:
    # the random sampler's params do not depend on the values: a tolerance does absorb the noise
    fix, _ = noise_fix(tmp_path, "--trials", "8", "--sampler", "random")
    found = re.search(
        r"\(checked: 3 runs × 8 trials agree with it\):\n# repro-check run \.\.\. --atol (\S+)$",
        fix,
    )
    assert found is not None, fix
    passed = cli("run", NOISY, "--trials", "8", "--sampler", "random", "--atol", found.group(1))
    assert passed.code == 0, passed.out + passed.err


def test_fix_text_for_each_outcome() -> None:
    study = StudySettings(trials=30)
    parted = Divergence(11, "params", (0, 1), 0.3, 0.1, "param x = 1.0 vs 1.3 (run 0 vs run 1)")

    def fix(check: ToleranceCheck | None) -> str:
        return fix_for("objective_noise", FixContext(study, 0, "m:f", tolerance=check))

    unchecked = fix(None)
    assert "--atol" not in unchecked
    assert unchecked.endswith("(no tolerance suggested: none could be checked against the runs)")
    failed = fix(ToleranceCheck(2.0, 2, 30, parted))
    assert "with --atol 2 the runs still part at trial 11, params, |Δ| 0.3)" in failed
    assert failed.endswith("# repro-check run ... --trials 11 --atol 2")
    # agreeing within the tolerance on different params is luck: not a pass
    steered = fix(ToleranceCheck(2.0, 3, 30, None, steered_at=10))
    assert (
        "# suggests next (from trial 10 on the runs get different params; within --atol 2 "
        "this time only)"
    ) in steered
    assert steered.endswith("# repro-check run ... --trials 10 --atol 2")
    assert "checked" not in steered
    both = fix(ToleranceCheck(2.0, 3, 30, parted, steered_at=10))
    assert both.endswith("# repro-check run ... --trials 10 --atol 2")
    lucky = fix(ToleranceCheck(2.0, 3, 20, None, reorder=(0.2, 0.004), startup=10))
    assert (
        "# no tolerance rescues this check: the noise (about 0.2) is larger than the gaps\n"
        "# between trials' values (down to 0.004), so it can reorder the trials and the sampler\n"
        "# then suggests other params (3 runs × 20 trials agreed within --atol 2 by luck);\n"
        "# or compare only the sampler's 10 start-up trials, which do not use the values:\n"
        "# repro-check run ... --trials 10 --atol 2"
    ) in lucky
    at_zero = fix(ToleranceCheck(2.0, 2, 30, Divergence(0, "params", (0, 1), 0.3, 0.1, "")))
    assert "--trials" not in at_zero and "rescues" in at_zero
    passed = fix(ToleranceCheck(0.5, 2, 30, None))
    assert passed.endswith(
        "(checked: 2 runs × 30 trials agree with it):\n# repro-check run ... --atol 0.5"
    )


def test_candidate_atol_is_round_and_above_the_noise() -> None:
    assert candidate_atol(0.157) == 2.0
    assert candidate_atol(0.0123) == 0.1


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
