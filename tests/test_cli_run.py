"""`repro-check run` through the real command: each nondeterminism class gets the right verdict.

A false "reproducible" on a nondeterministic fixture is the worst bug this project can have, so
each such fixture asserts exit code 1 *and* the JSON verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli, fixture, inprocess_cli, spawn_cli

FAST = ("--trials", "8", "--runs", "3")
PAIR = ("--trials", "8", "--runs", "2")
"""Two replicates: enough where a test reads one verdict that no third run could change (every
nondeterministic fixture here differs between any two processes); one interpreter less."""


def assert_reproducible(result) -> None:  # type: ignore[no-untyped-def]
    assert result.code == 0, result.out + result.err
    assert result.report["reproducible"] is True
    assert result.report["verdict"] == "reproducible"
    assert result.report["divergence"] is None
    assert result.report["summary"]["distinct_histories"] == 1


def assert_not_reproducible(result, field: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert result.code == 1, result.out + result.err
    assert result.report["reproducible"] is False
    assert result.report["verdict"] == "not reproducible"
    assert "NOT REPRODUCIBLE" in result.out
    divergence = result.report["divergence"]
    if field is not None:
        assert divergence["field"] == field
    return divergence


# --- deterministic fixtures: reproducible under the controls ----------------------------------


@pytest.fixture(scope="module")
def deterministic_3_workers(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One ``run deterministic FAST --workers 3``, read by the tests that only look at it."""
    out = tmp_path_factory.mktemp("deterministic") / "w3.json"
    return cli("run", fixture("deterministic"), *FAST, "--workers", "3", json_path=out)


@pytest.mark.e2e
def test_deterministic_objective_is_reproducible(deterministic_3_workers) -> None:
    result = deterministic_3_workers
    assert_reproducible(result)
    assert "REPRODUCIBLE: 3 runs × 8 trials agree bit for bit" in result.out
    bests = {run["best_value"] for run in result.report["runs"]}
    assert len(bests) == 1


@pytest.mark.e2e
def test_pruned_trials_reproduce(run_check) -> None:
    result = run_check(fixture("pruned"), "--trials", "12", "--pruner", "median")
    assert_reproducible(result)
    states = [t["state"] for t in result.report["runs"][0]["trials"]]
    assert "PRUNED" in states
    assert "pruned" in result.out


@pytest.mark.e2e
def test_failing_trials_reproduce_and_keep_their_error(run_check) -> None:
    result = run_check(fixture("failing"), *PAIR)
    assert_reproducible(result)
    failed = [t for t in result.report["runs"][0]["trials"] if t["state"] == "FAIL"]
    assert failed and all(t["error"].startswith("ValueError: x too large") for t in failed)


@pytest.mark.e2e
def test_nan_in_curves_reproduces(run_check) -> None:
    result = run_check(fixture("nan_curve"), "--trials", "15", "--sampler", "random")
    assert_reproducible(result)
    trial = result.report["runs"][0]["trials"][0]
    assert trial["intermediate_values"]["0"] == "NaN"
    assert trial["user_attrs"] == {"note": "nan at step 0"}


@pytest.mark.e2e
def test_multi_objective_reproduces_with_pareto_set(run_check) -> None:
    result = run_check(
        fixture("multi"), *PAIR, "--direction", "minimize", "--direction", "maximize"
    )
    assert_reproducible(result)
    run = result.report["runs"][0]
    assert "best_values" in run and "best_value" not in run
    assert len(run["best_values"]) == len(run["pareto_trials"]) >= 1
    assert all(len(values) == 2 for values in run["best_values"])


@pytest.mark.e2e
def test_controlled_global_rng_reproduces(run_check) -> None:
    assert_reproducible(run_check(fixture("global_rng"), *PAIR))


@pytest.mark.e2e
def test_hash_order_reproduces_with_fixed_hash_seed(run_check) -> None:
    assert_reproducible(run_check(fixture("hash_order"), *PAIR))


@pytest.mark.e2e
def test_module_state_reproduces_in_fresh_processes(run_check) -> None:
    assert_reproducible(run_check(fixture("module_state"), *PAIR))


@pytest.mark.e2e
def test_study_at_import_time_and_prints_do_not_break_the_check(run_check) -> None:
    result = run_check(fixture("import_time_study"), *PAIR)
    assert_reproducible(result)
    assert len(result.report["runs"][0]["trials"]) == 8


