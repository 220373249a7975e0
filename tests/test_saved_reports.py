"""Saved reports cannot lie (issue 8, items 3 and 4): a tampered or hostile file is refused with
one line and exit 2, or judged by the command's rules and tolerance, never by its own."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import cli, fixture, golden_report, inprocess_cli, one_line_error

FLAGS = ("--trials", "5", "--runs", "2")


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    """A real saved report of a reproducible check (2 runs x 5 trials): the one
    ``run deterministic.py:objective --trials 5 --runs 2 --json`` wrote, kept in
    tests/fixtures/reports so that the tests reading it start no process
    (``tests/test_golden_reports.py`` checks it is what the command writes today)."""
    return golden_report("objective_5_trials", fixture("deterministic"))


def write(tmp_path: Path, data: Any, name: str = "r.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def not_reproducible(good: dict[str, Any], delta: float = 1.0) -> dict[str, Any]:
    """The good report with run 1's trial 2 moved by ``delta``: its runs disagree."""
    data = copy.deepcopy(good)
    data["runs"][1]["trials"][2]["values"][0] += delta
    return data


def every_reader(path: Path, other: Path) -> list[tuple[str, ...]]:
    return [
        ("report", str(path)),
        ("diff", str(other), str(path)),
        ("run", fixture("deterministic"), *FLAGS, "--baseline", str(path)),
    ]


# --- the gate's tolerance is the command's, never the file's ---------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("atol", [1e308, 0.5])
def test_a_loose_tolerance_in_the_file_does_not_pass_report_or_diff(
    good: dict[str, Any], tmp_path: Path, atol: float
) -> None:
    data = not_reproducible(good, delta=1e-3)
    data["settings"]["tolerance"]["atol"] = atol
    path = write(tmp_path, data)
    report = cli("report", str(path), json_path=tmp_path / "out.json")
    assert report.code == 1, report.out + report.err
    assert report.report["verdict"] == "not reproducible"
    assert report.report["settings"]["tolerance"]["atol"] == 0.0  # the tolerance used
    assert any("not the file's" in note for note in report.report["notes"])
    diff = cli("diff", str(path), str(path), json_path=tmp_path / "d.json")
    assert diff.code == 1, diff.out + diff.err
    assert "SAME RESULTS" not in diff.out
    assert diff.report["same_results"] is False
    # the command's own tolerance is what loosens the comparison
    loose = cli("report", str(path), "--atol", "0.01")
    assert loose.code == 0, loose.out + loose.err


@pytest.mark.e2e
@pytest.mark.parametrize("value", ["Infinity", "NaN", "1e-6", -1.0, True])
def test_a_saved_tolerance_must_be_a_finite_number(
    good: dict[str, Any], tmp_path: Path, value: Any
) -> None:
    data = copy.deepcopy(good)
    data["settings"]["tolerance"]["atol"] = value
    path = write(tmp_path, data)
    one_line_error(inprocess_cli("report", str(path)), "report.settings.tolerance.atol")


def test_a_json_overflow_to_infinity_is_refused(good: dict[str, Any], tmp_path: Path) -> None:
    text = json.dumps(good).replace('"atol": 0.0', '"atol": 1e400')
    assert "1e400" in text
    one_line_error(inprocess_cli("report", str(write(tmp_path, text))), "tolerance.atol")


@pytest.mark.e2e
def test_baseline_judged_with_the_checks_tolerance_against_all_its_runs(
    good: dict[str, Any], tmp_path: Path
) -> None:
    """A baseline whose own runs disagree matches nothing, whatever tolerance it claims."""
    data = not_reproducible(good)
    data["settings"]["tolerance"]["atol"] = 1e308
    path = write(tmp_path, data, "baseline.json")
    result = cli(
        "run", fixture("deterministic"), *FLAGS, "--baseline", str(path), json_path=tmp_path / "o"
    )
    assert result.code == 1, result.out + result.err
    assert result.report["verdict"] == "differs from baseline"
    assert result.report["baseline"]["divergence"]["trial"] == 2
    assert result.report["baseline"]["divergence"]["runs"][0] == -1


# --- saved settings and runs obey the rules of a live run ------------------------------------


