"""The golden reports in tests/fixtures/reports are what ``run --json`` writes today.

The in-process tests of saved reports (tampering, schema, every reader) read these files
instead of running a check each, so they stay in the fast tier. This test runs each check
again and compares the report's shape (every key, the type of every value, every list's
length) with the golden one; the values themselves may move with an Optuna release without
making the golden any less a real report. When the format changes, regenerate them:

    python tests/test_golden_reports.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, GOLDEN_REPORTS

COMMANDS = {
    "objective_5_trials": ("deterministic.py:objective", "--trials", "5", "--runs", "2"),
    "objective_3_trials": ("deterministic.py:objective", "--trials", "3", "--runs", "2"),
    "script_two_studies": ("script_two_studies.py", "--runs", "2"),
}
"""Each golden report and the ``run`` that writes it, from tests/fixtures."""

MACHINE = "environment"
"""The machine's description: its keys name the installed packages, so only its presence is
compared."""


def write_report(name: str, path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    argv = [sys.executable, "-m", "repro_check", "run", *COMMANDS[name], "--json", str(path)]
    proc = subprocess.run(argv, cwd=FIXTURES, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def shape(value: Any, key: str = "") -> Any:
    """What a report holds, without its values: keys, value types, list lengths (but not how
    many strings a list of them holds: notes)."""
    if key == MACHINE:
        return MACHINE
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "list of strings"  # notes: how many (none too) depends on the shell
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return type(value).__name__


def test_shape_sees_a_missing_key_a_new_type_and_a_shorter_list() -> None:
    report = {"runs": [{"trials": [1.5, 2]}], MACHINE: {"numpy": "2"}, "note": None}
    assert shape(report) == shape({**report, MACHINE: {"torch": "2"}})
    assert shape(report) != shape({**report, "note": "x"})
    assert shape(report) != shape({**report, "runs": [{"trials": [1.5]}]})
    assert shape(report) != shape({k: v for k, v in report.items() if k != "note"})


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_golden_report_is_what_run_writes_today(name: str, tmp_path: Path) -> None:
    fresh = tmp_path / f"{name}.json"
    write_report(name, fresh)
    golden = json.loads((GOLDEN_REPORTS / f"{name}.json").read_text())
    assert shape(golden) == shape(json.loads(fresh.read_text())), (
        f"{name}.json is stale: regenerate with `python tests/test_golden_reports.py`"
    )


if __name__ == "__main__":
    for report in COMMANDS:
        write_report(report, GOLDEN_REPORTS / f"{report}.json")
        print(f"wrote {GOLDEN_REPORTS / report}.json")