# --- nondeterministic fixtures: never "reproducible" ------------------------------------------


@pytest.mark.e2e
def test_unseeded_global_rng_without_the_control_is_not_reproducible(run_check) -> None:
    result = run_check(fixture("global_rng"), *PAIR, "--controls", "sampler_seed,hash_seed")
    divergence = assert_not_reproducible(result, "values")
    assert divergence["trial"] == 0
    assert result.report["settings"]["controls"]["global_rng"] is False


@pytest.mark.e2e
def test_hash_order_without_fixed_hash_seed_is_not_reproducible(run_check) -> None:
    result = run_check(
        fixture("hash_order"),
        "--trials",
        "3",
        "--runs",
        "3",
        "--controls",
        "sampler_seed,global_rng,trial_reseed",
    )
    assert_not_reproducible(result, "values")


@pytest.mark.e2e
def test_clock_noise_is_not_reproducible(run_check) -> None:
    divergence = assert_not_reproducible(run_check(fixture("clock_noise"), *FAST), "values")
    assert divergence["trial"] == 0
    assert 0 < divergence["max_abs_diff"] < 1e-5


@pytest.mark.e2e
def test_thread_order_sums_are_not_reproducible(run_check) -> None:
    assert_not_reproducible(run_check(fixture("thread_sum"), "--trials", "20"), "values")


@pytest.mark.e2e
def test_private_unseeded_rng_is_not_reproducible(run_check) -> None:
    result = run_check(fixture("private_rng"), *PAIR)
    assert_not_reproducible(result, "values")
    assert "repro-check diagnose" in result.out


@pytest.mark.e2e
def test_n_jobs_above_one_is_never_reproducible(run_check) -> None:
    result = run_check(fixture("deterministic"), "--trials", "12", "--n-jobs", "4")
    assert_not_reproducible(result)
    assert any("n_jobs" in note for note in result.report["notes"])
    assert "n_jobs > 1" in result.out


@pytest.mark.e2e
def test_unseeded_sampler_is_not_reproducible(run_check) -> None:
    result = run_check(fixture("deterministic"), *PAIR, "--controls", "none")
    assert_not_reproducible(result, "params")


@pytest.mark.e2e
def test_tolerance_absorbs_tiny_noise_but_not_bigger_noise(run_check) -> None:
    loose = run_check(fixture("clock_noise"), *FAST, "--atol", "1e-5")
    assert_reproducible(loose)
    assert "within tolerance" in loose.out
    tight = run_check(fixture("clock_noise"), *FAST, "--atol", "1e-15")
    assert_not_reproducible(tight, "values")


# --- incomplete runs: exit 3, the other runs' data kept ---------------------------------------


@pytest.mark.e2e
def test_crashed_replicate_exits_3_and_keeps_other_runs(run_check, tmp_path: Path) -> None:
    flag = tmp_path / "crashed-once"
    result = run_check(fixture("crash"), *FAST, env={"REPRO_CHECK_TEST_CRASH_FILE": str(flag)})
    assert result.code == 3, result.out + result.err
    report = result.report
    assert report["verdict"] == "incomplete" and report["reproducible"] is False
    statuses = sorted(run["status"] for run in report["runs"])
    assert statuses == ["crashed", "ok", "ok"]
    crashed = next(run for run in report["runs"] if run["status"] == "crashed")
    assert "code 17" in crashed["error"]
    assert len(crashed["trials"]) == 3  # trials 0-2 arrived before the crash
    assert all(len(run["trials"]) == 8 for run in report["runs"] if run["status"] == "ok")


@pytest.mark.e2e
def test_timeout_exits_3_with_partial_trials(run_check) -> None:
    result = run_check(fixture("slow"), "--trials", "20", "--runs", "2", "--timeout", "2.5")
    assert result.code == 3, result.out + result.err
    for run in result.report["runs"]:
        assert run["status"] == "timeout"
        assert 0 < len(run["trials"]) < 20


@pytest.mark.e2e
def test_op_without_deterministic_kernel_is_named_as_the_run_error(run_check) -> None:
    result = run_check(fixture("determinism_error"), *PAIR)
    assert result.code == 3
    for run in result.report["runs"]:
        assert run["status"] == "error"
        assert run["error"].startswith("scatter_add_cuda_kernel has no deterministic")
        assert len(run["trials"]) == 1  # the study stopped at the refusing op
    assert "scatter_add_cuda_kernel" in result.out