def test_one_run_is_not_a_check(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)
    data["settings"]["runs"] = 1
    data["runs"] = data["runs"][:1]
    path = write(tmp_path, data)
    for argv in every_reader(path, write(tmp_path, good, "good.json")):
        one_line_error(inprocess_cli(*argv), "report.settings.runs")


def test_trials_cut_below_the_settings_are_refused(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)
    for run in data["runs"]:
        run["trials"] = run["trials"][:3]
    path = write(tmp_path, data)
    for argv in every_reader(path, write(tmp_path, good, "good.json")):
        one_line_error(
            inprocess_cli(*argv), "report.runs[0].trials: a finished run holds trials 0..4"
        )


def test_a_repeated_trial_is_refused(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)
    for run in data["runs"]:
        run["trials"][4] = copy.deepcopy(run["trials"][3])
    one_line_error(inprocess_cli("report", str(write(tmp_path, data))), "trial 3 appears twice")


def test_two_copies_of_run_0_are_refused(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)
    data["runs"] = [data["runs"][0], copy.deepcopy(data["runs"][0])]
    path = write(tmp_path, data)
    for argv in every_reader(path, write(tmp_path, good, "good.json")):
        one_line_error(inprocess_cli(*argv), "report.runs[1].index: run 0 appears twice")


def test_a_run_index_beyond_the_settings_is_refused(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)
    data["runs"][1]["index"] = 7
    one_line_error(inprocess_cli("report", str(write(tmp_path, data))), "but settings.runs is 2")


@pytest.mark.e2e
def test_a_crashed_run_with_replicates_awaited_is_not_a_pass(
    good: dict[str, Any], tmp_path: Path
) -> None:
    data = copy.deepcopy(good)
    data["settings"]["runs"] = 3
    data["runs"][1]["status"] = "crashed"
    data["runs"][1]["error"] = "worker died"
    data["awaiting"] = 1
    result = cli("report", str(write(tmp_path, data)), json_path=tmp_path / "o.json")
    assert result.code == 3, result.out + result.err
    assert result.report["verdict"] == "incomplete"


@pytest.mark.e2e
def test_a_saved_report_still_awaiting_replicates_is_not_a_pass(
    good: dict[str, Any], tmp_path: Path
) -> None:
    data = copy.deepcopy(good)
    data["settings"]["runs"] = 3
    data["awaiting"] = 1
    result = cli("report", str(write(tmp_path, data)), json_path=tmp_path / "o.json")
    assert result.code == 3, result.out + result.err
    assert result.report["verdict"] == "awaiting replicates"


def test_more_runs_than_planned_are_refused(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)
    data["awaiting"] = 1
    one_line_error(
        inprocess_cli("report", str(write(tmp_path, data))), "1 awaiting, but settings.runs is 2"
    )


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("settings.fail_fast", "no", "report.settings.fail_fast: expected true or false"),
        ("settings.workers", "many", "report.settings.workers: expected an integer >= 1"),
        ("settings.n_jobs", 0, "report.settings.n_jobs"),
        ("settings.sampler", "sideways", "report.settings.sampler"),
        ("settings.pruner", "sometimes", "report.settings.pruner"),
        ("settings.timeout", -1, "report.settings.timeout"),
        ("settings.controls.cudnn", "yes", "report.settings.controls.cudnn"),
        ("schema_version", True, "schema_version"),
        ("exit_code", "zero", "report.exit_code"),
        ("verdict", 5, "report.verdict"),
        ("reproducible", "yes", "report.reproducible"),
        ("interrupted", None, "report.interrupted"),
        ("summary.distinct_histories", "one", "report.summary.distinct_histories"),
        ("divergence", "none", "report.divergence"),
        ("baseline", {"path": "b.json", "matches": "no", "divergence": None}, "baseline.matches"),
        ("environment.cpu_count", "x", "report.environment.cpu_count"),
        ("environment.packages.numpy", 2, "report.environment.packages.numpy"),
        ("runs.0.wall_s", "fast", "report.runs[0].wall_s"),
        ("runs.0.environment_fingerprint", 12, "report.runs[0].environment_fingerprint"),
        ("runs.0.seed", 3, "report.runs[0].seed"),
        ("runs.0.trials.0.duration_s", "1s", "report.runs[0].trials[0].duration_s"),
        ("runs.0.trials.0.params.x", [1], "report.runs[0].trials[0].params.x"),
    ],
)
def test_every_field_has_its_documented_type(
    good: dict[str, Any], tmp_path: Path, key: str, value: Any, fragment: str
) -> None:
    data = copy.deepcopy(good)
    *parents, last = key.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    target[last] = value
    one_line_error(inprocess_cli("report", str(write(tmp_path, data))), fragment)


