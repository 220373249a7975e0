"""One section model drawn by console, Markdown and JUnit; one registry of file formats
(issue 10): hand-built reports, no optuna, no processes."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from rich.console import Console
from test_render_markdown_junit import build, history, parse, runs_of

from repro_check.checks.diff import diff_reports
from repro_check.plan.settings import CheckPlan, StudySettings
from repro_check.render import console, junit, markdown, sections
from repro_check.render.files import write_outputs
from repro_check.render.formats import FORMATS, kind
from repro_check.results import report
from repro_check.results.compare_report import CompareReport
from repro_check.results.records import RunRecord
from repro_check.results.trial_record import TrialRecord
from repro_check.vocab import GATE


def console_text(rep: report.RunReport) -> str:
    buf = io.StringIO()
    console.render(rep, Console(file=buf, width=1000, no_color=True, highlight=False))
    return buf.getvalue()


def _multi_run(index: int, fronts: list[tuple[float, float, float]]) -> RunRecord:
    trials = tuple(
        TrialRecord(i, "COMPLETE", {"x": x}, (v1, v2)) for i, (v1, v2, x) in enumerate(fronts)
    )
    return RunRecord(index, 0, "ok", trials, ("minimize", "maximize"))


@pytest.fixture
def multi() -> report.RunReport:
    """Two objectives; run 2's second Pareto trial differs from run 0's."""
    plan = CheckPlan(target="m:f", runs=3, study=StudySettings(directions=("minimize", "maximize")))
    ref = [(1.0, 1.0, 0.5), (2.0, 3.0, 0.25)]
    other = [(1.0, 1.0, 0.5), (2.5, 3.0, 0.75)]
    return report.build(
        "run", plan, "cpu", [_multi_run(0, ref), _multi_run(1, ref), _multi_run(2, other)]
    )


@pytest.fixture
def everything() -> report.RunReport:
    """Not reproducible, with notes and a varying best param: every optional section but the
    Pareto table, the baseline and failed trials."""
    runs = runs_of(history(), history(), history(best=1.25, kind="c"))
    runs[0] = dataclasses.replace(runs[0], notes=("a note",))
    return build(runs)


def test_junit_multi_objective_shows_the_front_as_the_console_does(
    multi: report.RunReport,
) -> None:
    """The JUnit copy of the layout had drifted: it said 'Best value: -' for a Pareto front and
    did not mark run 2's differing front."""
    lines = junit.summary_lines(multi)
    spread = "Pareto front: 2 trials in every run   distinct histories: 2 of 3"
    assert spread in lines
    assert spread in console_text(multi)
    assert not any(line.startswith("Best value:") for line in lines)
    assert "run 2 ok · Pareto set 2 trials ≠ · 2 trials · wall s -" in lines
    assert "run 1 ok · Pareto set 2 trials · 2 trials · wall s -" in lines


def test_every_renderer_draws_the_same_sections_in_the_same_order(
    everything: report.RunReport,
) -> None:
    parts = sections.run_sections(everything)
    kinds = [type(part).__name__ for part in parts]
    assert kinds == [
        "Headline",
        "Settings",
        "BestTable",
        "Divergence",
        "Spread",
        "ParamSpread",
        "Notes",
        "Environment",
        "Hint",
    ]
    labels = ["First divergence", "Best value", "Best-param spread", "Notes", "Environment", "Hint"]
    out = console_text(everything)
    md = markdown.render_run(everything)
    system_out = "\n".join(junit.summary_lines(everything))
    for text, mark in ((out, ""), (md, "**"), (system_out, "")):
        where = [text.index(f"{mark}{label}:") for label in labels]
        assert where == sorted(where), (text, where)
    spread = sections.find(parts, sections.ParamSpread)
    assert spread is not None and [name for name, _ in spread.rows] == ["kind"]
    assert f"  kind: {spread.rows[0][1]}" in out.splitlines()
    assert f"  kind: {spread.rows[0][1]}" in system_out.splitlines()


def test_the_awaiting_hint_is_the_consoles_alone() -> None:
    built = build(runs_of(history(), history(), history()))
    waiting = dataclasses.replace(built, awaiting=1, ran_here=1)
    hint = sections.find(sections.run_sections(waiting), sections.Hint)
    assert hint is not None and hint.awaiting
    assert "Hint: the last process to finish" in console_text(waiting)
    assert "Hint" not in markdown.render_run(waiting)
    assert not any(line.startswith("Hint") for line in junit.summary_lines(waiting))


