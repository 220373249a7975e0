"""The Markdown and JUnit renderers on hand-built reports (no optuna, no processes)."""

from __future__ import annotations

import dataclasses
import io
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from factories import trial as plain_trial
from rich.console import Console

from repro_check.plan.settings import CheckPlan, StudySettings
from repro_check.render import console, fmt, junit, markdown
from repro_check.results import report
from repro_check.results.compare_report import CompareReport, interval_text
from repro_check.results.records import RunRecord
from repro_check.results.trial_record import TrialRecord

ENV = {
    "python": "3.11.7",
    "platform": "Linux-test",
    "threads": 1,
    "packages": {"optuna": "4.0.0", "numpy": "2.0.0"},
}
WALL = (0.5, 0.75, 1.0)


def trial(number: int, value: float, x: float, kind: str = "a") -> TrialRecord:
    return TrialRecord(number, "COMPLETE", {"kind": kind, "x": x}, (value,))


def history(best: float = 1.5, kind: str = "b") -> list[TrialRecord]:
    """Three trials; trial 1 is the best (``best``, x=0.25, ``kind``)."""
    return [trial(0, 3.0, 0.5), trial(1, best, 0.25, kind), trial(2, 2.0, 0.75)]


def runs_of(*histories: list[TrialRecord], status: dict[int, str] | None = None) -> list[RunRecord]:
    status = status or {}
    return [
        RunRecord(
            index=i,
            seed=0,
            status=status.get(i, "ok"),
            trials=tuple(trials),
            wall_s=WALL[i],
            environment=ENV,
            error=None if status.get(i, "ok") == "ok" else "worker exited with code 1: boom",
        )
        for i, trials in enumerate(histories)
    ]


def build(runs: list[RunRecord], target: str = "pkg.mod:objective", **study: Any) -> Any:
    plan = CheckPlan(target=target, study=StudySettings(**{"trials": 3, **study}))
    return report.build("run", plan, "cpu", runs)


@pytest.fixture
def same() -> report.RunReport:
    return build(runs_of(history(), history(), history()))


@pytest.fixture
def diverged() -> report.RunReport:
    """Run 2's trial 1 gives 1.25 where runs 0 and 1 give 1.5."""
    return build(runs_of(history(), history(), history(best=1.25)))


@pytest.fixture
def crashed() -> report.RunReport:
    """Run 1 crashed after its first trial."""
    return build(runs_of(history(), history()[:1], history(), status={1: "crashed"}))


@pytest.fixture
def compared() -> CompareReport:
    fixed = build(runs_of(history(), history(), history()))
    sweep = build(runs_of(history(1.0), history(2.0), history(1.5)))
    loose = build(runs_of(history(), history(best=1.25), history(best=1.75)))
    conditions = {"fixed_seed": fixed, "seed_sweep": sweep, "uncontrolled": loose}
    return CompareReport(fixed.plan, "cpu", conditions)


def parse(xml: str) -> ET.Element:
    assert xml.startswith("<?xml version='1.0' encoding='utf-8'?>\n")
    return ET.fromstring(xml.encode("utf-8"))


def counts(element: ET.Element) -> tuple[str | None, ...]:
    return tuple(element.get(k) for k in ("tests", "failures", "errors", "time"))


def console_text(rep: report.RunReport) -> str:
    buf = io.StringIO()
    console.render(rep, Console(file=buf, width=1000, no_color=True, highlight=False))
    return buf.getvalue()


def table_rows(md: str) -> list[list[str]]:
    """Markdown table rows split on unescaped pipes (escaped ones stay in their cell)."""
    rows = []
    for line in md.splitlines():
        if line.startswith("| "):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


# --- JUnit ------------------------------------------------------------------------------------


def test_junit_reproducible_is_one_passing_case(same: report.RunReport) -> None:
    root = parse(junit.render_run(same))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "repro-check"
    assert counts(root) == counts(suite) == ("1", "0", "0", "2.250")
    (case,) = suite.findall("testcase")
    assert case.get("classname") == "repro-check.run"
    assert case.get("name") == "pkg.mod:objective"
    assert case.get("time") == "2.250"
    assert case.find("failure") is None and case.find("error") is None
    out = case.findtext("system-out") or ""
    assert fmt.headline(same) in out and fmt.settings_line(same) in out
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "reproducible" and props["exit_code"] == "0"


