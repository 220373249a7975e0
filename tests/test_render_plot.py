"""--plot: run and compare reports drawn to PNG and SVG from hand-made records."""

from __future__ import annotations

import importlib.util
import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from repro_check.errors import EXIT_USAGE, ConfigError
from repro_check.plan.settings import CheckPlan, StudySettings, Tolerance
from repro_check.render import plot
from repro_check.results import report
from repro_check.results.compare_report import CompareReport
from repro_check.results.records import RunRecord
from repro_check.results.trial_record import TrialRecord

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason='needs matplotlib (pip install "repro-check[plot]")',
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MISSING = (
    '--plot needs matplotlib, the "plot" extra: pip install matplotlib '
    '(or ".[plot]" in a repro-check checkout)'
)


def trial(number: int, *values: float, state: str = "COMPLETE") -> TrialRecord:
    return TrialRecord(number, state, {"x": float(number)}, values if values else None)


def history(
    values: list[float | None], directions: tuple[str, ...] = ("minimize",)
) -> tuple[TrialRecord, ...]:
    """None is a FAIL trial; everything else a COMPLETE one."""
    return tuple(
        trial(i, state="FAIL") if v is None else trial(i, v, *([1.0] * (len(directions) - 1)))
        for i, v in enumerate(values)
    )


def run_report(
    runs: list[list[float | None]], directions: tuple[str, ...] = ("minimize",)
) -> report.RunReport:
    plan = CheckPlan(
        target="m:f", runs=len(runs), study=StudySettings(trials=5, directions=directions)
    )
    records = [
        RunRecord(i, 0, "ok", history(values, directions), directions)
        for i, values in enumerate(runs)
    ]
    return report.build("run", plan, "cpu", records)


def diverging() -> report.RunReport:
    same = [3.0, None, 2.5, math.nan, 1.0]
    return run_report([same, same, [3.0, None, 2.7, math.nan, 0.5]])


def compare_report() -> CompareReport:
    conditions = {
        "fixed_seed": run_report([[2.0, 1.0]] * 3),
        "seed_sweep": run_report([[2.0, 1.0], [2.0, 1.5], [0.5, 3.0]]),
        "uncontrolled": run_report([[2.0, 1.0], [4.0, 2.0], [1.0, 0.25]]),
    }
    first = conditions["fixed_seed"]
    return CompareReport(first.plan, first.device, conditions)


def svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return " ".join(t.strip() for t in root.itertext() if t.strip())


