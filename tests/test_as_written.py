"""As written means as written: with no control on, a replicate's process is the one
``python train.py ARGS`` gets from the same shell (environment, thread counts, hash seed,
interpreter flags); each thing the check changes is a named control (issue 19, item 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli, inprocess_cli, one_line_error

from repro_check.execution.controls import THREAD_ENV_VARS, worker_env
from repro_check.execution.devices import DEVICE_ENV
from repro_check.plan.settings import Controls

SCRIPTS = FIXTURES / "scripts"

CHECK_OWN = ("env.PYTHONPATH", "env.REPRO_CHECK_")
"""What docs/explanation/controls.md lists as the check's own in a script's process: its
PYTHONPATH hook (so the script's child processes report their studies) and REPRO_CHECK_*
variables."""


def _flat(facts: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in facts.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _shell() -> dict[str, str]:
    """A user's shell: their own PYTHONHASHSEED and CUBLAS_WORKSPACE_CONFIG exported, no
    thread variables (the libraries then use one thread per core)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV_VARS}
    for name in ("PYTHONPATH", "CUDA_VISIBLE_DEVICES", "PYTHONSAFEPATH"):
        env.pop(name, None)
    return {
        **env,
        "PYTHONHASHSEED": "0",
        "CUBLAS_WORKSPACE_CONFIG": ":16:8",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }


def test_no_control_leaves_the_shell_environment_as_it_is() -> None:
    shell = {"PYTHONHASHSEED": "0", "CUBLAS_WORKSPACE_CONFIG": ":16:8", "OMP_NUM_THREADS": "3"}
    env = worker_env(shell, Controls.none(), seed=5, threads=1, device="cpu")
    assert env == {**shell, DEVICE_ENV: "cpu"}


def test_each_enabled_control_sets_only_its_own_variables() -> None:
    env = worker_env({}, Controls.only(["threads"]), seed=5, threads=2, device="cpu")
    assert env == {**dict.fromkeys(THREAD_ENV_VARS, "2"), DEVICE_ENV: "cpu"}
    env = worker_env({}, Controls.only(["hash_seed"]), seed=5, threads=2, device="cpu")
    assert env == {"PYTHONHASHSEED": "5", DEVICE_ENV: "cpu"}
    env = worker_env({}, Controls.none(), seed=5, threads=2, device="cpu", hide_gpus=True)
    assert env == {"CUDA_VISIBLE_DEVICES": "", DEVICE_ENV: "cpu"}


@pytest.mark.e2e
def test_a_script_as_written_sees_the_process_python_gives_it(tmp_path: Path) -> None:
    """Every fact the probe sees of its process is the same under ``python probe.py`` and
    under ``repro-check run probe.py``, but for the check's own listed variables."""
    by_hand, checked = tmp_path / "by-hand", tmp_path / "checked"
    by_hand.mkdir()
    checked.mkdir()
    shell = _shell()
    probe = str(SCRIPTS / "env_probe.py")
    subprocess.run(
        [sys.executable, probe, str(by_hand)], env=shell, cwd=tmp_path, check=True, timeout=120
    )
    report = tmp_path / "report.json"
    result = cli(
        "run",
        probe,
        "--runs",
        "2",
        "--json",
        str(report),
        "--",
        str(checked),
        env=shell,
        cwd=tmp_path,
    )
    assert result.code == 0, result.out + result.err
    [python] = [json.loads(p.read_text()) for p in by_hand.glob("*.json")]
    replicates = [json.loads(p.read_text()) for p in checked.glob("*.json")]
    assert len(replicates) == 2
    for seen in replicates:
        assert seen["argv"][1:] == [str(checked)] and python["argv"][1:] == [str(by_hand)]
        a, b = _flat({**python, "argv": None}), _flat({**seen, "argv": None})
        differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        assert [k for k in differ if not k.startswith(CHECK_OWN)] == [], [
            (k, a.get(k), b.get(k)) for k in differ
        ]
    environment = json.loads(report.read_text())["environment"]
    # the probe pins one thread before it imports numpy and torch: under the check too, since
    # nothing of theirs (nor optuna's) was loaded before the script
    assert python["loaded_before"] == [] and python["torch_threads"] == 1
    assert environment["threads"] == 1 and environment["threads_pinned"] is False
    assert "threads 1 (as the shell sets" in result.out
    assert "OMP_NUM_THREADS=1 come" not in result.out  # the script set it, not the shell