def test_junit_divergence_is_a_failure_with_the_divergence_line(
    diverged: report.RunReport,
) -> None:
    root = parse(junit.render_run(diverged))
    assert counts(root) == ("1", "1", "0", "2.250")
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    divergence = diverged.comparison.divergence
    assert divergence is not None
    assert divergence.detail == "value 1.5 vs 1.25 (run 0 vs run 2)"
    message = failure.get("message") or ""
    assert message == fmt.divergence_line(divergence)
    assert message.startswith("trial 1, values: value 1.5 vs 1.25 (run 0 vs run 2)")
    assert "max |Δ| 0.25" in message
    assert failure.get("type") == "not reproducible"
    assert "repro-check diagnose pkg.mod:objective" in (failure.text or "")


def test_junit_parallel_trials_fail_with_the_headline() -> None:
    rep = build(runs_of(history(), history(), history()), n_jobs=2)
    assert rep.comparison.divergence is None and not rep.reproducible
    failure = parse(junit.render_run(rep)).find("testsuite/testcase/failure")
    assert failure is not None
    assert (
        failure.get("message")
        == fmt.headline(rep)
        == "NOT REPRODUCIBLE: n_jobs > 1 makes trials race"
    )


def test_junit_crashed_run_is_an_error_not_a_failure(crashed: report.RunReport) -> None:
    root = parse(junit.render_run(crashed))
    assert counts(root) == ("1", "0", "1", "2.250")
    case = root.find("testsuite/testcase")
    assert case is not None and case.find("failure") is None
    error = case.find("error")
    assert error is not None
    assert error.get("message") == "run 1 crashed: worker exited with code 1: boom"
    assert error.get("type") == "incomplete"
    assert (error.text or "").startswith("INCOMPLETE: 1 of 3 runs did not finish")


def test_junit_escapes_markup_and_control_characters() -> None:
    target = "odd <&\"']]>.py:objective"
    runs = runs_of(history(kind="<b>&"), history(kind="<b>&"), history(), status={1: "crashed"})
    runs[1] = dataclasses.replace(runs[1], error="Traceback\n\x1b[31mKeyError: '<&>'\x00")
    rep = build(runs, target=target)
    xml = junit.render_run(rep)
    assert target not in xml  # written escaped, never raw
    root = parse(xml)  # well-formed despite ESC and NUL in the crash message
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("name") == target
    error = case.find("error")
    assert error is not None
    assert error.get("message") == "run 1 crashed: Traceback\n\\x1b[31mKeyError: '<&>'\\x00"
    assert "'<b>&'" in (case.findtext("system-out") or "")


def test_junit_compare_only_fixed_seed_can_fail(compared: CompareReport) -> None:
    root = parse(junit.render_compare(compared))
    suite = root.find("testsuite")
    assert suite is not None
    assert counts(root) == counts(suite) == ("3", "0", "0", "6.750")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == [  # the conditions' labels, as every other output names them
        "pkg.mod:objective [fixed seed]",
        "pkg.mod:objective [seed sweep]",
        "pkg.mod:objective [as written]",
    ]
    loose = compared.conditions["uncontrolled"]
    assert loose.verdict == "not reproducible"
    loose_case = cases["pkg.mod:objective [as written]"]
    assert loose_case.get("classname") == "repro-check.compare"
    assert loose_case.find("failure") is None
    assert fmt.headline(loose) in (loose_case.findtext("system-out") or "")
    assert suite.findtext("system-out") == compared.sentence + "\n"
    # the sweep is described, not judged: no verdict headline, no hint to diagnose it
    sweep_out = cases["pkg.mod:objective [seed sweep]"].findtext("system-out") or ""
    assert "NOT REPRODUCIBLE" not in sweep_out and "diagnose" not in sweep_out
    assert sweep_out.startswith("SEED SWEEP (not judged (meant to vary)): seeds ")
    assert "NOT REPRODUCIBLE" in (loose_case.findtext("system-out") or "")

    broken = dataclasses.replace(
        compared,
        conditions={**compared.conditions, "fixed_seed": compared.conditions["uncontrolled"]},
    )
    root = parse(junit.render_compare(broken))
    assert counts(root)[:3] == ("3", "1", "0")
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    divergence = loose.comparison.divergence
    assert divergence is not None and failure.get("message") == fmt.divergence_line(divergence)


