"""Saved reports of script mode (issue 11, item 6): ``report``, ``diff`` and ``--baseline`` read a
script's report and compare every study it made, not only the first; a tampered script report is
refused with one line and exit 2, like any other saved report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, cli, fixture, golden_report, inprocess_cli, one_line_error

SCRIPT = str(FIXTURES / "script_two_studies.py")
"""Two seeded studies: "a" (maximize, the run's own trials) and "b" (minimize), 3 trials each."""
RUNS = ("--runs", "2")


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    """A real saved report of a reproducible script check (2 runs, studies a and b), kept in
    tests/fixtures/reports (``tests/test_golden_reports.py`` checks it is current)."""
    data = golden_report("script_two_studies", SCRIPT)
    assert data["mode"] == "script"
    assert [s["name"] for s in data["runs"][0]["studies"]] == ["a", "b"]
    return data


@pytest.fixture(scope="module")
def objective() -> dict[str, Any]:
    """A real saved report of an objective check (2 runs x 3 trials), kept in
    tests/fixtures/reports (``tests/test_golden_reports.py`` checks it is current)."""
    data = golden_report("objective_3_trials", fixture("deterministic"))
    assert data["mode"] == "objective"
    return data


def write(tmp_path: Path, data: Any, name: str = "r.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def second_study_differs(good: dict[str, Any], delta: float = 1e-9) -> dict[str, Any]:
    """The good report with run 1's study "b" trial 2 moved by ``delta``: study a agrees."""
    data = copy.deepcopy(good)
    data["runs"][1]["studies"][1]["trials"][2]["values"][0] += delta
    return data


def every_reader(path: Path, other: Path) -> list[tuple[str, ...]]:
    return [
        ("report", str(path)),
        ("diff", str(other), str(path)),
        ("run", SCRIPT, *RUNS, "--baseline", str(path)),
    ]


# --- a script report loads, and its verdict covers every study --------------------------------


@pytest.mark.e2e
def test_a_script_report_reads_back_with_its_own_verdict(
    good: dict[str, Any], tmp_path: Path
) -> None:
    """The first cut refused its own script reports (trials 0..19 of settings.trials)."""
    result = cli("report", str(write(tmp_path, good)), json_path=tmp_path / "out.json")
    assert result.code == 0, result.out + result.err
    assert result.report["mode"] == "script"
    assert result.report["verdict"] == "reproducible"
    assert [s["name"] for s in result.report["runs"][1]["studies"]] == ["a", "b"]


@pytest.mark.e2e
def test_report_of_a_script_whose_second_study_differs_is_not_reproducible(
    good: dict[str, Any], tmp_path: Path
) -> None:
    result = cli(
        "report", str(write(tmp_path, second_study_differs(good))), json_path=tmp_path / "o.json"
    )
    assert result.code == 1, result.out + result.err
    assert result.report["verdict"] == "not reproducible"
    assert any("study 1 'b'" in note for note in result.report["notes"])


@pytest.mark.e2e
def test_a_crashed_script_run_without_studies_is_incomplete_and_says_so(
    good: dict[str, Any], tmp_path: Path
) -> None:
    """A run that died before the script made a study has no studies: the re-written report
    says so (the first cut wrote a made-up objective study for it)."""
    data = copy.deepcopy(good)
    run = data["runs"][1]
    run.update(status="crashed", error="worker died", trials=[], studies=[])
    run.update(best_value=None, best_params=None)
    result = cli("report", str(write(tmp_path, data)), json_path=tmp_path / "o.json")
    assert result.code == 3, result.out + result.err
    assert result.report["verdict"] == "incomplete"
    assert result.report["runs"][1]["studies"] == []


@pytest.mark.e2e
def test_a_study_asked_and_never_told_may_leave_gaps(good: dict[str, Any], tmp_path: Path) -> None:
    """A script may ask for a trial and never tell it: study b holding trials 0 and 2 of 3 is a
    run a live check can record, not a tampered file (only duplicates are refused)."""
    data = copy.deepcopy(good)
    for run in data["runs"]:
        del run["studies"][1]["trials"][1]
    result = cli("report", str(write(tmp_path, data)))
    assert result.code == 0, result.out + result.err


@pytest.mark.e2e
def test_saved_script_args_and_cap_read_back(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)
    data["settings"]["args"] = ["--lr", "0.1", ""]
    data["settings"]["cap"] = 3
    result = cli("report", str(write(tmp_path, data)), json_path=tmp_path / "o.json")
    assert result.code == 0, result.out + result.err
    assert result.report["settings"]["args"] == ["--lr", "0.1", ""]
    assert result.report["settings"]["cap"] == 3


@pytest.mark.e2e
def test_a_script_with_an_endless_timeout_saves_strict_json(tmp_path: Path) -> None:
    """``optimize(timeout=float("inf"))``: the study's timeout travels as "Infinity" (the first cut
    crashed writing the report: inf is not JSON), and the file reads back."""
    path = tmp_path / "inf.json"
    result = cli("run", str(FIXTURES / "script_endless_timeout.py"), *RUNS, json_path=path)
    assert result.code == 0, result.out + result.err
    assert "Traceback" not in result.err
    assert result.report["runs"][0]["studies"][0]["timeout"] == "Infinity"
    again = cli("report", str(path), json_path=tmp_path / "again.json")
    assert again.code == 0, again.out + again.err
    assert again.report["runs"][1]["studies"][0]["timeout"] == "Infinity"


@pytest.mark.e2e
def test_a_module_script_report_reads_back_and_gates(tmp_path: Path) -> None:
    """``-m pkg.mod`` is a script target too: its saved report is a script report."""
    package = tmp_path / "tinypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text((FIXTURES / "script_two_studies.py").read_text())
    path = tmp_path / "m.json"
    made = cli("run", "-m", "tinypkg.train", *RUNS, cwd=tmp_path, json_path=path)
    assert made.code == 0, made.out + made.err
    assert made.report["target"] == "-m tinypkg.train" and made.report["mode"] == "script"
    again = cli("report", str(path))
    assert again.code == 0, again.out + again.err
    gate = cli("run", "-m", "tinypkg.train", *RUNS, "--baseline", str(path), cwd=tmp_path)
    assert gate.code == 0, gate.out + gate.err


# --- diff compares every study, and never a script with an objective --------------------------


@pytest.mark.e2e
def test_diff_of_two_script_reports_is_same_results(good: dict[str, Any], tmp_path: Path) -> None:
    a, b = write(tmp_path, good, "a.json"), write(tmp_path, good, "b.json")
    result = cli("diff", str(a), str(b), json_path=tmp_path / "d.json")
    assert result.code == 0, result.out + result.err
    assert result.report["mode"] == "script"
    assert result.report["same_results"] is True
    assert result.report["distinct_histories"] == 1
    assert "every study the script made, trial by trial" in result.report["compared"]


@pytest.mark.e2e
def test_diff_compares_every_study_not_only_the_first(good: dict[str, Any], tmp_path: Path) -> None:
    """Each side is reproducible on its own and study a agrees everywhere: only study b of B
    differs from A's. Comparing the runs' first study alone would say "same results"."""
    other = copy.deepcopy(good)
    for run in other["runs"]:
        run["studies"][1]["trials"][2]["values"][0] += 1e-9
    a, b = write(tmp_path, good, "a.json"), write(tmp_path, other, "b.json")
    result = cli("diff", str(a), str(b), json_path=tmp_path / "d.json")
    assert result.code == 1, result.out + result.err
    assert "SAME RESULTS" not in result.out
    report = result.report
    assert report["a"]["verdict"] == report["b"]["verdict"] == "reproducible"
    assert report["same_results"] is False and report["result"] == "different results"
    assert report["divergence"]["study"] == 1
    assert report["divergence"]["trial"] == 2 and report["divergence"]["field"] == "values"
    assert report["divergence"]["runs"] == ["A run 0", "B run 0", "B run 1"]
    assert report["divergence"]["detail"].startswith("study 1 'b': ")
    assert report["distinct_histories"] == 2
    assert "study 1 'b'" in result.out


@pytest.mark.e2e
def test_diff_of_scripts_that_made_different_studies_is_different(
    good: dict[str, Any], tmp_path: Path
) -> None:
    other = copy.deepcopy(good)
    for run in other["runs"]:
        run["studies"].append(copy.deepcopy(run["studies"][1]) | {"name": "c"})
    a, b = write(tmp_path, good, "a.json"), write(tmp_path, other, "b.json")
    result = cli("diff", str(a), str(b), json_path=tmp_path / "d.json")
    assert result.code == 1, result.out + result.err
    divergence = result.report["divergence"]
    assert divergence["field"] == "studies" and divergence["study"] is None
    assert "A run 0 created 2 studies, B run 0 created 3" in divergence["detail"]


@pytest.mark.e2e
@pytest.mark.parametrize("order", ["script first", "objective first"])
def test_diff_of_a_script_report_with_an_objective_report_is_refused(
    good: dict[str, Any], objective: dict[str, Any], tmp_path: Path, order: str
) -> None:
    script, plain = write(tmp_path, good, "s.json"), write(tmp_path, objective, "o.json")
    paths = (script, plain) if order == "script first" else (plain, script)
    line = one_line_error(inprocess_cli("diff", *map(str, paths)), "cannot diff")
    assert "script mode" in line and "objective mode" in line


# --- --baseline compares every study, and never a script with an objective --------------------


@pytest.mark.e2e
def test_a_script_baseline_is_compared_on_every_study(good: dict[str, Any], tmp_path: Path) -> None:
    """The live runs match the baseline's study a; its study b was moved in both runs."""
    data = copy.deepcopy(good)
    for run in data["runs"]:
        run["studies"][1]["trials"][0]["params"]["y"] += 1e-9
    path = write(tmp_path, data, "baseline.json")
    result = cli("run", SCRIPT, *RUNS, "--baseline", str(path), json_path=tmp_path / "o.json")
    assert result.code == 1, result.out + result.err
    assert result.report["verdict"] == "differs from baseline"
    divergence = result.report["baseline"]["divergence"]
    assert divergence["trial"] == 0 and divergence["field"] == "params"
    assert divergence["runs"][0] == -1
    assert divergence["detail"].startswith("study 1 'b': ")


@pytest.mark.e2e
def test_a_matching_script_baseline_matches(good: dict[str, Any], tmp_path: Path) -> None:
    path = write(tmp_path, good, "baseline.json")
    result = cli("run", SCRIPT, *RUNS, "--baseline", str(path), json_path=tmp_path / "o.json")
    assert result.code == 0, result.out + result.err
    assert result.report["baseline"]["matches"] is True


@pytest.mark.e2e
def test_a_baseline_with_another_list_of_studies_differs(
    good: dict[str, Any], tmp_path: Path
) -> None:
    data = copy.deepcopy(good)
    for run in data["runs"]:
        run["studies"][1]["name"] = "renamed"
    path = write(tmp_path, data, "baseline.json")
    result = cli("run", SCRIPT, *RUNS, "--baseline", str(path), json_path=tmp_path / "o.json")
    assert result.code == 1, result.out + result.err
    divergence = result.report["baseline"]["divergence"]
    assert divergence["field"] == "studies"
    assert "study 1 is 'renamed'" in divergence["detail"]


@pytest.mark.e2e
def test_an_objective_check_against_a_script_baseline_is_refused(
    good: dict[str, Any], tmp_path: Path
) -> None:
    path = write(tmp_path, good, "baseline.json")
    for extra in ((), ("--allow-settings-change",)):
        argv = ("run", fixture("deterministic"), "--trials", "3", *RUNS, *extra)
        line = one_line_error(inprocess_cli(*argv, "--baseline", str(path)), "script-mode report")
        assert "objective mode" in line


@pytest.mark.e2e
def test_a_script_check_against_an_objective_baseline_is_refused(
    objective: dict[str, Any], tmp_path: Path
) -> None:
    path = write(tmp_path, objective, "baseline.json")
    argv = ("run", SCRIPT, *RUNS, "--allow-settings-change", "--baseline", str(path))
    line = one_line_error(inprocess_cli(*argv), "is an objective-mode report")
    assert "script mode" in line


# --- tampered script reports: one line, exit 2, whichever command reads them -------------------


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("mode", "evil", "report.mode: expected script or objective, got 'evil'"),
        ("runs.0.studies", "ab", "report.runs[0].studies: expected a list of at most 10000"),
        ("runs.0.studies.1", "b", "report.runs[0].studies[1]: expected a study object"),
        ("runs.0.studies.1.name", 7, "report.runs[0].studies[1].name: expected a string"),
        ("runs.0.studies.1.directions", [], "studies[1].directions: expected a non-empty list"),
        ("runs.0.studies.1.sampler.seed", "1", "studies[1].sampler.seed: expected an integer"),
        ("runs.0.studies.1.sampler.seed", 2**70, "studies[1].sampler.seed: expected an integer"),
        ("runs.0.studies.1.sampler.seeded_by_check", 1, "seeded_by_check: expected true or false"),
        ("runs.0.studies.1.n_jobs", "4", "studies[1].n_jobs: expected an integer"),
        ("runs.0.studies.1.n_trials", 10**20, "studies[1].n_trials: expected an integer"),
        ("runs.0.studies.1.timeout", "soon", "studies[1].timeout: expected a number"),
        ("runs.0.studies.1.capped", "no", "studies[1].capped: expected true or false"),
        ("runs.0.studies.1.trials", {}, "studies[1].trials: expected a list of trials, or null"),
        ("runs.0.studies.1.trials.0.state", "DONE", "studies[1].trials[0].state"),
        ("runs.0.studies.1.at", ["x"], "studies[1].at: expected a string"),
        ("settings.cap", 0, "report.settings.cap: expected an integer from 1 to 1000000000"),
        ("settings.cap", "3", "report.settings.cap"),
        ("settings.cap", 10**7, "report.settings.cap must be <= 1000000"),
        ("settings.args", "--lr", "report.settings.args: expected a list"),
        ("settings.args", [1], "report.settings.args[0]: expected a string"),
        ("settings.args", ["x"] * 10_001, "report.settings.args: expected a list of at most"),
        ("settings.args", ["a\x1bb"], "report.settings.args"),
    ],
)
def test_every_script_field_has_its_documented_type(
    good: dict[str, Any], tmp_path: Path, key: str, value: Any, fragment: str
) -> None:
    data = copy.deepcopy(good)
    _set(data, key, value)
    one_line_error(inprocess_cli("report", str(write(tmp_path, data))), fragment)


