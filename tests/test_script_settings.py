"""A script's report says only what is true of it (issue 21, item 4).

A script builds its own studies: their sampler, seed, trial count and directions are recorded
per study in each run, so the plan's placeholders (``trials: 20``, ``sampler: "tpe"``,
``directions: ["minimize"]``) are null in its settings, and so is ``seed`` where no control hands
it to the code. Old reports that carry the placeholders still read; an objective-mode report
with a null there is refused (it would hide what ran)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, fixture, golden_report, inprocess_cli, one_line_error
from factories import run, trial

from repro_check.plan.settings import (
    SCRIPT_OWN_SETTINGS,
    CheckPlan,
    Controls,
    StudySettings,
    settings_mismatches,
)
from repro_check.render import fmt, plot
from repro_check.results.records import SamplerInfo, StudyRecord

SCRIPT = str(FIXTURES / "script_two_studies.py")


def test_a_script_plan_leaves_its_studies_settings_and_an_unused_seed_null() -> None:
    written = CheckPlan("train.py", controls=Controls.none(), args=("--seed", "1"), cap=8)
    settings = written.to_dict("cpu")
    assert {key: settings[key] for key in SCRIPT_OWN_SETTINGS} == dict.fromkeys(SCRIPT_OWN_SETTINGS)
    assert settings["seed"] is None  # no control hands it to the script
    assert (settings["args"], settings["cap"]) == (["--seed", "1"], 8)
    seeded = CheckPlan("train.py", controls=Controls.only(["sampler_seed"]), seed=7)
    assert seeded.to_dict("cpu")["seed"] == 7  # the check seeds the script's samplers
    # read back: the defaults stand in for what the script decides itself
    again = CheckPlan.from_dict("train.py", settings)
    assert (again.study, again.args, again.cap) == (StudySettings(), ("--seed", "1"), 8)


def test_an_objective_plan_keeps_every_setting() -> None:
    plan = CheckPlan("m:f", study=StudySettings(trials=8, directions=("maximize",)), seed=1)
    settings = plan.to_dict("cpu")
    assert (settings["trials"], settings["directions"], settings["seed"]) == (8, ["maximize"], 1)
    assert settings["sampler"] == "tpe" and settings["n_jobs"] == 1
    assert CheckPlan.from_dict("m:f", settings).study == plan.study


def test_settings_that_do_nothing_for_a_script_never_mismatch() -> None:
    """A baseline or shared check is refused only for a setting that changes the runs."""
    before = CheckPlan("train.py", controls=Controls.none())
    now = CheckPlan("train.py", controls=Controls.none(), seed=5, study=StudySettings(trials=9))
    assert settings_mismatches(before, now) == []
    for name in ("sampler_seed", "global_rng", "trial_reseed", "hash_seed"):
        # hash_seed sets PYTHONHASHSEED to the seed: a review found it left out, so a baseline
        # or a shared check made with another seed was accepted and its runs blamed
        seeded = Controls.only([name])
        assert settings_mismatches(
            CheckPlan("train.py", controls=seeded), CheckPlan("train.py", controls=seeded, seed=5)
        ) == ["seed: 0 in the baseline, 5 now"], name
        assert CheckPlan("train.py", controls=seeded, seed=5).to_dict("cpu")["seed"] == 5
    objective = settings_mismatches(CheckPlan("m:f"), CheckPlan("m:f", seed=5))
    assert objective == ["seed: 0 in the baseline, 5 now"]


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    return path


def test_a_script_report_with_null_study_settings_reads_back(tmp_path: Path) -> None:
    data = golden_report("script_two_studies", SCRIPT)
    assert data["settings"]["trials"] is None and data["settings"]["seed"] is None
    result = inprocess_cli("report", str(write(tmp_path, data)))
    assert result.code == 0, result.out + result.err
    assert "20 trials" not in result.out and "seed 0" not in result.out


def test_a_script_report_saved_before_the_nulls_still_reads(tmp_path: Path) -> None:
    old = json.loads((FIXTURES / "script_report_before_nulls.json").read_text())
    old["target"] = SCRIPT
    assert old["settings"]["trials"] == 20 and old["settings"]["sampler"] == "tpe"
    result = inprocess_cli("report", str(write(tmp_path, old)))
    assert result.code == 0, result.out + result.err


@pytest.mark.parametrize("key", ["seed", *SCRIPT_OWN_SETTINGS])
def test_an_objective_report_with_a_null_setting_is_refused(tmp_path: Path, key: str) -> None:
    data = golden_report("objective_3_trials", fixture("deterministic"))
    data["settings"][key] = None
    error = one_line_error(inprocess_cli("report", str(write(tmp_path, data))))
    assert f"report.settings.{key}: null, but only a script's report" in error


def test_a_null_seed_where_a_control_takes_it_is_refused(tmp_path: Path) -> None:
    """Else runs with different seeds could hide behind a null one."""
    data = copy.deepcopy(golden_report("script_two_studies", SCRIPT))
    data["settings"]["controls"]["sampler_seed"] = True
    error = one_line_error(inprocess_cli("report", str(write(tmp_path, data))))
    assert "report.settings.seed: null, but the controls hand a seed to the code" in error


def test_a_script_report_with_some_study_settings_null_is_refused(tmp_path: Path) -> None:
    """All null (as written now) or all written (older reports); a mix is tampering, and was a
    TypeError's 'malformed report' before (found by review)."""
    data = copy.deepcopy(golden_report("script_two_studies", SCRIPT))
    data["settings"]["trials"] = 5
    error = one_line_error(inprocess_cli("report", str(write(tmp_path, data))))
    assert "report.settings.directions: null while settings.trials is set" in error


def _script_run(seed: int | None, by_check: bool = False) -> Any:
    sampler = SamplerInfo("TPESampler", seed, "train.py:29", seeded_by_check=by_check)
    study = StudyRecord("train", ("maximize",), sampler)
    return dataclasses.replace(run(0, [trial(0, 1.0)]), studies=(study,))


def test_a_script_runs_seed_is_the_one_its_sampler_had() -> None:
    written = CheckPlan("train.py", controls=Controls.none())
    assert fmt.run_seed(written, _script_run(1)) == "sampler seed 1"
    assert fmt.run_seed(written, _script_run(None)) == "unseeded sampler"
    seeded = CheckPlan("train.py", controls=Controls.only(["sampler_seed"]))
    assert fmt.run_seed(seeded, _script_run(None, by_check=True)) == "seed 0"
    assert fmt.run_seed(CheckPlan("m:f"), run(0, [trial(0, 1.0)])) == "seed 0"
    # the plot's legend says the same, never the placeholder "(seed 0)"
    assert plot._run_label(_script_run(1), written) == "run 0 (sampler seed 1)"


def test_compares_seeds_row_says_which_seeds_a_script_kept() -> None:
    """A sampler the script seeded itself keeps its seed in the sweep too: the row says so."""
    from repro_check.render import sections
    from repro_check.results import report
    from repro_check.results.compare_report import CompareReport

    written = CheckPlan("train.py", controls=Controls.none(), runs=2)
    swept = dataclasses.replace(written, controls=Controls())
    runs = [dataclasses.replace(_script_run(1), index=i, seed=i) for i in range(2)]
    conditions = {
        "fixed_seed": report.build("compare", written, "cpu", runs),
        "seed_sweep": report.build("compare", swept, "cpu", runs),
    }
    table = sections.find(
        sections.compare_sections(CompareReport(written, "cpu", conditions)), sections.Conditions
    )
    assert table is not None
    assert [row.seeds for row in table.rows] == ["sampler seed 1", "0, 1; sampler seed 1"]
