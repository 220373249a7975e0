"""Plots (``--plot PATH``): a run's replicate histories, or compare's best values per condition.

matplotlib is an optional extra (the ``plot`` extra) imported only here and only
when a plot is asked for. Figures are plain ``matplotlib.figure.Figure`` objects on an Agg canvas:
pyplot is never imported, so no backend is chosen for the user, no figure is registered anywhere,
and nothing needs closing. The output is deterministic (no jitter, no dates in the SVG), so the
same report always draws the same file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro_check.errors import ConfigError
from repro_check.plan.settings import CheckPlan
from repro_check.render import fmt, sections
from repro_check.render.kinds import Kind, by_kind
from repro_check.results.compare_report import DESCRIBED, CompareReport, interval_text, label
from repro_check.results.comparison import Stats
from repro_check.results.records import RunRecord
from repro_check.results.report import RunReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FORMATS = {".png": "png", ".svg": "svg"}
MISSING_MATPLOTLIB = (
    '--plot needs matplotlib, the "plot" extra: pip install matplotlib '
    '(or ".[plot]" in a repro-check checkout)'
)
DIVERGENCE_COLOUR = "#d62728"
DPI = 120


def plot(obj: RunReport | CompareReport, path: Path) -> None:
    """Draw ``obj`` (a ``run`` report or a ``compare`` report) to ``path`` (.png or .svg).
    (The format registry's ``PlotFormat`` calls the two views directly: no import cycle.)"""
    views: dict[Kind, Callable[[Any], None]]
    views = {"run": lambda r: plot_run(r, path), "compare": lambda r: plot_compare(r, path)}
    by_kind(obj, views, "plot")


@dataclass(frozen=True)
class Scale:
    """A y-axis scale: ``linear``, ``log`` or ``symlog`` (linear within ±``linthresh``)."""

    kind: str = "linear"
    linthresh: float | None = None
    reason: str = ""
    """Why it is not linear, for the axis label ("" when linear)."""


@dataclass(frozen=True)
class Series:
    """One run's history as drawn: completed trials, the best so far, the pruned trials."""

    run: int
    label: str
    numbers: list[int]
    values: list[float]
    best: list[float]
    pruned: list[tuple[int, float]]
    """Pruned trials with a value (the last one they reported): drawn apart, never as best."""
    last_trial: int | None
    """The run's last trial number of any state: a finished run's line reaches it."""
    finished: bool


@dataclass(frozen=True)
class Differences:
    """Per-trial differences of one run's value from the reference run's."""

    run: int
    numbers: list[int]
    deltas: list[float]


@dataclass(frozen=True)
class RunPlot:
    """Everything ``plot_run`` draws, computed without matplotlib (and tested as data)."""

    series: list[Series]
    reference: int | None
    differences: list[Differences]
    value_scale: Scale
    difference_scale: Scale
    divergence_trial: int | None
    divergence_field: str | None
    divergence_runs: tuple[int, ...]
    """The runs that differ from the reference there (their differences are circled)."""
    atol: float
    """``--atol``: differences within ±atol are drawn as agreeing (a shaded band)."""
    direction: str
    title: str


def run_plot(report: RunReport) -> RunPlot:
    """The data of a run plot: histories, differences from the reference, scales, the split."""
    direction = _direction(report)
    series = [_series(run, direction, report.plan) for run in report.runs]
    reference = _plot_reference(report.runs)
    differences = []
    if reference is not None:
        others = (run for run in report.runs if run is not reference)
        differences = [d for d in (_differences(reference, run) for run in others) if d.numbers]
    divergence = report.comparison.divergence
    return RunPlot(
        series=series,
        reference=None if reference is None else reference.index,
        differences=differences,
        value_scale=_series_scale(series),
        difference_scale=difference_scale([d for diff in differences for d in diff.deltas]),
        divergence_trial=None if divergence is None else divergence.trial,
        divergence_field=None if divergence is None else divergence.field,
        divergence_runs=() if divergence is None else divergence.runs[1:],
        atol=report.plan.tolerance.atol,
        direction=direction,
        title=_run_title(report, direction),
    )


def _series_scale(series: Sequence[Series]) -> Scale:
    """``value_scale`` of every value drawn (pruned trials' too) and every best so far."""
    values = [v for s in series for v in s.values] + [v for s in series for _, v in s.pruned]
    bests = [v for s in series for v in s.best]
    return value_scale(values, bests, [s.best[-1] for s in series if s.best])


def _plot_reference(runs: Sequence[RunRecord]) -> RunRecord | None:
    """The run the differences are taken from: the first finished one with a value to draw,
    else the first with one (None: no run has)."""
    drawable = [run for run in runs if _history(run)[0]]
    return next((run for run in drawable if run.finished), drawable[0] if drawable else None)


def _run_title(report: RunReport, direction: str) -> str:
    """The target and verdict, then the headline without its verdict word ("runs part at trial
    0 (values)"), which the first line already says."""
    headline = fmt.headline(report)
    verdict_word = re.match(r"[A-Z][A-Z ]*[A-Z]", headline)
    detail = headline[verdict_word.end() :].lstrip(":, ") if verdict_word else headline
    title = f"{report.target}: {report.verdict}\n{detail}"
    if _multi_objective(report):
        count = len(report.plan.study.directions)
        title += f"\nfirst of {count} objectives shown ({direction})"
    return title


def value_scale(
    values: Sequence[float], bests: Sequence[float], finals: Sequence[float] = ()
) -> Scale:
    """Linear, unless a few far values flatten the best-so-far lines (they fill under a tenth
    of the axis): then log (all values > 0) or symlog, linear around the best values."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return Scale()
    low, high = min(finite), max(finite)
    best = [v for v in bests if math.isfinite(v)]
    if high == low or not best:
        return Scale()
    if (max(best) - min(best)) / (high - low) >= 0.1 and _tail_share(finite) < 10:
        return Scale()
    reason = "log scale: a few far values would flatten the rest"
    if low > 0:
        return Scale("log", None, reason)
    # linear up to the size of where the best-so-far lines end, so that they stay apart
    ends = [abs(v) for v in finals if math.isfinite(v) and v]
    magnitude = max(ends, default=0.0) or max((abs(v) for v in best if v), default=1.0)
    return Scale("symlog", _power_below(magnitude), reason.replace("log", "symlog", 1))


def difference_scale(deltas: Sequence[float]) -> Scale:
    """Linear, unless the differences span over two decades (noise at the start, a split
    later): then symlog, linear within the small ones."""
    sizes = sorted(abs(d) for d in deltas if math.isfinite(d) and d != 0)
    if not sizes:
        return Scale()
    small = sizes[len(sizes) // 4]
    if sizes[-1] / small <= 100:
        return Scale()
    return Scale("symlog", _power_below(small), "symlog scale: small and large differences")


def _tail_share(values: Sequence[float]) -> float:
    """How far the largest spread is beyond the bulk: full range over the 10-90% range."""
    ordered = sorted(values)
    n = len(ordered)
    bulk = ordered[(9 * (n - 1)) // 10] - ordered[(n - 1) // 10]
    full = ordered[-1] - ordered[0]
    return math.inf if bulk == 0 and full > 0 else (full / bulk if bulk else 0.0)


def _power_below(value: float) -> float:
    return float(10 ** math.floor(math.log10(value))) if value > 0 else 1.0


def _series(run: RunRecord, direction: str, plan: CheckPlan | None = None) -> Series:
    numbers, values = _history(run)
    pruned = [
        (t.number, t.values[0])
        for t in sorted(run.trials, key=lambda t: t.number)
        if t.state == "PRUNED" and t.values and math.isfinite(t.values[0])
    ]
    last = max((t.number for t in run.trials), default=None)
    label = _run_label(run, plan)
    if run.finished:
        n_pruned = sum(t.state == "PRUNED" for t in run.trials)
        if n_pruned:
            label += f", {n_pruned} pruned"
    elif last is not None:
        label += f" at trial {last}"
    return Series(
        run.index,
        label,
        numbers,
        values,
        _best_so_far(values, direction, _feasibility(run, numbers)),
        pruned,
        last,
        run.finished,
    )


def _differences(reference: RunRecord, run: RunRecord) -> Differences:
    """``run``'s value minus the reference's, at each trial both completed with a value."""
    ref = dict(zip(*_history(reference), strict=True))
    numbers, deltas = [], []
    for number, value in zip(*_history(run), strict=True):
        if number in ref:
            numbers.append(number)
            deltas.append(value - ref[number])
    return Differences(run.index, numbers, deltas)


def plot_run(report: RunReport, path: Path) -> None:
    """Two panels: every replicate's history (values, best so far, pruned trials), and each
    run's per-trial difference from the reference run, with the first split marked."""
    fmt_name = _format(path)
    data = run_plot(report)
    fig, ax = _new_figure()
    diff_ax = _split(fig, ax)
    colours = _colours(len(report.runs))
    n = len(data.series)
    drawn = False
    for position, series in enumerate(data.series):
        # Earlier runs are drawn wider, so identical histories still show every run beneath.
        weight = (n - 1 - position) / max(n - 1, 1)
        drawn |= _draw_series(ax, series, colours[position], 1.2 + 2.0 * weight, 4.0 + 4.0 * weight)
    if any(s.pruned for s in data.series):
        ax.plot([], [], linestyle="none", marker="x", color="grey", label="pruned trial")
    _apply_scale(ax, data.value_scale)
    _draw_differences(diff_ax, data, report, colours)
    if data.divergence_trial is not None:
        _mark_divergence(ax, diff_ax, data, data.divergence_trial)
    if not drawn:
        ax.text(0.5, 0.5, "no completed trials to plot", transform=ax.transAxes, ha="center")
    from matplotlib.ticker import MaxNLocator

    diff_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    diff_ax.set_xlabel("trial")
    objective = "objective 1" if _multi_objective(report) else "objective"
    label = f"{objective} value (markers) and\nbest so far (line, {data.direction})"
    if data.value_scale.kind != "linear":
        label += f"\n{data.value_scale.kind} scale"
    ax.set_ylabel(label, fontsize=9)
    ax.set_title(data.title, fontsize=10)
    if report.runs:
        # the legend on the side away from the divergence label
        late = data.divergence_trial is not None and data.divergence_trial > _last(data) / 2
        ax.legend(loc="upper left" if late else "upper right", fontsize=8, framealpha=0.9)
    ax.grid(True, alpha=0.3)
    _save(fig, path, fmt_name)


def _draw_series(ax: Axes, series: Series, colour: Any, width: float, size: float) -> bool:
    """One run's best-so-far line (dashed and crossed where an unfinished run stopped), its
    values and its pruned trials; False when it has no value to draw (a legend entry only)."""
    if not series.numbers:
        ax.plot([], [], color=colour, label=f"{series.label}: no values to plot")
        return False
    xs, best = list(series.numbers), list(series.best)
    if series.finished and series.last_trial is not None and series.last_trial > xs[-1]:
        xs.append(series.last_trial)  # pruned or failed last trials: the run went on
        best.append(best[-1])
    ax.plot(
        xs,
        best,
        color=colour,
        linewidth=width,
        drawstyle="steps-post",
        linestyle="-" if series.finished else "--",
        label=series.label,
        zorder=2,
    )
    if not series.finished:  # where an unfinished run stopped
        ax.plot([xs[-1]], [best[-1]], marker="X", markersize=9, color=colour, zorder=4)
    ax.plot(
        series.numbers,
        series.values,
        linestyle="none",
        marker="o",
        markersize=size,
        markerfacecolor="none",
        markeredgecolor=colour,
        alpha=0.8,
        zorder=3,
    )
    if series.pruned:
        numbers, values = zip(*series.pruned, strict=True)
        style = {"linestyle": "none", "marker": "x", "color": colour, "alpha": 0.8, "zorder": 3}
        ax.plot(numbers, values, markersize=size, **style)
    return True


def _mark_divergence(ax: Axes, diff_ax: Axes, data: RunPlot, trial: int) -> None:
    """A dashed line at the first divergence on both panels, labelled on the upper one."""
    for axis in (ax, diff_ax):
        axis.axvline(trial, color=DIVERGENCE_COLOUR, linestyle="--", linewidth=1.2)
    right = trial > _last(data) / 2  # keep the label inside the axes
    ax.annotate(
        f"first divergence: trial {trial} ({data.divergence_field})",
        xy=(trial, 0.98),
        xycoords=ax.get_xaxis_transform(),
        xytext=(-4 if right else 4, 0),
        textcoords="offset points",
        color=DIVERGENCE_COLOUR,
        ha="right" if right else "left",
        va="top",
        fontsize=9,
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
        zorder=5,
    )


def _last(data: RunPlot) -> int:
    return max((s.last_trial or 0 for s in data.series), default=0)


def _split(fig: Figure, ax: Axes) -> Axes:
    """Turn the one axes into the history panel above a difference panel sharing its x."""
    from matplotlib.gridspec import GridSpec

    grid = GridSpec(2, 1, figure=fig, height_ratios=[2.2, 1.0])
    ax.set_subplotspec(grid[0])
    diff_ax = fig.add_subplot(grid[1], sharex=ax)
    ax.tick_params(labelbottom=False)
    return diff_ax


def _apply_scale(ax: Axes, scale: Scale, ticks: int = 9) -> None:
    if scale.kind == "log":
        ax.set_yscale("log")
    elif scale.kind == "symlog":
        from matplotlib.ticker import SymmetricalLogLocator

        linthresh = scale.linthresh or 1.0
        ax.set_yscale("symlog", linthresh=linthresh)
        locator = SymmetricalLogLocator(linthresh=linthresh, base=10)
        locator.numticks = ticks  # a decade per tick crowds a short panel
        ax.yaxis.set_major_locator(locator)


def _draw_differences(ax: Axes, data: RunPlot, report: RunReport, colours: Sequence[Any]) -> None:
    """Each run's value minus the reference run's, trial by trial; the split circled."""
    ax.axhline(0.0, color="black", linewidth=0.8, alpha=0.6)
    if data.atol > 0:
        ax.axhspan(-data.atol, data.atol, color="grey", alpha=0.15, label=f"±atol {data.atol:g}")
    position = {run.index: i for i, run in enumerate(report.runs)}
    for diff in data.differences:
        colour = colours[position[diff.run]]
        ax.plot(
            diff.numbers,
            diff.deltas,
            marker="o",
            markersize=4,
            linewidth=1.0,
            color=colour,
            label=f"run {diff.run} − run {data.reference}",
        )
        if data.divergence_trial in diff.numbers and diff.run in data.divergence_runs:
            at = diff.numbers.index(data.divergence_trial)
            ax.plot(
                [data.divergence_trial],
                [diff.deltas[at]],
                marker="o",
                markersize=11,
                markerfacecolor="none",
                markeredgecolor=DIVERGENCE_COLOUR,
                markeredgewidth=1.8,
                linestyle="none",
                zorder=5,
            )
    _apply_scale(ax, data.difference_scale, ticks=5)
    if data.reference is None or not data.differences:
        message = "no two runs completed a common trial"
    elif all(d == 0 for diff in data.differences for d in diff.deltas):
        message = f"every value matches run {data.reference}'s"
    else:
        message = ""
    if message:
        ax.text(
            0.5,
            0.85,
            message,
            transform=ax.transAxes,
            ha="center",
            va="top",
            fontsize=9,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
        )
    label = f"difference from\nrun {data.reference}" if data.reference is not None else "difference"
    if data.difference_scale.kind != "linear":
        label += f"\n({data.difference_scale.kind})"
    ax.set_ylabel(label, fontsize=9)
    if data.differences and len(data.differences) <= 6:
        ax.legend(loc="lower right", fontsize=7, framealpha=0.9)
    ax.grid(True, alpha=0.3)


def plot_compare(report: CompareReport, path: Path) -> None:
    """The best value of every run, one column per condition, with its mean ± std."""
    fmt_name = _format(path)
    fig, ax = _new_figure()
    reports = list(report.conditions.values())
    multi = any(_multi_objective(r) for r in reports)
    direction = _direction(reports[0]) if reports else "minimize"
    colours = _colours(len(reports))
    ticks: list[str] = []
    for x, (name, condition) in enumerate(report.conditions.items()):
        outcome = sections.NOT_JUDGED if name in DESCRIBED else condition.verdict
        best = [_best_value(run, _direction(condition)) for run in _counted_runs(condition.runs)]
        values = [v for v in best if v is not None]
        stats = Stats.of(values)
        points = [v for v in values if math.isfinite(v)]
        ax.plot(
            [x + offset for offset in _spread_offsets(len(points))],
            points,
            linestyle="none",
            marker="o",
            markersize=6,
            color=colours[x],
            alpha=0.75,
            zorder=3,
        )
        if stats is not None and math.isfinite(stats.mean):
            std = stats.std if math.isfinite(stats.std) else 0.0
            ax.errorbar(
                [x + 0.3],
                [stats.mean],
                yerr=[std],
                fmt="_",
                markersize=14,
                color="black",
                capsize=5,
                linewidth=1.5,
                zorder=4,
            )
        mean = None if stats is None else f"{fmt.num(stats.mean)} ± {fmt.num(stats.std, 3)}"
        summary = "no value" if stats is None else f"{mean}\n{interval_text(stats, 3)}"
        ticks.append(f"{label(name)}\n{outcome}\n{summary}")
    ax.set_xticks(range(len(ticks)), ticks, fontsize=8)
    ax.set_xlim(-0.6, max(len(ticks), 1) - 0.4)
    objective = "best objective 1 value" if multi else "best value"
    ax.set_ylabel(f"{objective} per run ({direction}); bar: mean ± std")
    title = f"{report.plan.target}: best value per condition"
    if multi:
        title += "\nfirst objective shown (best of that objective alone)"
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    _save(fig, path, fmt_name)


def _format(path: Path) -> str:
    fmt_name = FORMATS.get(path.suffix.lower())
    if fmt_name is None:
        raise ConfigError(f"--plot: {path} must end in .png or .svg")
    return fmt_name


def _new_figure() -> tuple[Figure, Axes]:
    try:
        import matplotlib  # noqa: F401  (first, so a missing package fails here)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError(MISSING_MATPLOTLIB) from None
    fig = Figure(figsize=(9.0, 5.5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Figure, path: Path, fmt_name: str) -> None:
    from matplotlib import rc_context

    metadata: dict[str, Any] = {"Date": None} if fmt_name == "svg" else {}
    # Real <text> in the SVG (searchable, selectable) and fixed ids, for byte-identical output.
    try:
        with rc_context({"svg.fonttype": "none", "svg.hashsalt": "repro-check"}):
            fig.savefig(path, format=fmt_name, dpi=DPI, metadata=metadata)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        fig.clear()


def _multi_objective(report: RunReport) -> bool:
    return len(report.plan.study.directions) > 1 or any(r.multi_objective for r in report.runs)


def _direction(report: RunReport) -> str:
    for run in report.runs:
        if run.directions:
            return run.directions[0]
    return report.plan.study.directions[0] if report.plan.study.directions else "minimize"


def _colours(count: int) -> list[Any]:
    if count <= 10:
        return [f"C{i}" for i in range(count)]
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / (count - 1)) for i in range(count)]