# --- torch on CPU --------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.slow
def test_torch_objective_is_seeded_through_the_import_hook(run_check) -> None:
    pytest.importorskip("torch")
    result = run_check(fixture("torch_cpu"), "--trials", "5", "--runs", "2", "--device", "cpu")
    assert_reproducible(result)
    torch_env = result.report["environment"]["torch"]
    assert torch_env["deterministic_algorithms"] is True
    assert torch_env["threads"] == 1
    assert result.report["environment"]["env"]["CUDA_VISIBLE_DEVICES"] == ""
    unseeded = run_check(
        fixture("torch_cpu"),
        "--trials",
        "5",
        "--runs",
        "2",
        "--device",
        "cpu",
        "--controls",
        "sampler_seed",
    )
    assert_not_reproducible(unseeded, "values")


@pytest.mark.e2e
def test_workers_do_not_change_the_numbers(tmp_path: Path, deterministic_3_workers) -> None:
    a = cli(
        "run", fixture("deterministic"), *FAST, "--workers", "1", json_path=tmp_path / "w1.json"
    )
    b = deterministic_3_workers
    assert a.code == b.code == 0
    trials_a = [(t["params"], t["values"]) for t in a.report["runs"][0]["trials"]]
    trials_b = [(t["params"], t["values"]) for t in b.report["runs"][0]["trials"]]
    assert trials_a == trials_b


@pytest.mark.e2e
def test_ctrl_c_stops_workers_and_reports_what_finished(tmp_path: Path) -> None:
    import signal
    import time

    out = tmp_path / "partial.json"
    proc = spawn_cli("run", fixture("slow"), "--trials", "40", "--runs", "2", "--json", str(out))
    deadline = time.monotonic() + 60
    time.sleep(5)  # start-up takes ~1 s; a loaded machine may need more
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted" in stderr
    report = json.loads(out.read_text())
    assert report["verdict"] == "interrupted" and report["exit_code"] == 130
    assert report["settings"]["device"] == "cpu"
    assert all(run["status"] == "cancelled" for run in report["runs"])
    assert all(0 < len(run["trials"]) < 40 for run in report["runs"])
    assert "INTERRUPTED" in stdout


@pytest.mark.e2e
def test_fail_fast_stops_at_the_first_certain_divergence(run_check) -> None:
    result = run_check(fixture("slow_noisy"), "--trials", "60", "--runs", "2", "--fail-fast")
    divergence = assert_not_reproducible(result, "values")
    assert divergence["trial"] == 0
    report = result.report
    assert report["stopped_early"] is True
    assert all(run["status"] == "cancelled" for run in report["runs"])
    assert all(len(run["trials"]) < 10 for run in report["runs"])  # of 60: stopped at once
    assert "--fail-fast" in result.out


@pytest.mark.e2e
def test_fail_fast_on_a_reproducible_study_runs_everything(run_check) -> None:
    result = run_check(fixture("deterministic"), *FAST, "--fail-fast")
    assert_reproducible(result)
    assert result.report["stopped_early"] is False
    assert all(run["status"] == "ok" for run in result.report["runs"])


@pytest.mark.e2e
def test_all_trials_failing_is_incomplete_not_reproducible(run_check) -> None:
    result = run_check(fixture("all_fail"), "--trials", "3", "--runs", "2")
    assert result.code == 3, result.out + result.err
    assert result.report["verdict"] == "incomplete"
    assert "no trial completed" in result.out


@pytest.mark.e2e
def test_a_lingering_thread_does_not_hang_the_check() -> None:
    start = time.monotonic()
    result = cli("run", fixture("linger"), "--trials", "3", "--runs", "2", timeout=60)
    assert result.code == 0, result.out + result.err
    assert time.monotonic() - start < 30


@pytest.mark.e2e
def test_closed_stdout_keeps_the_verdict_exit_code() -> None:
    script = (
        f"{sys.executable} -m repro_check run {fixture('private_rng')} --trials 2 "
        "--runs 2 | head -1 >/dev/null; echo ${PIPESTATUS[0]}"
    )
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "1", out.stderr


def test_unwritable_output_is_refused_before_running(tmp_path: Path) -> None:
    start = time.monotonic()
    result = inprocess_cli(
        "run", fixture("slow"), "--trials", "20", "--json", str(tmp_path / "missing" / "r.json")
    )
    assert result.code == 2 and "does not exist" in result.err
    assert time.monotonic() - start < 10  # refused before 20 slow trials ran