def test_a_removed_field_is_refused(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)
    del data["interrupted"]
    one_line_error(
        inprocess_cli("report", str(write(tmp_path, data))), "report.interrupted: missing"
    )


# --- diff compares every run and says each side's own verdict --------------------------------


@pytest.mark.e2e
def test_diff_of_a_non_reproducible_report_with_itself_is_not_same_results(
    good: dict[str, Any], tmp_path: Path
) -> None:
    path = write(tmp_path, not_reproducible(good))
    result = cli("diff", str(path), str(path), json_path=tmp_path / "d.json")
    assert result.code == 1, result.out + result.err
    assert "SAME RESULTS" not in result.out
    assert "A's own runs part at trial 2 (values)" in result.out
    assert "Compared: every finished run of both reports" in result.out
    report = result.report
    assert report["same_results"] is False and report["result"] == "different results"
    assert report["a"]["verdict"] == report["b"]["verdict"] == "not reproducible"
    assert report["a"]["runs_compared"] == [0, 1]
    assert report["divergence"]["runs"][:2] == ["A run 0", "A run 1"]
    assert "every finished run" in report["compared"]


@pytest.mark.e2e
def test_diff_of_a_good_report_with_itself_is_same_results(
    good: dict[str, Any], tmp_path: Path
) -> None:
    path = write(tmp_path, good)
    result = cli("diff", str(path), str(path), json_path=tmp_path / "d.json")
    assert result.code == 0, result.out + result.err
    assert "SAME RESULTS" in result.out
    assert result.report["a"]["verdict"] == "reproducible"
    assert result.report["b"]["runs_compared"] == [0, 1]


@pytest.mark.e2e
def test_diff_where_a_run_of_b_differs_from_all_of_a(good: dict[str, Any], tmp_path: Path) -> None:
    """B's run 1 differs: comparing only B's first run would miss it."""
    a = write(tmp_path, good, "a.json")
    b = write(tmp_path, not_reproducible(good), "b.json")
    result = cli("diff", str(a), str(b), json_path=tmp_path / "d.json")
    assert result.code == 1
    assert result.report["divergence"]["runs"] == ["A run 0", "B run 1"]
    assert result.report["a"]["verdict"] == "reproducible"
    assert result.report["b"]["verdict"] == "not reproducible"


@pytest.mark.e2e
def test_diff_with_a_crashed_run_is_incomplete(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)
    data["runs"][1]["status"] = "crashed"
    data["runs"][1]["trials"] = data["runs"][1]["trials"][:2]
    a, b = write(tmp_path, good, "a.json"), write(tmp_path, data, "b.json")
    result = cli("diff", str(a), str(b), json_path=tmp_path / "d.json")
    assert result.code == 3, result.out + result.err
    assert result.report["result"] == "incomplete"
    assert result.report["b"]["runs_not_finished"] == [1]


# --- hostile files: one line, exit 2, never a hang or a traceback ----------------------------


@pytest.mark.e2e
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_dev_zero_is_refused_at_once(good: dict[str, Any], tmp_path: Path) -> None:
    other = write(tmp_path, good)
    for argv in every_reader(Path("/dev/zero"), other):
        one_line_error(cli(*argv, timeout=60), "not a regular file")


@pytest.mark.e2e
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_hanging(good: dict[str, Any], tmp_path: Path) -> None:
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    other = write(tmp_path, good, "good.json")
    for argv in every_reader(fifo, other):
        one_line_error(cli(*argv, timeout=60), "not a regular file")  # a hang: TimeoutExpired


def test_report_tolerance_flags_are_refused_for_a_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    one_line_error(
        inprocess_cli("report", "--storage", url, "--name", "n", "--atol", "1"), "--atol/--rtol"
    )


def test_a_directory_is_refused(tmp_path: Path) -> None:
    one_line_error(inprocess_cli("report", str(tmp_path)), "is a directory")