@pytest.mark.e2e
def test_a_shared_check_also_imports_nothing_before_the_script(tmp_path: Path) -> None:
    # was: --storage opened the check's storage (optuna, numpy, SQLAlchemy) before the script
    folder = tmp_path / "out"
    folder.mkdir()
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    result = cli(
        "run", str(SCRIPTS / "env_probe.py"), "--runs", "2", "--storage", url, "--name", "p",
        "--", str(folder), env=_shell(), cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    for seen in (json.loads(p.read_text()) for p in folder.glob("*.json")):
        assert seen["loaded_before"] == [] and seen["torch_threads"] == 1
        assert seen["blas_threads"] in (None, {"openblas": 1}) or all(
            n == 1 for n in seen["blas_threads"].values()
        )


@pytest.mark.e2e
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores for two threads")
def test_a_thread_count_dependent_script_fails_as_written_and_passes_with_threads_pinned(
    tmp_path: Path,
) -> None:
    # was: every worker ran with OMP_NUM_THREADS=1 whatever the controls, so a script whose
    # float sums follow its thread pool's completion order was called reproducible
    script = str(SCRIPTS / "pool_sum.py")
    shell = _shell()
    as_written = cli("run", script, "--runs", "3", env=shell, cwd=tmp_path)
    assert as_written.code == 1, as_written.out + as_written.err
    pinned = cli(
        "run",
        script,
        "--runs",
        "3",
        "--controls",
        "threads",
        env=shell,
        cwd=tmp_path,
        json_path=tmp_path / "pinned.json",
    )
    assert pinned.code == 0, pinned.out + pinned.err
    environment = pinned.report["environment"]
    assert (environment["threads"], environment["threads_pinned"]) == (1, True)
    assert pinned.report["settings"]["controls"]["threads"] is True


@pytest.mark.e2e
def test_an_exported_hash_seed_is_kept_when_the_control_is_off(tmp_path: Path) -> None:
    # was: PYTHONHASHSEED=random replaced the user's exported 0: a false "not reproducible"
    script = str(SCRIPTS / "string_set_order.py")
    kept = cli("run", script, "--runs", "3", env=_shell(), cwd=tmp_path)
    assert kept.code == 0, kept.out + kept.err
    assert "PYTHONHASHSEED=0 comes from your shell" in kept.out  # a CI job may lack it
    unset = {k: v for k, v in _shell().items() if k != "PYTHONHASHSEED"}
    assert cli("run", script, "--runs", "3", env=unset, cwd=tmp_path).code == 1


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores for two threads")
def test_diagnose_names_the_thread_count_with_a_fix_that_pins_it(tmp_path: Path) -> None:
    result = cli(
        "diagnose",
        str(SCRIPTS / "pool_sum.py"),
        env=_shell(),
        cwd=tmp_path,
        json_path=tmp_path / "d.json",
        timeout=300,
    )
    assert result.code == 0, result.out + result.err  # a diagnosis completed
    causes = {c["id"]: c for c in result.report["causes"]}
    assert "threads" in causes, result.out
    assert "OMP_NUM_THREADS" in causes["threads"]["fix"]


@pytest.mark.e2e
@pytest.mark.slow
def test_a_thread_count_that_changes_numbers_deterministically_is_no_cause(
    tmp_path: Path,
) -> None:
    # was: the unpinned run was compared with full control's 1-thread run 0, so a dot product
    # OpenBLAS splits by thread count named `threads` as needed (every run alike, 2 threads)
    result = cli(
        "diagnose", str(SCRIPTS / "blas_dot.py"), env=_shell(), cwd=tmp_path,
        json_path=tmp_path / "d.json", timeout=300,
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    assert [c["id"] for c in result.report["causes"]] == ["sampler_seed"], result.out
    experiments = {e["id"]: e for e in result.report["experiments"]}
    assert experiments["no_threads"]["reference"] is None  # two unpinned runs of its own


@pytest.mark.e2e
@pytest.mark.slow
def test_a_parted_hash_seed_and_threads_pair_is_never_dropped_silently(tmp_path: Path) -> None:
    # was: the pair parted from full control, each control off alone reproduced, and nothing
    # said so; now a warning names the thread count
    result = cli(
        "diagnose", f"{FIXTURES / 'blas_dot.py'}:objective", "--trials", "6", cwd=tmp_path,
        env=_shell(), json_path=tmp_path / "d.json", timeout=300,
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    report = result.report
    assert [c["id"] for c in report["causes"]] == ["sampler_seed"], result.out
    ids = {e["id"]: e["verdict"] for e in report["experiments"]}
    if (os.cpu_count() or 1) > 1 and ids.get("no_hash_seed_threads") == "not reproducible":
        assert any("follow the thread count" in w for w in report["warnings"]), report["warnings"]


@pytest.mark.e2e
def test_a_thread_count_the_threads_control_would_not_apply_is_refused(tmp_path: Path) -> None:
    # was: `run train.py --threads 2` ran as written with the shell's threads, silently
    result = inprocess_cli("run", str(SCRIPTS / "string_set_order.py"), "--threads", "2")
    one_line_error(result, "--threads sets the count the threads control pins")
    pinned = cli(
        "run", str(SCRIPTS / "string_set_order.py"), "--runs", "2", "--controls", "threads",
        "--threads", "2", cwd=tmp_path, json_path=tmp_path / "r.json",
    )  # fmt: skip
    assert pinned.report["environment"]["threads"] == 2, pinned.out + pinned.err


def test_as_written_says_nothing_of_torch() -> None:
    """With no control that touches torch (a script's default), torch is neither armed nor
    mentioned: 'torch is not installed' on a script that never imports it was noise."""
    from repro_check.execution import controls as ctl
    from repro_check.plan.settings import Controls

    assert ctl.arm_torch(Controls.none(), seed=0, threads=1) == "not needed"
    assert ctl.torch_note("not needed") is None
    assert not ctl.touches_torch(Controls.only(["sampler_seed", "hash_seed"]))
    for name in ("threads", "global_rng", "trial_reseed", "torch_determinism", "cudnn"):
        assert ctl.touches_torch(Controls.only([name])), name