@needs_matplotlib
def test_run_png_decodes_at_the_figure_size(tmp_path: Path) -> None:
    from matplotlib.image import imread

    path = tmp_path / "run.png"
    plot.plot_run(diverging(), path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert imread(path).shape == (660, 1080, 4)  # 9 x 5.5 in at 120 dpi, RGBA


@needs_matplotlib
def test_run_svg_marks_the_first_divergence(tmp_path: Path) -> None:
    path = tmp_path / "run.svg"
    built = diverging()
    assert built.comparison.divergence is not None
    assert (built.comparison.divergence.trial, built.comparison.divergence.field) == (2, "values")
    plot.plot_run(built, path)
    text = svg_text(path)
    assert "first divergence: trial 2 (values)" in text
    assert "m:f: not reproducible" in text
    for index in range(3):
        assert f"run {index} (seed 0)" in text


@needs_matplotlib
def test_reproducible_run_has_no_divergence_line(tmp_path: Path) -> None:
    path = tmp_path / "run.svg"
    plot.plot_run(run_report([[1.0, 0.5]] * 2), path)
    text = svg_text(path)
    assert "m:f: reproducible" in text
    assert "first divergence" not in text


@needs_matplotlib
def test_multi_objective_run_plots_the_first_objective(tmp_path: Path) -> None:
    path = tmp_path / "multi.svg"
    built = run_report([[1.0, 0.5, 0.7]] * 2, directions=("maximize", "minimize"))
    plot.plot_run(built, path)
    text = svg_text(path)
    assert "first of 2 objectives shown (maximize)" in text
    assert "objective 1 value" in text


@needs_matplotlib
def test_run_without_completed_trials_still_draws(tmp_path: Path) -> None:
    path = tmp_path / "empty.svg"
    plot.plot_run(run_report([[None, None]] * 2), path)
    text = svg_text(path)
    assert "no completed trials to plot" in text
    assert "run 1 (seed 0): no values to plot" in text


def test_history_skips_failed_pruned_and_nan_and_tracks_the_best() -> None:
    run = RunRecord(
        0,
        0,
        "ok",
        (
            trial(0, 3.0),
            trial(1, state="FAIL"),
            trial(2, state="PRUNED"),
            trial(3, math.nan),
            trial(4, 1.0),
            trial(5, 2.0),
        ),
    )
    numbers, values = plot._history(run)
    assert (numbers, values) == ([0, 4, 5], [3.0, 1.0, 2.0])
    assert plot._best_so_far(values, "minimize") == [3.0, 1.0, 1.0]
    assert plot._best_so_far(values, "maximize") == [3.0, 3.0, 3.0]


def test_best_so_far_of_a_constrained_run_counts_feasible_trials_only() -> None:
    def constrained(number: int, value: float, slack: float) -> TrialRecord:
        t = trial(number, value)
        return TrialRecord(
            t.number, t.state, t.params, t.values, system_attrs={"constraints": [slack]}
        )

    run = RunRecord(
        0, 0, "ok", (constrained(0, 1.0, 1.0), constrained(1, 3.0, 0.0), constrained(2, 0.5, 2.0))
    )
    series = plot._series(run, "minimize")
    assert math.isnan(series.best[0])  # no feasible trial yet: no best
    assert series.best[1:] == [3.0, 3.0]  # 0.5 is infeasible: never the best
    assert run.best_value == 3.0


@needs_matplotlib
def test_compare_png_and_svg(tmp_path: Path) -> None:
    from matplotlib.image import imread

    png, svg = tmp_path / "compare.png", tmp_path / "compare.svg"
    plot.plot_compare(compare_report(), png)
    plot.plot_compare(compare_report(), svg)
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert imread(png).shape == (660, 1080, 4)
    text = svg_text(svg)
    assert "m:f: best value per condition" in text
    for name in ("fixed seed", "seed sweep", "as written"):  # the labels every output uses
        assert name in text
    assert "1 ± 0" in text and "n=3" in text  # fixed seed: every run's best is 1.0
    assert "1 ± 0.5" in text  # seed sweep: bests 1.0, 1.5, 0.5
    assert "n=3, 95% CI of the mean -0.242 .. 2.24" in text
    assert "not judged (meant to vary)" in text


@needs_matplotlib
def test_plot_dispatches_on_the_report_type(tmp_path: Path) -> None:
    run_svg, compare_svg = tmp_path / "run.svg", tmp_path / "compare.svg"
    plot.plot(diverging(), run_svg)
    plot.plot(compare_report(), compare_svg)
    assert "first divergence" in svg_text(run_svg)
    assert "best value per condition" in svg_text(compare_svg)


@needs_matplotlib
def test_output_is_deterministic_and_leaves_no_pyplot_state(tmp_path: Path) -> None:
    had_pyplot = "matplotlib.pyplot" in sys.modules
    first, second = tmp_path / "a.svg", tmp_path / "b.svg"
    plot.plot_run(diverging(), first)
    plot.plot_run(diverging(), second)
    assert first.read_bytes() == second.read_bytes()
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot


@pytest.mark.parametrize("name", ["plot.pdf", "plot", "plot.png.txt"])
def test_bad_suffix_is_a_config_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(ConfigError, match=r"^--plot: .* must end in \.png or \.svg$") as info:
        plot.plot(diverging(), path)
    assert info.value.exit_code == EXIT_USAGE
    assert not path.exists()


@needs_matplotlib
def test_unwritable_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write"):
        plot.plot_run(diverging(), tmp_path / "missing-dir" / "run.png")


def test_missing_matplotlib_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for obj in (diverging(), compare_report()):
        with pytest.raises(ConfigError) as info:
            plot.plot(obj, tmp_path / "out.png")
        assert str(info.value) == MISSING
        assert info.value.exit_code == EXIT_USAGE
    assert not (tmp_path / "out.png").exists()


def noisy_like() -> report.RunReport:
    """Like repro_check.examples.noisy: a few values near 100 over a best-so-far near 0, and
    every run off the reference by noise from trial 0 on, then by much more."""
    ref: list[float | None] = [0.93, 5.2, 0.08, 1.1, 12.4, 0.9, 10.5, 34.0, 52.7, 18.9, 115.0]
    other: list[float | None] = [0.97, 5.1, 0.11, 1.0, 12.5, 0.8, 10.4, 34.1, 3.0, 61.0, 0.2]
    return run_report([ref, other])


def test_outliers_switch_the_history_panel_to_a_log_like_scale() -> None:
    """Issue 9 item 7: a 0-120 linear axis laid every best-so-far line flat on the others."""
    data = plot.run_plot(noisy_like())
    assert data.value_scale.kind == "log"  # every value > 0
    negative = plot.run_plot(run_report([[0.5, -0.1, 80.0, 40.0], [0.6, -0.12, 90.0, 20.0]]))
    assert negative.value_scale.kind == "symlog"
    assert negative.value_scale.linthresh == 0.1  # linear around the best values (|v| < 0.6)
    plain = plot.run_plot(run_report([[3.0, 2.0, 1.0, 1.5], [3.0, 2.0, 1.1, 1.4]]))
    assert plain.value_scale.kind == "linear"


def test_difference_panel_holds_each_runs_offset_from_the_reference() -> None:
    data = plot.run_plot(noisy_like())
    assert data.reference == 0
    assert [d.run for d in data.differences] == [1]
    diff = data.differences[0]
    assert diff.numbers == list(range(11))
    assert diff.deltas[0] == 0.97 - 0.93
    assert diff.deltas[10] == 0.2 - 115.0
    # noise of ~0.1 at first, ~100 later: symlog, linear within the small differences
    assert data.difference_scale.kind == "symlog"
    assert data.difference_scale.linthresh == 0.01
    assert (data.divergence_trial, data.divergence_field, data.divergence_runs) == (
        0,
        "values",
        (1,),
    )
    assert "runs part at trial 0 (values)" in data.title


def test_reproducible_runs_have_zero_differences_on_a_linear_scale() -> None:
    data = plot.run_plot(run_report([[1.0, 0.5, 0.7]] * 3))
    assert [d.deltas for d in data.differences] == [[0.0, 0.0, 0.0]] * 2
    assert data.difference_scale.kind == "linear"
    assert data.divergence_trial is None and data.divergence_runs == ()


def test_pruned_run_reaches_its_last_trial_and_an_unfinished_one_says_where_it_stopped() -> None:
    """A run whose last trials were pruned went on to its last trial; only a run that did
    not finish is drawn as stopping."""
    plan = CheckPlan(target="m:f", runs=2, study=StudySettings(trials=4))
    trials = (
        trial(0, 2.0),
        trial(1, 1.0),
        TrialRecord(2, "PRUNED", {"x": 2.0}, (5.0,)),
        TrialRecord(3, "PRUNED", {"x": 3.0}, None),
    )
    runs = [RunRecord(0, 0, "ok", trials), RunRecord(1, 0, "crashed", trials[:2], error="boom")]
    data = plot.run_plot(report.build("run", plan, "cpu", runs))
    pruned, crashed = data.series
    assert (pruned.finished, pruned.last_trial, pruned.numbers) == (True, 3, [0, 1])
    assert pruned.pruned == [(2, 5.0)]
    assert pruned.label == "run 0 (seed 0), 2 pruned"
    assert (crashed.finished, crashed.last_trial) == (False, 1)
    assert crashed.label == "run 1 (seed 0), crashed at trial 1"


@needs_matplotlib
def test_run_plot_has_a_difference_panel(tmp_path: Path) -> None:
    path = tmp_path / "run.svg"
    plot.plot_run(noisy_like(), path)
    text = svg_text(path)
    assert "difference from" in text and "run 1 − run 0" in text
    assert "symlog" in text


def test_difference_panel_knows_the_tolerance_band() -> None:
    built = noisy_like()
    loose = CheckPlan(target="m:f", runs=2, study=built.plan.study, tolerance=Tolerance(0.5, 0.0))
    data = plot.run_plot(report.build("run", loose, "cpu", built.runs))
    assert data.atol == 0.5
    assert data.divergence_trial == 8  # within ±0.5 until trial 8's 52.7 vs 3.0


def test_plot_title_keeps_the_headlines_warning() -> None:
    built = run_report([[1.0, None, None, None]] * 2)
    assert plot.run_plot(built).title == (
        "m:f: reproducible\n"
        "but 3 of 4 trials failed in every run: 2 runs × 4 trials agree bit for bit"
    )
