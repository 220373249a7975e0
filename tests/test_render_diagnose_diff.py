"""``diagnose`` and ``diff`` drawn through the section model (issue 20): the console, Markdown
and JUnit draw the same sections, in the same order; hand-built reports, no processes (but the
last test, which runs ``diff`` on two saved files in process)."""

from __future__ import annotations

import dataclasses
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import inprocess_cli
from rich.console import Console
from test_render_markdown_junit import ENV, build, history, runs_of

from repro_check.checks.diff import diff_reports
from repro_check.plan.settings import CheckPlan, Controls
from repro_check.render import console_diagnose, console_diff, junit, markdown, sections
from repro_check.render import sections_diagnose as diag_sections
from repro_check.render import sections_diff as diff_sections
from repro_check.render.formats import FORMATS
from repro_check.results.comparison import Divergence
from repro_check.results.diagnosis import Cause, Diagnosis, Experiment, Location
from repro_check.results.report import RunReport
from repro_check.results.report_diff import ReportDiff


def _console(draw: object, *args: object) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=200, no_color=True, highlight=False)
    draw(*args, console)  # type: ignore[operator]
    return buf.getvalue()


def _suite(xml: str) -> ET.Element:
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None
    return suite


def _counts(suite: ET.Element) -> tuple[str | None, ...]:
    return tuple(suite.get(k) for k in ("tests", "failures", "errors", "skipped"))


# --- diagnose ----------------------------------------------------------------------------------

FIX = "sampler = optuna.samplers.TPESampler(seed=0)  # ``` not a fence"


def _experiments() -> tuple[Experiment, ...]:
    runs = tuple(runs_of(history(), history(), history(best=1.25)))
    split = Divergence(1, "values", (0, 2), 0.25, 0.2, "1.5 vs 1.25")
    return (
        Experiment("full_control", "every control on", Controls(), "reproducible", None, runs[:2]),
        Experiment(
            "no_sampler_seed", "no sampler seed", Controls(), "not reproducible", split, runs
        ),
    )


def diagnosis(*causes: Cause, **fields: object) -> Diagnosis:
    """With causes, full control and the ablation that parted; without, full control alone."""
    plan = CheckPlan(target="pkg.mod:objective")
    experiments = _experiments() if causes else _experiments()[:1]
    return Diagnosis(plan, "cpu", True, causes, experiments, **fields)  # type: ignore[arg-type]


SEED = Cause(
    "sampler_seed", "runs part at trial 1 | without it", FIX, 1, location=Location("t.py", 7, "x()")
)
RNG = Cause("global_rng", "random.random() unseeded", "import random\nrandom.seed(0)")


def test_diagnose_sections_are_what_the_console_shows_in_order() -> None:
    found = diagnosis(SEED, RNG, warnings=("a warning",), nondeterministic_ops=("aten::x",))
    parts = diag_sections.diagnose_sections(found)
    assert [type(p).__name__ for p in parts] == [
        "DiagnoseHeadline",
        "FoundCause",
        "FoundCause",
        "NondeterministicOps",
        "Experiments",
        "Warnings",
    ]
    causes = [p for p in parts if isinstance(p, diag_sections.FoundCause)]
    assert [(c.rank, c.id, c.location) for c in causes] == [
        (1, "sampler_seed", "t.py:7: x()"),
        (2, "global_rng", None),
    ]
    out = _console(console_diagnose.render, found)
    lines = [
        "2 cause(s): sampler_seed, global_rng — reproducible under full control",
        "1. sampler_seed  runs part at trial 1 | without it",
        "   at t.py:7: x()",
        "2. global_rng  random.random() unseeded",
        "Ops without a deterministic kernel: aten::x",
        "Experiments",
        "Warnings:",
    ]
    where = [out.index(line) for line in lines]
    assert where == sorted(where), out
    assert FIX in out  # the fix whole, in its panel


