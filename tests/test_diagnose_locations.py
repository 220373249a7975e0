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