@pytest.mark.e2e
@pytest.mark.parametrize("where", ["target", "note", "error", "user_attr", "param_name"])
def test_a_huge_string_is_refused_quickly(good: dict[str, Any], tmp_path: Path, where: str) -> None:
    huge = "x" * 20_000_000
    data = copy.deepcopy(good)
    if where == "target":
        data["target"] = huge
    elif where == "note":
        data["notes"] = [huge]
    elif where == "error":
        data["runs"][0]["error"] = huge
    elif where == "user_attr":
        data["runs"][0]["trials"][0]["user_attrs"] = {"blob": huge}
    else:
        data["runs"][0]["trials"][0]["params"] = {huge: 1.0}
    line = one_line_error(cli("report", str(write(tmp_path, data)), timeout=120))
    assert len(line) < 500


@pytest.mark.e2e
def test_long_strings_within_the_bound_render(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)
    data["settings"]["runs"] = 2
    data["runs"][1]["status"] = "error"
    data["runs"][1]["error"] = "y" * 60_000
    data["notes"] = ["z" * 60_000]
    result = cli("report", str(write(tmp_path, data)), timeout=120)
    assert result.code == 3, result.err
    assert "yyyy" in result.out


@pytest.mark.parametrize("depth", [500, 900])
@pytest.mark.parametrize(
    "where", ["user_attrs", "system_attrs", "distributions", "environment", "sampler_kwargs"]
)
def test_deep_nesting_is_refused(
    good: dict[str, Any], tmp_path: Path, depth: int, where: str
) -> None:
    deep = "[" * depth + "]" * depth
    data = copy.deepcopy(good)
    marker = "__DEEP__"
    if where in ("user_attrs", "system_attrs", "distributions"):
        data["runs"][0]["trials"][0][where] = {"nested": marker}
    elif where == "environment":
        data["environment"]["extra"] = marker
    else:
        data["settings"]["sampler_kwargs"] = {"nested": marker}
    text = json.dumps(data).replace(f'"{marker}"', deep)
    path = write(tmp_path, text)
    for argv in every_reader(path, write(tmp_path, good, "good.json"))[:2]:
        one_line_error(inprocess_cli(*argv), "nested deeper than")


@pytest.mark.parametrize("where", ["target", "note", "user_attr_key"])
def test_a_lone_surrogate_is_refused(good: dict[str, Any], tmp_path: Path, where: str) -> None:
    data = copy.deepcopy(good)
    marker = "SURROGATE_HERE"
    if where == "target":
        data["target"] = marker
    elif where == "note":
        data["notes"] = [marker]
    else:
        data["runs"][0]["trials"][0]["user_attrs"] = {marker: 1}
    text = json.dumps(data).replace(marker, "bad\\ud800")
    path = write(tmp_path, text)
    for argv in every_reader(path, write(tmp_path, good, "good.json")):
        one_line_error(inprocess_cli(*argv), "lone surrogate")


@pytest.mark.e2e
def test_paired_surrogate_escapes_are_fine(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)
    data["runs"][0]["trials"][0]["user_attrs"] = {"emoji": "EMOJI"}
    data["runs"][1]["trials"][0]["user_attrs"] = {"emoji": "EMOJI"}
    text = json.dumps(data).replace("EMOJI", "\\ud83d\\ude00")
    result = cli("report", str(write(tmp_path, text)))
    assert result.code == 0, result.err


# --- the schema is published and used ---------------------------------------------------------


def test_the_schema_ships_in_the_package_and_describes_real_reports(
    good: dict[str, Any],
) -> None:
    from repro_check.results import validate

    schema = validate.report_schema()
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")
    assert schema["definitions"]["settings"]["properties"]["runs"]["minimum"] == 2
    assert schema["definitions"]["settings"]["properties"]["runs"]["maximum"] == validate.MAX_COUNT
    trial = schema["definitions"]["trial"]["properties"]
    assert trial["error"]["maxLength"] == validate.MAX_TEXT
    validate.check_report_data(copy.deepcopy(good), "good.json")  # no error


def test_the_shipped_schema_is_the_one_the_types_generate() -> None:
    """report.schema.json is generated from results.saved's types, never edited by hand:
    ``python -c "from repro_check.results import saved_schema; saved_schema.write_schema()"``
    rewrites it."""
    from repro_check.results import saved_schema, validate

    assert validate.report_schema() == saved_schema.report_schema()


