"""Issue 12: diagnose names the line where the randomness enters (the entropy audit), for
objectives and scripts, and a clean objective gets no located cause."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli, fixture

ENTROPY = FIXTURES / "entropy"


def diagnose(target: str, tmp_path: Path, *flags: str) -> dict[str, Any]:
    out = tmp_path / "diagnose.json"
    result = cli("diagnose", target, *flags, "--json", str(out))
    assert result.code == 0, result.out + result.err
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("name", "line", "fix"),
    [
        ("default_rng", 8, "np.random.default_rng() has no seed: np.random.default_rng(0)"),
        ("urandom_late", 9, "os.urandom differs in every process"),
        ("secrets_noise", 7, "secrets.randbelow differs in every process"),
        ("unseeded_random", 7, "random.Random() has no seed: random.Random(0)"),
        ("uuid_noise", 7, "uuid.uuid4 differs in every process"),
    ],
)
def test_each_entropy_source_is_named_at_its_line(
    name: str, line: int, fix: str, tmp_path: Path
) -> None:
    diagnosis = diagnose(f"{ENTROPY / name}.py:objective", tmp_path, "--trials", "16")
    causes = diagnosis["causes"]
    assert [c["id"] for c in causes] == ["objective_noise"]
    location = causes[0]["location"]
    assert location is not None and location["line"] == line
    assert location["file"].endswith(f"{name}.py")
    assert fix in causes[0]["fix"] and causes[0]["fix"].split(":")[1] == str(line)


def test_a_wall_clock_budget_is_named_as_a_suspect(tmp_path: Path) -> None:
    diagnosis = diagnose(f"{ENTROPY / 'clock_budget.py'}:objective", tmp_path, "--trials", "8")
    lines = sorted(c["location"]["line"] for c in diagnosis["causes"])
    assert lines == [8, 10]
    assert all("reads the clock" in c["fix"] for c in diagnosis["causes"])


def test_the_audit_locates_noise_in_a_script(tmp_path: Path) -> None:
    diagnosis = diagnose(str(ENTROPY / "script_default_rng.py"), tmp_path)
    located = [c for c in diagnosis["causes"] if c["location"] is not None]
    assert [c["location"]["line"] for c in located] == [8]
    assert "default_rng() has no seed" in located[0]["fix"]


def test_a_clean_objective_gets_no_located_cause(tmp_path: Path) -> None:
    diagnosis = diagnose(fixture("deterministic"), tmp_path, "--trials", "6")
    assert all(c["location"] is None for c in diagnosis["causes"])


def test_the_line_tracer_finds_where_two_processes_part(tmp_path: Path) -> None:
    """A generator seeded from the process id: no source the audit knows, so the noise probe
    and the line tracer find the line (``seed = os.getpid()``) and the local that differs."""
    diagnosis = diagnose(f"{ENTROPY / 'pid_seed.py'}:objective", tmp_path, "--trials", "5")
    cause = diagnosis["causes"][0]
    assert cause["id"] == "objective_noise"
    assert cause["location"]["line"] == 10
    assert cause["location"]["source"] == "seed = os.getpid()"
    assert "first line where two processes part" in cause["evidence"]
    assert "seed = " in cause["evidence"]
    assert "line_trace" in [e["id"] for e in diagnosis["experiments"]]


def test_first_split_names_the_line_that_set_the_differing_local() -> None:
    from repro_check.execution.linetrace import first_split

    a = [["f.py", 3, {}], ["f.py", 4, {"x": ["i:1", "1"]}], ["f.py", 5, {"x": ["i:1", "1"]}]]
    b = [["f.py", 3, {}], ["f.py", 4, {"x": ["i:2", "2"]}], ["f.py", 5, {"x": ["i:2", "2"]}]]
    split = first_split(a, b)
    assert split is not None and (split.line, split.local, split.values) == (3, "x", ("1", "2"))
    assert first_split(a, a) is None
    paths = [["f.py", 3, {}], ["f.py", 9, {}]]
    other = first_split(a, paths)
    assert other is not None and other.line == 3 and other.local is None


def test_run_never_audits_nor_traces() -> None:
    from repro_check.execution.replicates import replicate_jobs
    from repro_check.plan.config import build_plan

    plan = build_plan(fixture("deterministic"), {}, pyproject=False)
    jobs = replicate_jobs(plan)
    assert jobs and not any(job.audit or job.trace for job in jobs)
    assert not any(job.payload("t", 1, "cpu")["trace"] for job in jobs)


def test_the_first_differing_torch_op_is_named(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    diagnosis = diagnose(f"{ENTROPY / 'torch_pid.py'}:objective", tmp_path, "--trials", "4")
    cause = diagnosis["causes"][0]
    assert cause["location"]["line"] == 11
    assert "first torch op whose output differs: aten.randn" in cause["evidence"]
    assert "torch_pid.py:11" in cause["evidence"]