def test_junit_compare_informational_conditions_pass_even_incomplete(
    compared: CompareReport, crashed: report.RunReport
) -> None:
    with_crash = dataclasses.replace(
        compared, conditions={**compared.conditions, "seed_sweep": crashed}
    )
    assert with_crash.exit_code == 0
    assert counts(parse(junit.render_compare(with_crash)))[:3] == ("3", "0", "0")
    # without fixed_seed the exit code says incomplete, and so does the XML
    no_gate = dataclasses.replace(
        compared,
        conditions={"seed_sweep": crashed, "uncontrolled": compared.conditions["uncontrolled"]},
    )
    assert no_gate.exit_code == 3
    assert counts(parse(junit.render_compare(no_gate)))[:3] == ("2", "0", "1")


# --- Markdown ---------------------------------------------------------------------------------


def test_markdown_reproducible(same: report.RunReport) -> None:
    md = markdown.render_run(same)
    lines = md.splitlines()
    assert lines[0] == "### ✅ repro-check run: REPRODUCIBLE: 3 runs × 3 trials agree bit for bit"
    assert f"`{fmt.settings_line(same)}`" in lines
    assert table_rows(md) == [
        ["run", "status", "best value", "kind", "x", "trials", "wall s"],
        ["---:", "---", "---:", "---:", "---:", "---:", "---:"],
        ["0", "ok", "1.5", "'b'", "0.25", "3", "0.5"],
        ["1", "ok", "1.5", "'b'", "0.25", "3", "0.75"],
        ["2", "ok", "1.5", "'b'", "0.25", "3", "1"],
    ]
    assert "≠" not in md and "First divergence" not in md and "Hint" not in md
    assert "**Best value:** 1.5 ± 0  (1.5 .. 1.5) · **distinct histories:** 1 of 3" in lines
    assert f"**Environment:** `{fmt.environment_line(same.environment)}`" in lines
    assert "- the verdict holds with these controls applied: sampler\\_seed, global\\_rng" in md
    assert md.endswith("\n") and not md.endswith("\n\n")


def test_markdown_divergence_marks_differing_cells(diverged: report.RunReport) -> None:
    md = markdown.render_run(diverged)
    lines = md.splitlines()
    assert lines[0] == "### ❌ repro-check run: NOT REPRODUCIBLE: runs part at trial 1 (values)"
    assert table_rows(md)[2:] == [
        ["0", "ok", "1.5", "'b'", "0.25", "3", "0.5"],
        ["1", "ok", "1.5", "'b'", "0.25", "3", "0.75"],
        ["2", "ok", "1.25 ≠", "'b'", "0.25", "3", "1"],
    ]
    divergence = diverged.comparison.divergence
    assert divergence is not None
    assert f"**First divergence:** `{fmt.divergence_line(divergence)}`" in lines
    assert f"**Hint:** {fmt.diagnose_hint(diverged)}" in lines
    assert "**distinct histories:** 2 of 3" in md


def test_markdown_crashed_run(crashed: report.RunReport) -> None:
    md = markdown.render_run(crashed)
    assert md.startswith("### ⚠️ repro-check run: INCOMPLETE: 1 of 3 runs did not finish")
    assert ["1", "crashed", "3 ≠", "'a' ≠", "0.5 ≠", "1", "0.75"] in table_rows(md)
    assert "- run 1 crashed: worker exited with code 1: boom" in md.splitlines()
    assert "Hint" not in md


def test_markdown_escapes_pipes_and_markup() -> None:
    runs = runs_of(history(kind="a|b"), history(kind="a|b"), history(kind="<i>c|d</i>"))
    runs[0] = dataclasses.replace(runs[0], notes=("1. *not* a list\nsecond line",))
    md = markdown.render_run(build(runs, target="my_pkg|x:objective"))
    rows = table_rows(md)
    assert all(len(row) == 7 for row in rows)  # no pipe split a cell
    assert rows[2][3] == "'a\\|b'"  # the reference row: never marked
    assert rows[4][3] == "'\\<i\\>c\\|d\\</i\\>' ≠"
    assert "- 1\\. \\*not\\* a list second line" in md.splitlines()
    assert "`my_pkg|x:objective · seed 0" in md  # a code span shows it verbatim


