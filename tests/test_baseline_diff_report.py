"""Baselines, `diff` and `report`: saved reports as CI artefacts and as untrusted input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli, fixture, golden_report, inprocess_cli

FLAGS = ("--trials", "5", "--runs", "2")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A baseline saved from the deterministic fixture, and the console output of that run."""
    folder = tmp_path_factory.mktemp("baseline")
    path = folder / "baseline.json"
    result = cli("run", fixture("deterministic"), *FLAGS, "--save-baseline", str(path))
    assert result.code == 0, result.err
    return path, result.out


@pytest.fixture
def golden(tmp_path: Path) -> Path:
    """A real finished run's report, from tests/fixtures/reports (no check runs): for the
    tests that only read or tamper with a saved file."""
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(golden_report("objective_5_trials", fixture("deterministic"))))
    return path


def edited_objective(tmp_path: Path) -> str:
    source = (FIXTURES / "deterministic.py").read_text()
    changed = source.replace("n * (0.5 if", "n * (0.55 if")
    assert changed != source
    path = tmp_path / "deterministic.py"
    path.write_text(changed)
    return f"{path}:objective"


@pytest.mark.e2e
def test_baseline_round_trip_passes(saved: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = saved
    result = cli(
        "run",
        fixture("deterministic"),
        *FLAGS,
        "--baseline",
        str(path),
        json_path=tmp_path / "r.json",
    )
    assert result.code == 0, result.out + result.err
    assert result.report["baseline"]["matches"] is True
    assert result.report["verdict"] == "reproducible"
    assert "matches baseline" in result.out


@pytest.mark.e2e
def test_edited_constant_differs_from_baseline(saved: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = saved
    result = cli(
        "run",
        edited_objective(tmp_path),
        *FLAGS,
        "--baseline",
        str(path),
        json_path=tmp_path / "r.json",
    )
    assert result.code == 1, result.out + result.err
    report = result.report
    assert report["reproducible"] is True  # the replicates still agree with each other
    assert report["verdict"] == "differs from baseline"
    assert report["baseline"]["matches"] is False
    assert report["baseline"]["divergence"]["trial"] == 0
    assert report["baseline"]["divergence"]["field"] == "values"
    assert report["baseline"]["best_value_before"] != report["baseline"]["best_value_now"]
    assert "DIFFERS FROM BASELINE" in result.out
    assert "differs from baseline" in result.out


@pytest.mark.e2e
def test_baseline_with_other_settings_is_refused(saved: tuple[Path, str]) -> None:
    path, _ = saved
    result = inprocess_cli(
        "run",
        fixture("deterministic"),
        "--trials",
        "6",
        "--runs",
        "2",
        "--sampler",
        "random",
        "--baseline",
        str(path),
    )
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1
    assert "trials: 5 in the baseline, 6 now" in lines[0]
    assert "sampler: 'tpe' in the baseline, 'random' now" in lines[0]
    assert result.out == ""  # refused before anything ran


@pytest.mark.e2e
def test_allow_settings_change_compares_anyway(saved: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = saved
    result = cli(
        "run",
        fixture("deterministic"),
        "--trials",
        "6",
        "--runs",
        "2",
        "--baseline",
        str(path),
        "--allow-settings-change",
        json_path=tmp_path / "r.json",
    )
    assert result.code == 1, result.err  # the 6th trial is not in the baseline
    assert result.report["baseline"]["settings_changed"] == ["trials: 5 in the baseline, 6 now"]
    assert result.report["baseline"]["divergence"]["field"] == "trial_count"


@pytest.mark.e2e
def test_report_re_renders_exactly(saved: tuple[Path, str]) -> None:
    path, original = saved
    result = cli("report", str(path))
    assert result.code == 0, result.err
    assert result.out == original


def write_variant(tmp_path: Path, base: Path, name: str, **changes: Any) -> Path:
    data = json.loads(base.read_text())
    for key, value in changes.items():
        target = data
        *parents, last = key.split("__")
        for parent in parents:
            target = target[parent]
        target[last] = value
    out = tmp_path / name
    out.write_text(json.dumps(data))
    return out


@pytest.mark.e2e
def test_diff_lists_differing_packages_first(saved: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = saved
    other = write_variant(
        tmp_path,
        path,
        "gpu.json",
        environment__packages__numpy="1.26.4",
        environment__python="3.12.3",
        environment__cpu="Other CPU",
    )
    result = cli("diff", str(path), str(other), json_path=tmp_path / "d.json")
    assert result.code == 0, result.out + result.err  # same results, different machines
    rows = result.report["environment"]
    differing = [r["key"] for r in rows if r["differs"]]
    assert differing == ["packages.numpy", "cpu", "python"]
    assert [r["key"] for r in rows[:3]] == differing
    assert result.report["same_results"] is True
    out = result.out
    assert (
        out.index("packages.numpy") < out.index("python") < out.index("Environments")
        if ("Environments" in out)
        else out.index("packages.numpy") < out.index("python")
    )
    assert "SAME RESULTS" in out


@pytest.mark.e2e
def test_diff_of_different_results_exits_1(saved: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = saved
    data = json.loads(path.read_text())
    for run in data["runs"]:
        run["trials"][2]["values"] = [123.0]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    result = cli("diff", str(path), str(other), json_path=tmp_path / "d.json")
    assert result.code == 1
    assert result.report["divergence"]["trial"] == 2
    assert "DIFFERENT RESULTS: they part at trial 2 (values)" in result.out


HOSTILE: dict[str, str] = {
    "truncated": '{"schema_version": 1, "command": "run", "runs": [',
    "not_json": "this is not json",
    "nan_literal": '{"schema_version": NaN}',
    "array": "[1, 2, 3]",
    "unknown_schema": '{"schema_version": 99, "command": "run"}',
    "other_command": '{"schema_version": 1, "command": "diagnose"}',
    "deep": "[" * 100_000 + "]" * 100_000,
    "huge_int": '{"schema_version": ' + "9" * 5000 + "}",
    "huge_float": '{"schema_version": 1e400, "command": "run"}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_inputs_get_one_line_and_exit_2(golden: Path, tmp_path: Path, name: str) -> None:
    path = golden
    bad = tmp_path / f"{name}.json"
    bad.write_text(HOSTILE[name])
    for argv in (
        ("diff", str(path), str(bad)),
        ("report", str(bad)),
        ("run", fixture("deterministic"), "--baseline", str(bad)),
    ):
        result = inprocess_cli(*argv)
        assert result.code == 2, (argv, result.err)
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.err
        assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"runs": "x"}, "report.runs: expected a list"),
        ({"settings__trials": 2.5}, "report.settings.trials: expected an integer"),
        ({"settings__trials": 10**30}, "report.settings.trials"),
        ({"settings__directions": ["sideways"]}, "report.settings.directions"),
        ({"runs": [{"index": 0}]}, "report.runs[0].seed"),
        ({"target": {"$eval": "__import__('os')"}}, "report.target: expected a string"),
    ],
)
def test_wrong_types_name_the_field(
    golden: Path, tmp_path: Path, change: dict[str, Any], fragment: str
) -> None:
    path = golden
    bad = write_variant(tmp_path, path, "bad.json", **change)
    result = inprocess_cli("report", str(bad))
    assert result.code == 2
    assert fragment in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1


def test_missing_file() -> None:
    result = inprocess_cli("diff", "nope-a.json", "nope-b.json")
    assert result.code == 2
    assert result.err.strip() == "error: no such file: nope-a.json"


def test_baseline_and_diff_need_a_finished_run(golden: Path, tmp_path: Path) -> None:
    ok = golden  # a finished run's report, not changed here
    data = json.loads(ok.read_text())
    for run in data["runs"]:
        run["status"] = "cancelled"
        run["trials"] = run["trials"][:1]
    lag = tmp_path / "lag.json"
    lag.write_text(json.dumps(data))
    baseline = inprocess_cli("run", fixture("deterministic"), *FLAGS, "--baseline", str(lag))
    assert baseline.code == 2 and "no finished run" in baseline.err
    diff = inprocess_cli("diff", str(lag), str(ok))
    assert diff.code == 2 and "no finished run" in diff.err
