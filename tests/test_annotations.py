"""GitHub Actions annotations (issue 21, item 7): each cause and note with a file and line
becomes a ``::error file=...,line=...,title=...::message`` line, escaped as GitHub's runner
reads them, its path relative to the checkout; only under ``GITHUB_ACTIONS=true``."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, cli
from factories import run, trial

from repro_check.plan.settings import CheckPlan, Controls
from repro_check.render import github
from repro_check.render.github import (
    Annotation,
    annotation_lines,
    escape_data,
    escape_property,
    format_annotation,
    repository_path,
    split_at,
)
from repro_check.results import report
from repro_check.results.compare_report import CompareReport
from repro_check.results.diagnosis import Cause, Diagnosis, Location
from repro_check.results.records import RunRecord, SamplerInfo, StudyRecord


def test_message_escapes_percent_cr_and_lf_percent_first() -> None:
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_data("%0A") == "%250A"  # a literal %0A stays literal


def test_property_escapes_also_colon_and_comma() -> None:
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_a_path_under_the_workspace_is_made_relative(tmp_path: Path) -> None:
    inside = tmp_path / "src" / "train.py"
    assert repository_path(str(inside), str(tmp_path)) == "src/train.py"
    assert repository_path("/elsewhere/train.py", str(tmp_path)) == "/elsewhere/train.py"
    assert repository_path("train.py", None) == "train.py"


def test_format_is_rufs_github_format() -> None:
    line = format_annotation(Annotation("error", "a,b.py", 7, "repro-check: x", "50%\nfix"))
    assert line == "::error file=a%2Cb.py,line=7,title=repro-check%3A x::50%25%0Afix"


@pytest.mark.parametrize(
    ("at", "where"),
    [("train.py:29", ("train.py", 29)), ("C:/x/t.py:3", ("C:/x/t.py", 3)), ("t.py", None)],
)
def test_split_at(at: str, where: tuple[str, int] | None) -> None:
    assert split_at(at) == where
    assert split_at(None) is None and split_at("t.py:0") is None


def test_only_under_github_actions() -> None:
    assert github.under_actions({"GITHUB_ACTIONS": "true"})
    assert not github.under_actions({"GITHUB_ACTIONS": "false"})
    assert not github.under_actions({})


def _script_run(index: int, value: float, seed: int | None = None) -> RunRecord:
    sampler = SamplerInfo("TPESampler", seed, "train.py:29")
    trials = (trial(0, value),)
    study = StudyRecord("train", ("minimize",), sampler, trials, at="train.py:28")
    return dataclasses.replace(run(index, list(trials)), studies=(study,))


def _script_report(*values: float, seed: int | None = None) -> report.RunReport:
    plan = CheckPlan("train.py", controls=Controls.none(), runs=len(values))
    runs = [_script_run(i, v, seed) for i, v in enumerate(values)]
    return report.build("run", plan, "cpu", runs)


def test_a_parting_script_annotates_its_unseeded_sampler_and_the_study_that_parts() -> None:
    lines = annotation_lines(_script_report(1.0, 2.0))
    assert lines == [
        "::error file=train.py,line=29,title=repro-check%3A unseeded sampler::train.py:29 "
        "builds TPESampler() without seed: every run samples differently; pass seed=0",
        "::error file=train.py,line=28,title=repro-check%3A first divergence::study 0 'train', "
        "created here: the runs part at trial 0 (values): value 1.0 vs 2.0 (run 0 vs run 1)",
    ]


def test_an_agreeing_script_only_warns_and_a_seeded_one_says_nothing() -> None:
    warned = annotation_lines(_script_report(1.0, 1.0))
    assert [line.split(" ")[0] for line in warned] == ["::warning"]
    assert annotation_lines(_script_report(1.0, 1.0, seed=1)) == []


def test_an_objective_run_has_no_line_to_point_at() -> None:
    plan = CheckPlan("m:f", runs=2)
    parted = report.build("run", plan, "cpu", [run(0, [trial(0, 1.0)]), run(1, [trial(0, 2.0)])])
    assert annotation_lines(parted) == []


def test_compare_annotates_the_gate_as_errors_others_as_warnings_never_the_sweep() -> None:
    parted = _script_report(1.0, 2.0)
    conditions = {"fixed_seed": parted, "seed_sweep": parted, "uncontrolled": parted}
    lines = annotation_lines(CompareReport(parted.plan, "cpu", conditions))
    titles = [line.split("title=")[1].split("::")[0] for line in lines]
    # the as-written condition's notes repeat the gate's at the same lines: shown once
    assert titles == [
        "repro-check (fixed seed)%3A unseeded sampler",
        "repro-check (fixed seed)%3A first divergence",
    ]
    assert all(line.startswith("::error ") for line in lines)
    no_gate = CompareReport(parted.plan, "cpu", {"uncontrolled": parted, "seed_sweep": parted})
    assert {line.split(" ")[0] for line in annotation_lines(no_gate)} == {"::warning"}


def test_each_located_cause_of_a_diagnosis_is_an_error(tmp_path: Path) -> None:
    located = Cause(
        "sampler_seed", "runs part", "pass seed=0", 1, location=Location("t.py", 7, "x")
    )
    unlocated = Cause("global_rng", "random.random()", "random.seed(0)")
    found = Diagnosis(CheckPlan("t.py:f"), "cpu", True, (located, unlocated), ())
    assert annotation_lines(found) == [
        "::error file=t.py,line=7,title=repro-check%3A sampler_seed::runs part%0AFix: pass seed=0"
    ]


@pytest.mark.e2e
def test_under_github_actions_the_cli_prints_annotations_after_the_report(tmp_path: Path) -> None:
    """An unseeded script run as GitHub Actions runs it: the annotation names the script's
    line relative to the workspace, after the report on stdout; none outside Actions."""
    script = tmp_path / "ci" / "train.py"
    script.parent.mkdir()
    shutil.copy(FIXTURES.parent.parent / "repro_check" / "examples" / "train.py", script)
    env = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path)}
    argv = ("run", str(script), "--trials", "3", "--runs", "2")
    result = cli(*argv, env=env, cwd=tmp_path)
    assert result.code == 1, result.out + result.err
    annotated = [line for line in result.out.splitlines() if line.startswith("::")]
    assert annotated[0] == (
        "::error file=ci/train.py,line=29,title=repro-check%3A unseeded sampler::"
        "ci/train.py:29 builds TPESampler() without seed: every run samples differently; pass "
        "seed=0"
    )
    assert result.out.index("NOT REPRODUCIBLE") < result.out.index(annotated[0])
    plain = cli(*argv, env={k: "" for k in env}, cwd=tmp_path)
    assert plain.code == 1 and "::" not in plain.out
