"""Review of diagnose's full control witnessed by the PYTHONHASHSEED ablation (8f30412) and of
the experiments that follow it: the wrong answers found, each pinned by a test."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import cli, fixture


def diagnose(tmp_path: Path, name: str, *flags: str) -> dict:  # type: ignore[type-arg]
    out = tmp_path / f"{name}.json"
    result = cli("diagnose", fixture(name), "--trials", "6", *flags, json_path=out, timeout=300)
    assert result.code == 0, result.out + result.err
    report = result.report
    assert isinstance(report, dict)
    return report


@pytest.mark.e2e
def test_after_the_n_jobs_retry_every_ablation_runs_with_n_jobs_1(tmp_path: Path) -> None:
    """An objective that seeds its own RNGs needs only the sampler seed. Under --n-jobs 2 the
    retried full control runs with n_jobs=1, and so must the ablations compared with it: run
    with the user's n_jobs=2, their racing trials part from the reference whatever control is
    off, and global_rng and trial_reseed were named as causes (their JSON saying n_jobs 1)."""
    report = diagnose(tmp_path, "self_seeding", "--n-jobs", "2")
    assert [c["id"] for c in report["causes"]] == ["parallel_trials", "sampler_seed"]
    retried = [e for e in report["experiments"] if e["id"] != "full_control"]
    assert retried and all(e["n_jobs"] == 1 for e in retried)


@pytest.mark.e2e
def test_the_warn_only_retry_keeps_experiment_ids_unique(tmp_path: Path) -> None:
    """A refused torch determinism retries full control in warn_only mode, and each attempt
    ran its PYTHONHASHSEED run beside it: two experiments were both called no_hash_seed (a
    reader keying experiments by id saw only one, with the wrong reference)."""
    report = diagnose(tmp_path, "determinism_error")
    ids = Counter(e["id"] for e in report["experiments"])
    assert all(n == 1 for n in ids.values()), ids
    by_id = {e["id"]: e for e in report["experiments"]}
    for experiment in report["experiments"]:
        reference = experiment["reference"]
        assert reference is None or reference in by_id
        if experiment["id"].startswith("no_hash_seed") and reference is not None:
            # its run 0 is that experiment's run 0
            assert by_id[reference]["runs"][0] == experiment["runs"][0]


def _section(out: str, experiment: str) -> str:
    """The --verbose block of one experiment's runs: from its heading to the next one."""
    start = out.index(f"Runs of {experiment}:")
    end = out.find("Runs of ", start + 1)
    return out[start : end if end >= 0 else len(out)]


@pytest.mark.e2e
def test_verbose_shows_full_controls_own_output_under_its_runs(tmp_path: Path) -> None:
    """The PYTHONHASHSEED pair parts: full control then runs replicates of its own. Each of
    its runs ran with the fixed PYTHONHASHSEED=0, so none of the output --verbose prints under
    full control may come from a process whose hash seed was random (the pair's run)."""
    out = tmp_path / "d.json"
    flags = ("--trials", "4", "--verbose")
    result = cli("diagnose", fixture("hash_order_says_seed"), *flags, json_path=out, timeout=300)
    assert result.code == 0, result.out + result.err
    full = _section(result.out, "full_control")
    assert "hash seed 0" in full
    assert "hash seed random" not in full


@pytest.mark.e2e
def test_a_parting_pair_still_finds_process_state_in_one_process(tmp_path: Path) -> None:
    """The PYTHONHASHSEED pair parts (at trial 0, so the stop rule usually kills run 0 and
    full control is rerun afresh): the process-state probe, its own process beside the pair,
    still compares its two studies; both causes are found."""
    report = diagnose(tmp_path, "hash_order_module_state")
    causes = [c["id"] for c in report["causes"]]
    assert "hash_seed" in causes and "process_state" in causes
    experiments = {e["id"]: e for e in report["experiments"]}
    full = experiments["full_control"]
    assert full["verdict"] == "reproducible" and full["witness"] is None
    assert len(full["runs"]) == 3
    state = experiments["process_state"]
    assert state["reference"] is None and state["verdict"] == "not reproducible"


@pytest.mark.e2e
def test_a_hash_seed_run_that_cannot_finish_is_said_untested(tmp_path: Path) -> None:
    """The PYTHONHASHSEED run crashes (the objective dies unless the hash seed is pinned):
    it is no witness, full control gets a replicate of its own, and a warning says that
    control went untested instead of leaving it unmentioned."""
    report = diagnose(tmp_path, "dies_without_hash_seed")
    experiments = {e["id"]: e for e in report["experiments"]}
    assert experiments["full_control"]["witness"] is None
    assert len(experiments["full_control"]["runs"]) == 3
    assert experiments["no_hash_seed"]["verdict"] == "incomplete"
    assert "hash_seed" not in [c["id"] for c in report["causes"]]
    assert any(
        "PYTHONHASHSEED and the thread count were not tested" in w for w in report["warnings"]
    )