def test_diagnose_markdown_heads_each_cause_with_its_fix_fenced() -> None:
    md = markdown.render_diagnose(diagnosis(SEED, RNG, warnings=("- not a list",)))
    assert md.startswith("### ❌ repro-check diagnose: 2 cause(s): sampler\\_seed, global\\_rng")
    assert "#### 1. sampler\\_seed" in md and "#### 2. global\\_rng" in md
    assert "runs part at trial 1 \\| without it" in md  # user text escaped
    assert "**At:** `t.py:7: x()`" in md
    assert f"````python\n{FIX}\n````" in md  # a longer fence than the fix's own backticks
    assert "```python\nimport random\nrandom.seed(0)\n```" in md
    assert "| no\\_sampler\\_seed | no sampler seed | not reproducible | trial 1 (values) |" in md
    assert "- \\- not a list" in md
    assert markdown.render_diagnose(diagnosis()).startswith("### ✅ repro-check diagnose: No")
    incomplete = markdown.render_diagnose(diagnosis(incomplete=True))
    assert incomplete.startswith("### ⚠️ repro-check diagnose: INCOMPLETE")


def test_diagnose_junit_is_one_failing_case_per_cause() -> None:
    suite = _suite(junit.render_diagnose(diagnosis(SEED, RNG)))
    assert _counts(suite) == ("2", "2", "0", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "pkg.mod:objective [sampler_seed]",
        "pkg.mod:objective [global_rng]",
    ]
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("message") == SEED.evidence
    assert failure.get("type") == "not reproducible"
    assert "   at t.py:7: x()" in (failure.text or "") and FIX in (failure.text or "")
    assert suite.get("time") == "2.250"  # every experiment's runs, each once: 0.5 + 0.75 + 1.0
    out = suite.find("system-out")
    assert out is not None and "Experiments:" in (out.text or "")


def test_diagnose_junit_without_a_cause() -> None:
    clean = _suite(junit.render_diagnose(diagnosis()))
    assert _counts(clean) == ("1", "0", "0", "0")
    incomplete = _suite(junit.render_diagnose(diagnosis(incomplete=True, warnings=("why",))))
    assert _counts(incomplete) == ("1", "0", "1", "0")
    error = incomplete.find("testcase/error")
    assert error is not None and (error.text or "").endswith("\nwhy")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reproducible_under_full_control": False}, "full control did not reproduce"),
        ({"experiments": _experiments()}, "no_sampler_seed did not reproduce (no sampler seed)"),
    ],
)
def test_a_diagnosis_without_a_cause_is_no_pass_when_runs_parted(
    changes: dict[str, object], message: str
) -> None:
    """No cause named, yet full control, or an experiment (such as the screen with
    PYTHONHASHSEED and pinned threads both off), did not reproduce: never a tick or a pass."""
    unexplained = dataclasses.replace(diagnosis(), **changes)  # type: ignore[arg-type]
    head = diag_sections.diagnose_headline(unexplained)
    assert head.tone == "unexplained" and head.unexplained == f"no cause named, yet {message}"
    suite = _suite(junit.render_diagnose(unexplained))
    assert _counts(suite) == ("1", "1", "0", "0")
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.get("message") == head.unexplained
    md = markdown.render_diagnose(unexplained)
    assert md.startswith("### ❌ repro-check diagnose: No single cause found, yet runs parted")
    assert f"\n\nno cause named, yet {message.replace('_', chr(92) + '_')}\n" in md
    # the console never says the study reproduces: its experiments table shows what parted
    shown = _console(console_diagnose.render, unexplained)
    assert "No single cause found, yet runs parted" in shown and "reproduces even" not in shown


# --- diff --------------------------------------------------------------------------------------


def _same() -> RunReport:
    return build(runs_of(history(), history(), history()))  # type: ignore[no-any-return]


def _other_env() -> RunReport:
    env = {**ENV, "packages": {"optuna": "4.1.0", "numpy": "2.0.0"}}
    same = _same()
    runs = tuple(dataclasses.replace(r, environment=env) for r in same.runs)
    return dataclasses.replace(same, runs=runs)


def different() -> ReportDiff:
    other = build(runs_of(history(best=1.0), history(best=1.0), history(best=1.0)))
    return diff_reports("a.json", _same(), "b.json", other)


