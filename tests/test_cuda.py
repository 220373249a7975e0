"""CUDA checks: run on a machine with a GPU (skipped elsewhere, see conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli, fixture

pytestmark = [pytest.mark.cuda, pytest.mark.e2e]


def test_device_auto_picks_cuda_and_records_the_gpu(tmp_path: Path) -> None:
    result = cli(
        "run", fixture("torch_cpu"), "--trials", "3", "--runs", "2", json_path=tmp_path / "r.json"
    )
    assert result.code == 0, result.out + result.err
    assert result.report["settings"]["device"] == "cuda"
    assert result.report["environment"]["torch"]["gpus"]


def test_index_add_is_reproducible_only_with_deterministic_algorithms(tmp_path: Path) -> None:
    flags = ("--trials", "3", "--runs", "3", "--device", "cuda")
    controlled = cli("run", fixture("cuda_index_add"), *flags, json_path=tmp_path / "a.json")
    assert controlled.code == 0, controlled.out + controlled.err
    without = cli(
        "run",
        fixture("cuda_index_add"),
        *flags,
        "--controls",
        "sampler_seed,global_rng,trial_reseed,hash_seed,cudnn",
        json_path=tmp_path / "b.json",
    )
    assert without.code == 1, without.out + without.err
    assert without.report["divergence"]["field"] == "values"


def test_diagnose_reports_torch_determinism_for_index_add(tmp_path: Path) -> None:
    result = cli(
        "diagnose",
        fixture("cuda_index_add"),
        "--trials",
        "3",
        "--device",
        "cuda",
        json_path=tmp_path / "d.json",
    )
    assert result.code == 0, result.out + result.err
    causes = {c["id"]: c for c in result.report["causes"]}
    assert "torch_determinism" in causes
    assert "use_deterministic_algorithms(True)" in causes["torch_determinism"]["fix"]
    assert "CUBLAS_WORKSPACE_CONFIG" in causes["torch_determinism"]["fix"]


def test_op_without_deterministic_kernel_is_named(tmp_path: Path) -> None:
    run = cli(
        "run",
        fixture("cuda_no_kernel"),
        "--trials",
        "2",
        "--runs",
        "2",
        "--device",
        "cuda",
        json_path=tmp_path / "r.json",
    )
    assert run.code == 3, run.out + run.err
    errors = [r["error"] for r in run.report["runs"]]
    assert all("no deterministic implementation" in e for e in errors)
    diagnosis = cli(
        "diagnose",
        fixture("cuda_no_kernel"),
        "--trials",
        "2",
        "--device",
        "cuda",
        json_path=tmp_path / "d.json",
    )
    assert diagnosis.code == 0, diagnosis.out + diagnosis.err
    ops = diagnosis.report["nondeterministic_ops"]
    assert any("adaptive_avg_pool2d_backward" in op for op in ops), ops
    assert any("histc" in op for op in ops), ops