def test_markdown_and_junit_agree_with_the_console(diverged: report.RunReport) -> None:
    divergence = diverged.comparison.divergence
    assert divergence is not None
    line = fmt.divergence_line(divergence)
    assert f"First divergence: {line}" in console_text(diverged)
    assert f"`{line}`" in markdown.render_run(diverged)
    failure = parse(junit.render_run(diverged)).find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message") == line
    stats = fmt.stats_line(diverged.comparison.best_value)
    assert stats in console_text(diverged) and stats in markdown.render_run(diverged)


def test_markdown_compare(compared: CompareReport) -> None:
    md = markdown.render_compare(compared)
    lines = md.splitlines()
    assert lines[0] == "### ✅ repro-check compare: pkg.mod:objective"
    assert compared.sentence.startswith("fixed seeds remove all spread")
    assert compared.sentence in lines
    sweep = compared.conditions["seed_sweep"].comparison.best_value
    assert sweep is not None
    assert table_rows(md) == [
        ["condition", "verdict", "best value", "distinct histories", "first divergence"],
        ["---", "---", "---:", "---:", "---"],
        ["fixed seed", "✅ reproducible", "1.5 ± 0  (1.5 .. 1.5); n=3", "1 of 3", "-"],
        [
            "seed sweep",
            "not judged (meant to vary)",
            f"{fmt.stats_line(sweep)}; {interval_text(sweep)}",
            "3 of 3",
            "trial 1 (values)",
        ],
        [
            "as written",
            "not reproducible",
            "1.5 ± 0.25  (1.25 .. 1.75); n=3, 95% CI of the mean 0.878915 .. 2.12108",
            "3 of 3",
            "trial 1 (values)",
        ],
    ]
    divergence = compared.conditions["uncontrolled"].comparison.divergence
    assert divergence is not None
    assert f"- as written: `{fmt.divergence_line(divergence)}`" in lines


def test_render_dispatches_on_type(diverged: report.RunReport, compared: CompareReport) -> None:
    assert markdown.render(diverged) == markdown.render_run(diverged)
    assert markdown.render(compared) == markdown.render_compare(compared)
    assert junit.render(diverged) == junit.render_run(diverged)
    assert junit.render(compared) == junit.render_compare(compared)
    with pytest.raises(TypeError):
        markdown.render("not a report")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        junit.render(None)  # type: ignore[arg-type]


def test_differing_from_a_baseline_fails_in_both(same: report.RunReport) -> None:
    from repro_check.checks.baseline import check_against

    check = check_against(
        "baseline.json", list(runs_of(history(best=1.25))), same.runs, same.plan.tolerance
    )
    rep = dataclasses.replace(same, baseline=check)
    assert rep.reproducible and rep.exit_code == 1
    failure = parse(junit.render_run(rep)).find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message") == fmt.headline(rep)
    assert f"Baseline: {fmt.baseline_line(rep)}" in (failure.text or "")
    md = markdown.render_run(rep)
    assert md.startswith("### ❌ ")
    assert "**Baseline:** differs from baseline baseline.json: trial 1, values" in md


def test_awaiting_is_skipped_in_junit_and_not_a_green_tick_in_markdown() -> None:
    import dataclasses
    import xml.etree.ElementTree as ET

    from repro_check.render import junit, markdown

    runs = [RunRecord(0, 0, "ok", (plain_trial(0, 1.0),))]
    built = report.build("run", CheckPlan(target="m:f", runs=2), "cpu", runs)
    waiting = dataclasses.replace(built, awaiting=1, ran_here=1)
    suite = ET.fromstring(junit.render(waiting)).find("testsuite")
    assert suite is not None and suite.get("skipped") == "1" and suite.get("failures") == "0"
    assert not markdown.render(waiting).startswith("### ✅")