def test_diff_sections_are_what_the_console_shows_in_order() -> None:
    diff = different()
    parts = diff_sections.diff_sections(diff)
    assert [type(p).__name__ for p in parts] == [
        "DiffHeadline",
        "Compared",
        "DiffResults",
        "Divergence",
        "HistoriesAcross",
        "DiffEnvironment",
    ]
    out = _console(lambda d, c: console_diff.render(d, c), diff)
    labels = ["DIFFERENT RESULTS", "Compared:", "Results", "First divergence:", "Distinct"]
    where = [out.index(label) for label in labels]
    assert where == sorted(where), out
    env = diff_sections.diff_sections(diff_reports("a", _same(), "b", _other_env()))[-1]
    assert isinstance(env, diff_sections.DiffEnvironment)
    assert [(r.key, r.a, r.b) for r in env.rows] == [("packages.optuna", "4.0.0", "4.1.0")]
    assert env.hidden == 4 and not env.identical
    everything = diff_sections.diff_sections(diff_reports("a", _same(), "b", _other_env()), True)
    assert isinstance(everything[-1], diff_sections.DiffEnvironment)
    assert len(everything[-1].rows) == 5 and everything[-1].hidden == 0


def test_diff_markdown() -> None:
    md = markdown.render_diff(different())
    assert md.startswith("### ❌ repro-check diff: DIFFERENT RESULTS: they part at trial 1")
    assert "|  | A: a.json | B: b.json |" in md
    assert "| own verdict | reproducible | reproducible |" in md
    assert "**First divergence:** `trial 1, values:" in md
    same = markdown.render_diff(diff_reports("a.json", _same(), "b.json", _other_env()))
    assert same.startswith("### ✅ repro-check diff: SAME RESULTS")
    assert "| packages.optuna ≠ | 4.0.0 | 4.1.0 |" in same
    assert "(4 identical environment entries hidden)" in same
    assert FORMATS["markdown"].render(different()) == md


def test_diff_junit_is_one_case_judged_by_the_exit_code() -> None:
    diff = different()
    suite = _suite(junit.render_diff(diff))
    assert _counts(suite) == ("1", "1", "0", "0")
    case = suite.find("testcase")
    assert case is not None and case.get("name") == "a.json vs b.json"
    failure = case.find("failure")
    divergence = diff_sections.diff_sections(diff)[3]
    assert isinstance(divergence, sections.Divergence)
    assert failure is not None and failure.get("message") == divergence.text
    assert failure.get("type") == "different results"
    same = _suite(junit.render_diff(diff_reports("a", _same(), "b", _same())))
    assert _counts(same) == ("1", "0", "0", "0")
    crashed = build(runs_of(history(), history()[:1], history(), status={1: "crashed"}))
    incomplete = _suite(junit.render_diff(diff_reports("a", _same(), "b", crashed)))
    assert _counts(incomplete) == ("1", "0", "1", "0")
    assert junit.render(diff) == FORMATS["junit"].render(diff)


def test_diagnose_and_diff_have_markdown_and_junit_but_no_plot(tmp_path: Path) -> None:
    for report in (diagnosis(SEED), different()):
        assert [n for n, f in FORMATS.items() if f.accepts(report)] == ["json", "markdown", "junit"]
        assert markdown.render(report) and junit.render(report)
        with pytest.raises(TypeError, match="no plot view"):
            FORMATS["plot"].write(report, tmp_path / "x.svg")


def test_diff_command_writes_junit_and_markdown(tmp_path: Path) -> None:
    """``diff --junit/--markdown`` end to end, on two saved reports (no run)."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    FORMATS["json"].write(_same(), a)
    FORMATS["json"].write(different().b, b)
    xml, md = tmp_path / "d.xml", tmp_path / "d.md"
    result = inprocess_cli("diff", str(a), str(b), "--junit", str(xml), "--markdown", str(md))
    assert result.code == 1, result.out + result.err
    assert f"wrote {md}, {xml}" in result.err
    suite = _suite(xml.read_text(encoding="utf-8"))
    assert _counts(suite) == ("1", "1", "0", "0")
    case = suite.find("testcase")
    assert case is not None and case.get("name") == f"{a} vs {b}"
    assert md.read_text(encoding="utf-8").startswith("### ❌ repro-check diff: DIFFERENT")