def _drop_studies(data: dict[str, Any]) -> None:
    del data["runs"][0]["studies"]


def _duplicate_in_study_b(data: dict[str, Any]) -> None:
    trials = data["runs"][0]["studies"][1]["trials"]
    trials[2] = copy.deepcopy(trials[1])


def _duplicate_in_run_trials(data: dict[str, Any]) -> None:
    trials = data["runs"][1]["trials"]
    trials[2] = copy.deepcopy(trials[0])


def _no_studies_in_a_finished_run(data: dict[str, Any]) -> None:
    data["runs"][0]["studies"] = []
    data["runs"][0]["trials"] = []


def _first_study_with_trials(data: dict[str, Any]) -> None:
    data["runs"][0]["studies"][0]["trials"] = data["runs"][0]["trials"]


def _second_study_without_trials(data: dict[str, Any]) -> None:
    data["runs"][1]["studies"][1]["trials"] = None


def _mode_removed(data: dict[str, Any]) -> None:
    del data["mode"]


def _mode_objective(data: dict[str, Any]) -> None:
    data["mode"] = "objective"


def _version_1_script(data: dict[str, Any]) -> None:
    data["schema_version"] = 1


def _directions_not_the_first_studys(data: dict[str, Any]) -> None:
    data["runs"][0]["directions"] = ["minimize"]


