"""Plots (``--plot PATH``): a run's replicate histories, or compare's best values per condition.

matplotlib is an optional extra (the ``plot`` extra) imported only here and only
when a plot is asked for. Figures are plain ``matplotlib.figure.Figure`` objects on an Agg canvas:
pyplot is never imported, so no backend is chosen for the user, no figure is registered anywhere,
and nothing needs closing. The output is deterministic (no jitter, no dates in the SVG), so the
same report always draws the same file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro_check.compare import Stats
from repro_check.conditions import CompareReport
from repro_check.errors import ConfigError
from repro_check.records import RunRecord
from repro_check.render import fmt
from repro_check.report import RunReport

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
    """Draw ``obj`` (a ``run`` report or a ``compare`` report) to ``path`` (.png or .svg)."""
    if isinstance(obj, CompareReport):
        plot_compare(obj, path)
    else:
        plot_run(obj, path)


def plot_run(report: RunReport, path: Path) -> None:
    """Every replicate's optimization history: the values, the best so far, the first split."""
    fmt_name = _format(path)
    fig, ax = _new_figure()
    multi = _multi_objective(report)
    direction = _direction(report)
    colours = _colours(len(report.runs))
    n = len(report.runs)
    drawn = False
    for position, run in enumerate(report.runs):
        colour = colours[position]
        # Earlier runs are drawn wider, so identical histories still show every run beneath.
        width = 1.2 + 2.0 * (n - 1 - position) / max(n - 1, 1)
        size = 4.0 + 4.0 * (n - 1 - position) / max(n - 1, 1)
        numbers, values = _history(run)
        label = _run_label(run)
        if not numbers:
            ax.plot([], [], color=colour, label=f"{label}: no values to plot")
            continue
        drawn = True
        ax.plot(
            numbers,
            _best_so_far(values, direction),
            color=colour,
            linewidth=width,
            drawstyle="steps-post",
            label=label,
            zorder=2,
        )
        ax.plot(
            numbers,
            values,
            linestyle="none",
            marker="o",
            markersize=size,
            markerfacecolor="none",
            markeredgecolor=colour,
            alpha=0.8,
            zorder=3,
        )
    divergence = report.comparison.divergence
    if divergence is not None:
        ax.axvline(divergence.trial, color=DIVERGENCE_COLOUR, linestyle="--", linewidth=1.2)
        ax.annotate(
            f"first divergence: trial {divergence.trial} ({divergence.field})",
            xy=(divergence.trial, 0.98),
            xycoords=ax.get_xaxis_transform(),
            xytext=(4, 0),
            textcoords="offset points",
            color=DIVERGENCE_COLOUR,
            ha="left",
            va="top",
            fontsize=9,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
            zorder=4,
        )
    if not drawn:
        ax.text(0.5, 0.5, "no completed trials to plot", transform=ax.transAxes, ha="center")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    objective = "objective 1" if multi else "objective"
    ax.set_ylabel(f"{objective} value (markers) and best so far (line, {direction})")
    title = f"{report.target}: {report.verdict}"
    if multi:
        count = len(report.plan.study.directions)
        title += f"\nfirst of {count} objectives shown ({direction})"
    ax.set_title(title)
    if report.runs:
        ax.legend(loc="best", fontsize=8)
    ax.grid(True, alpha=0.3)
    _save(fig, path, fmt_name)


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
        summary = (
            "no value" if stats is None else f"{fmt.num(stats.mean)} ± {fmt.num(stats.std, 3)}"
        )
        ticks.append(f"{name}\n{condition.verdict}\n{summary} (n={len(values)})")
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


def _run_label(run: RunRecord) -> str:
    label = f"run {run.index} (seed {run.seed})"
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


def _best_so_far(values: Sequence[float], direction: str) -> list[float]:
    pick = max if direction == "maximize" else min
    best: list[float] = []
    for value in values:
        best.append(value if not best else pick(best[-1], value))
    return best


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
