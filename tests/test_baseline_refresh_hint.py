"""A baseline that differs says how to refresh it when the change is intended (issue 21,
item 9): the baseline line ends with the ``--save-baseline`` to rerun with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES, golden_report, inprocess_cli


@pytest.mark.e2e
def test_a_differing_baseline_says_how_to_refresh_it(tmp_path: Path) -> None:
    source = (FIXTURES / "deterministic.py").read_text()
    edited = tmp_path / "deterministic.py"
    edited.write_text(source.replace("n * (0.5 if", "n * (0.55 if"))
    target = f"{edited}:objective"
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(golden_report("objective_5_trials", target)))
    result = inprocess_cli(
        "run", target, "--trials", "5", "--runs", "2", "--baseline", str(baseline), cwd=tmp_path
    )
    assert result.code == 1, result.out + result.err
    text = " ".join(result.out.split())  # the console wraps at COLUMNS
    assert (
        f"; if that change is intended, rerun with --save-baseline {baseline} to refresh it" in text
    ), result.out