@pytest.mark.e2e
def test_help_does_not_import_the_schema_library() -> None:
    code = (
        "import sys, runpy\n"
        "sys.argv = ['repro-check', '--help']\n"
        "try:\n    runpy.run_module('repro_check', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "assert 'msgspec' not in sys.modules, 'imported at start-up'\n"
        "print('ok', file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "ok" in proc.stderr, proc.stderr


def test_control_characters_in_a_field_name_stay_on_one_line(
    good: dict[str, Any], tmp_path: Path
) -> None:
    data = copy.deepcopy(good)
    data["runs"][0]["trials"][0]["params"]["a\nb\x1b[31m"] = [1]
    line = one_line_error(
        inprocess_cli("report", str(write(tmp_path, data))), "params.a\\nb\\x1b[31m"
    )
    assert "\x1b" not in line


@pytest.mark.e2e
def test_a_file_over_the_size_bound_is_refused_unread(tmp_path: Path) -> None:
    from repro_check.results import validate

    big = tmp_path / "big.json"
    with big.open("wb") as handle:  # sparse: no disk used, nothing worth reading
        handle.truncate(validate.MAX_REPORT_BYTES + 1)
    one_line_error(cli("report", str(big), timeout=60), "report too large")


def test_the_schema_bounds_counts_as_the_validator_says() -> None:
    import json
    from importlib import resources

    from repro_check.results.validate import MAX_COUNT, SCHEMA_RESOURCE

    text = resources.files("repro_check").joinpath(*SCHEMA_RESOURCE).read_text()
    maxima = {int(m) for m in __import__("re").findall(r'"maximum": (\d+)', text)}
    assert MAX_COUNT in maxima
    assert json.loads(text)  # the shipped schema is valid JSON


@pytest.mark.e2e
def test_a_large_intermediate_step_reads_back(good: dict[str, Any], tmp_path: Path) -> None:
    """Optuna takes any int step: a report of trial.report(v, step=10**15) must read back as the
    live run wrote it (the schema used to cap steps at 12 digits)."""
    data = copy.deepcopy(good)
    for run in data["runs"]:
        run["trials"][0]["intermediate_values"] = {str(10**15): 0.5}
    result = cli("report", str(write(tmp_path, data)))
    assert result.code == 0, result.err


def test_complete_trial_without_values_is_bad_input(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)  # a real saved report (the module's), changed in a copy only
    data["runs"][0]["trials"][0]["values"] = []
    data["runs"][1]["wall_s"] = "NaN"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = inprocess_cli("report", str(bad))
    assert result.code == 2, result.err
    assert "values" in result.err and len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("value", [[1], "constraints", 3, None])
@pytest.mark.parametrize("key", ["system_attrs", "distributions"])
def test_a_trials_system_attrs_and_distributions_must_be_objects(
    good: dict[str, Any], tmp_path: Path, key: str, value: Any
) -> None:
    data = copy.deepcopy(good)
    data["runs"][0]["trials"][0][key] = value
    path = write(tmp_path, data)
    for argv in every_reader(path, write(tmp_path, good, "good.json"))[:2]:
        one_line_error(inprocess_cli(*argv), key)


def test_a_report_saved_before_system_attrs_were_recorded_still_loads_and_matches(
    good: dict[str, Any], tmp_path: Path
) -> None:
    data = copy.deepcopy(good)
    assert "system_attrs" in data["runs"][0]["trials"][0]
    for saved in data["runs"]:
        for t in saved["trials"]:
            del t["system_attrs"], t["distributions"]
    old, new = write(tmp_path, data, "old.json"), write(tmp_path, good, "new.json")
    assert inprocess_cli("report", str(old)).code == 0
    diff = inprocess_cli("diff", str(old), str(new))
    assert diff.code == 0, diff.out + diff.err
    # a hand-edited constraint that is not a number is still compared, never a traceback
    edited = copy.deepcopy(good)
    edited["runs"][1]["trials"][0]["system_attrs"]["constraints"] = ["not a number"]
    result = inprocess_cli("report", str(write(tmp_path, edited, "edited.json")))
    assert result.code == 1, result.out + result.err