def _run_label(run: RunRecord, plan: CheckPlan | None) -> str:
    """The legend's "run 0 (seed 0)": a script's run names its seeds as they were
    (``fmt.run_seed``), never the plan's placeholder."""
    seeds = f"seed {run.seed}" if plan is None else fmt.run_seed(plan, run)
    label = f"run {run.index} ({seeds})" if seeds else f"run {run.index}"
    return label if run.finished else f"{label}, {run.status}"


def _history(run: RunRecord) -> tuple[list[int], list[float]]:
    """Trial numbers and first-objective values of the completed trials that can be drawn."""
    numbers: list[int] = []
    values: list[float] = []
    for trial in sorted(run.trials, key=lambda t: t.number):
        if trial.state != "COMPLETE" or not trial.values or not math.isfinite(trial.values[0]):
            continue
        numbers.append(trial.number)
        values.append(trial.values[0])
    return numbers, values


def _best_so_far(
    values: Sequence[float], direction: str, feasible: Sequence[bool] | None = None
) -> list[float]:
    """The best value so far at each value. ``feasible`` (a constrained study): only feasible
    trials can be best, as in Optuna and the report; NaN (no line) before the first one."""
    pick = max if direction == "maximize" else min
    best: list[float] = []
    current = math.nan
    for i, value in enumerate(values):
        if feasible is None or feasible[i]:
            current = value if math.isnan(current) else pick(current, value)
        best.append(current)
    return best


def _feasibility(run: RunRecord, numbers: Sequence[int]) -> list[bool] | None:
    """Whether each of ``numbers`` is feasible, for a constrained run (None: unconstrained)."""
    if not any(t.constraints for t in run.trials):
        return None
    by_number = {t.number: t for t in run.trials}
    return [by_number[n].feasible for n in numbers]


def _counted_runs(runs: Sequence[RunRecord]) -> Sequence[RunRecord]:
    """The runs the report's statistics count: the finished ones, or all when none finished."""
    return [run for run in runs if run.finished] or runs


def _best_value(run: RunRecord, direction: str) -> float | None:
    """The report's best value; for a multi-objective run the best of its first objective."""
    if not run.multi_objective:
        return run.best_value
    firsts = [
        t.values[0]
        for t in run.trials
        if t.state == "COMPLETE" and t.values and not math.isnan(t.values[0])
    ]
    if not firsts:
        return None
    return max(firsts) if direction == "maximize" else min(firsts)


def _spread_offsets(count: int, width: float = 0.3) -> list[float]:
    """Evenly spread x offsets in [-width/2, width/2] (a strip plot without random jitter)."""
    if count <= 1:
        return [0.0] * count
    return [-width / 2 + width * i / (count - 1) for i in range(count)]