def _values_for_two_objectives(data: dict[str, Any]) -> None:
    trial = data["runs"][0]["studies"][1]["trials"][0]
    trial["values"] = [*trial["values"], 1.0]


def _trials_without_a_study(data: dict[str, Any]) -> None:
    run = data["runs"][1]
    run.update(status="crashed", error="died", studies=[])


@pytest.mark.parametrize(
    ("tamper", "fragment"),
    [
        (_drop_studies, "report.runs[0].studies: missing"),
        (_duplicate_in_study_b, "runs[0].studies[1].trials[2].number: trial 1 appears twice"),
        (_duplicate_in_run_trials, "report.runs[1].trials[2].number: trial 0 appears twice"),
        (_no_studies_in_a_finished_run, "a finished script run created at least one study"),
        (_first_study_with_trials, "report.runs[0].studies[0].trials: expected null"),
        (_second_study_without_trials, "report.runs[1].studies[1].trials: expected a list"),
        (_mode_removed, "report.mode: missing"),
        (_mode_objective, "report.mode: 'objective', but the target"),
        (_version_1_script, "in a schema_version 1 report"),
        (_directions_not_the_first_studys, "report.runs[0].directions: not its first study's"),
        (_values_for_two_objectives, "studies[1].trials[0].values: a COMPLETE trial needs 1"),
        (_trials_without_a_study, "report.runs[1].trials: 3 trial(s), but the run lists no study"),
    ],
)
def test_a_tampered_script_report_is_refused_by_every_reader(
    good: dict[str, Any], tmp_path: Path, tamper: Any, fragment: str
) -> None:
    data = copy.deepcopy(good)
    tamper(data)
    path = write(tmp_path, data)
    for argv in every_reader(path, write(tmp_path, good, "good.json")):
        one_line_error(inprocess_cli(*argv), fragment)