def _compare(fixed: report.RunReport | None, **others: report.RunReport) -> CompareReport:
    conditions: dict[str, report.RunReport] = {
        **({GATE: fixed} if fixed is not None else {}),
        **others,
    }
    plan = next(iter(conditions.values())).plan
    return CompareReport(plan, "cpu", conditions)


def test_only_the_gate_can_fail_and_it_sets_the_heading() -> None:
    diverged = build(runs_of(history(), history(), history(best=1.25)))
    crashed = build(runs_of(history(), history()[:1], history(), status={1: "crashed"}))
    same = build(runs_of(history(), history(), history()))
    gated = _compare(diverged, seed_sweep=crashed, uncontrolled=diverged)
    table = sections.find(sections.compare_sections(gated), sections.Conditions)
    assert table is not None
    assert [(c.name, c.can_fail, c.can_error) for c in table.rows] == [
        ("fixed_seed", True, True),
        ("seed_sweep", False, False),
        ("uncontrolled", False, False),
    ]
    assert sections.gate_verdict(gated) == "not reproducible" and gated.exit_code == 1
    assert markdown.render_compare(gated).startswith("### ❌ repro-check compare")
    suite = parse(junit.render_compare(gated)).find("testsuite")
    assert suite is not None and (suite.get("failures"), suite.get("errors")) == ("1", "0")
    # without the gate every condition can error (exit 3), none can fail
    ungated = _compare(None, seed_sweep=crashed, uncontrolled=same)
    table = sections.find(sections.compare_sections(ungated), sections.Conditions)
    assert table is not None and all(c.can_error and not c.can_fail for c in table.rows)
    assert sections.gate_verdict(ungated) == "incomplete" and ungated.exit_code == 3
    assert markdown.render_compare(ungated).startswith("### ⚠️ repro-check compare")


def test_registry_names_every_format_and_what_it_draws(tmp_path: Path) -> None:
    assert list(FORMATS) == ["json", "markdown", "junit", "plot"]
    same = build(runs_of(history(), history(), history()))
    diff = diff_reports("a.json", same, "b.json", same)
    assert kind(same) == "run" and kind(diff) == "diff"
    assert [name for name, f in FORMATS.items() if f.accepts(diff)] == ["json", "markdown", "junit"]
    assert all(f.accepts(same) for f in FORMATS.values())
    assert not any(f.accepts("not a report") for f in FORMATS.values())
    assert FORMATS["markdown"].render(same) == markdown.render_run(same)
    assert FORMATS["markdown"].render(diff) == markdown.render_diff(diff)
    assert FORMATS["json"].render(diff).startswith("{")
    with pytest.raises(TypeError, match="no plot view of ReportDiff"):
        FORMATS["plot"].write(diff, tmp_path / "d.svg")
    with pytest.raises(TypeError, match="no Markdown view of str"):
        markdown.render("not a report")  # type: ignore[arg-type]


def test_write_outputs_refuses_a_format_before_writing_any_file(tmp_path: Path) -> None:
    same = build(runs_of(history(), history(), history()))
    diff = diff_reports("a.json", same, "b.json", same)
    json_path, svg_path = tmp_path / "d.json", tmp_path / "d.svg"
    with pytest.raises(TypeError, match="no plot view"):
        write_outputs(diff, json_path=json_path, plot_path=svg_path)
    assert not json_path.exists() and not svg_path.exists()  # not half the outputs
    assert write_outputs(diff, json_path=json_path) == [json_path]
    assert json_path.read_text(encoding="utf-8").startswith("{")


@pytest.mark.e2e
def test_quiet_diagnose_line_is_the_console_headline_without_rich() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from repro_check.results.diagnosis import Diagnosis\n"
        "from repro_check.render.detail import verdict_line\n"
        "from repro_check.plan.settings import CheckPlan\n"
        "before = set(sys.modules)\n"
        "d = Diagnosis(CheckPlan(target='m:f'), 'cpu', True, (), (), incomplete=True)\n"
        "print(verdict_line(d))\n"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('rich.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "INCOMPLETE: the fully controlled runs could not finish"
    assert "rich.table" not in out[1] and "rich.panel" not in out[1]  # no console renderer
    from repro_check.render.console_diagnose import headline
    from repro_check.results.diagnosis import Diagnosis

    d = Diagnosis(CheckPlan(target="m:f"), "cpu", True, (), ())
    assert headline(d).plain == "No cause found: the study reproduces even with each control off"
    assert str(headline(d).style) == "bold green"