def test_deep_user_attrs_in_a_later_study_are_refused(good: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(good)
    data["runs"][0]["studies"][1]["trials"][0]["user_attrs"] = {"nested": "__DEEP__"}
    text = json.dumps(data).replace('"__DEEP__"', "[" * 900 + "]" * 900)
    line = one_line_error(inprocess_cli("report", str(write(tmp_path, text))), "nested deeper")
    assert "studies[1].trials[0].user_attrs" in line


# --- objective reports: version 1 still reads, and they hold one study -------------------------


@pytest.mark.e2e
def test_a_version_1_objective_report_still_reads(
    objective: dict[str, Any], tmp_path: Path
) -> None:
    data = copy.deepcopy(objective)
    data["schema_version"] = 1
    del data["mode"]
    for key in ("args", "cap"):
        del data["settings"][key]
    for run in data["runs"]:
        del run["studies"]
    result = cli("report", str(write(tmp_path, data)), json_path=tmp_path / "o.json")
    assert result.code == 0, result.out + result.err
    assert result.report["mode"] == "objective"


@pytest.mark.e2e
def test_a_version_1_report_of_a_bare_file_is_an_objective_report(
    objective: dict[str, Any], tmp_path: Path
) -> None:
    """Before script mode, ``file.py`` meant ``file.py:objective``: such a saved file reads."""
    data = copy.deepcopy(objective)
    data["schema_version"] = 1
    data["target"] = data["target"].rpartition(":")[0]
    del data["mode"]
    result = cli("report", str(write(tmp_path, data)))
    assert result.code == 0, result.out + result.err


def _objective_with_two_studies(data: dict[str, Any]) -> None:
    data["runs"][0]["studies"].append(copy.deepcopy(data["runs"][0]["studies"][0]))


def _objective_study_with_trials(data: dict[str, Any]) -> None:
    data["runs"][1]["studies"][0]["trials"] = []


def _objective_claims_script(data: dict[str, Any]) -> None:
    data["mode"] = "script"


def _objective_with_a_cap(data: dict[str, Any]) -> None:
    data["settings"]["cap"] = 3


def _objective_with_args(data: dict[str, Any]) -> None:
    data["settings"]["args"] = ["--lr", "1"]


@pytest.mark.parametrize(
    ("tamper", "fragment"),
    [
        (_objective_with_two_studies, "report.runs[0].studies: an objective-mode run is one"),
        (_objective_study_with_trials, "report.runs[1].studies[0].trials: expected null"),
        (_objective_claims_script, "report.mode: 'script', but the target"),
        (_objective_with_a_cap, "report.settings.cap: only a script has a cap"),
        (_objective_with_args, "report.settings.args: only a script has arguments"),
    ],
)
def test_a_tampered_objective_report_is_refused(
    objective: dict[str, Any], tmp_path: Path, tamper: Any, fragment: str
) -> None:
    data = copy.deepcopy(objective)
    tamper(data)
    one_line_error(inprocess_cli("report", str(write(tmp_path, data))), fragment)


def test_the_schema_describes_script_reports(good: dict[str, Any]) -> None:
    from repro_check.results import validate

    schema = validate.report_schema()
    study = schema["definitions"]["study"]
    optional = {"user_attrs"}  # absent from reports saved before studies' attrs were recorded
    assert set(study["required"]) == set(good["runs"][0]["studies"][1]) - optional
    assert optional <= set(study["properties"])
    assert set(schema["definitions"]["sampler_info"]["required"]) == set(
        good["runs"][0]["studies"][1]["sampler"]
    )
    assert schema["definitions"]["run_report"]["properties"]["mode"]["enum"] == [
        "script",
        "objective",
    ]
    assert validate.check_report_data(copy.deepcopy(good), "good.json") == "run"
    # the bounds of a live check are the schema's: every report it writes reads back
    from repro_check.execution.runner import MAX_STUDIES
    from repro_check.plan.config import MAX_ARGS, MAX_TRIALS

    assert schema["definitions"]["run"]["properties"]["studies"]["maxItems"] == MAX_STUDIES
    settings = schema["definitions"]["settings"]["properties"]
    assert settings["args"]["maxItems"] == MAX_ARGS
    assert settings["cap"]["maximum"] >= MAX_TRIALS
