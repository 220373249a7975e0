"""What ``-q`` and ``-v`` print: the verdict line alone, or per-run detail and each run's
captured output after the report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from repro_check.render import fmt
from repro_check.render.safe import escape_controls
from repro_check.results.records import RunRecord

if TYPE_CHECKING:
    from repro_check.plan.settings import CheckPlan
    from repro_check.render.formats import Report

Outputs = Mapping[tuple[str, int], str]
"""The objective's captured output of each job this process ran, by (group, job index)
(``RunRecord.job``): group "" for ``run``, else the condition or experiment."""


def verdict_line(obj: Report) -> str:
    """The one line ``--quiet`` prints: the report's headline."""
    from repro_check.results.compare_report import CompareReport
    from repro_check.results.diagnosis import Diagnosis
    from repro_check.results.report_diff import ReportDiff

    if isinstance(obj, CompareReport):
        return obj.sentence
    if isinstance(obj, Diagnosis):
        from repro_check.render.sections_diagnose import diagnose_headline

        return diagnose_headline(obj).text
    if isinstance(obj, ReportDiff):
        if obj.same_results:
            return "SAME RESULTS: the two reports agree on every trial"
        d = obj.divergence
        where = f": they part at trial {d.trial} ({d.field})" if d is not None else ""
        return f"DIFFERENT RESULTS{where}"
    return fmt.headline(obj)


def gpu_text(gpu: Mapping[str, object]) -> str:
    """``gpu NVIDIA H100 (GPU-…), driver 550.54.15, compute capability 9.0``."""
    text = f"gpu {gpu.get('name') or '?'}"
    if gpu.get("uuid"):
        text += f" ({gpu['uuid']})"
    text += f", driver {gpu.get('driver') or '?'}"
    text += f", compute capability {gpu.get('compute_capability') or '?'}"
    return text + (f", error: {gpu['error']}" if gpu.get("error") else "")


def _indent(text: Text, by: int) -> Padding:
    """Wrapped lines keep the indent (no padding to the full width after them)."""
    return Padding(text, (0, 0, 0, by), expand=False)


def _run_lines(
    run: RunRecord, output: str | None, plan: CheckPlan | None, shared: frozenset[str] = frozenset()
) -> list[Text | Padding]:
    """A run's detail; ``shared``: notes every run has, which the report's notes already
    list once (repeating them on each run buried the ones that are this run's own)."""
    states: dict[str, int] = {}
    for trial in run.trials:
        states[trial.state] = states.get(trial.state, 0) + 1
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(states.items()))
    wall = f"{run.wall_s:.3g} s" if run.wall_s is not None else "-"
    seeds = f"seed {run.seed}" if plan is None else fmt.run_seed(plan, run)
    head = f"run {run.index}: {run.status}, {seeds + ', ' if seeds else ''}{len(run.trials)} trials"
    head += f" ({counts})" if counts else ""
    parts: list[Text | Padding] = [Text(f"{head}, {wall}", style="bold")]
    if run.environment:
        from repro_check.results.fingerprint import fingerprint

        parts.append(_indent(Text(f"environment {fingerprint(dict(run.environment))}"), 2))
        gpu = run.environment.get("gpu")
        if isinstance(gpu, Mapping):
            parts.append(_indent(Text(escape_controls(gpu_text(gpu))), 2))
    if run.error:
        parts.append(_indent(Text(f"error: {escape_controls(run.error)}"), 2))
    own = [note for note in run.notes if note not in shared]
    parts += [_indent(Text(f"note: {escape_controls(note)}"), 2) for note in own]
    if output is not None:
        text = escape_controls(output.rstrip("\n"))
        parts.append(_indent(Text("output:" if text else "output: (none)"), 2))
        if text:
            parts.append(_indent(Text(text), 4))
    return parts


def _runs(
    console: Console,
    title: str,
    runs: Iterable[RunRecord],
    outputs: Outputs | None,
    plan: CheckPlan | None = None,
) -> None:
    """``plan``: the runs' plan, for the seeds as they were (None: each run's seed)."""
    console.print(Text(title, style="bold"))
    runs = list(runs)
    shared = frozenset.intersection(*(frozenset(r.notes) for r in runs)) if len(runs) > 1 else None
    for run in runs:
        # a run read back from a shared check's storage has no job: its replicate's index
        key = run.job if run.job is not None else ("", run.index)
        output = None if outputs is None else outputs.get(key, "")
        for part in _run_lines(run, output, plan, shared or frozenset()):
            console.print(part)


def render(obj: Report, console: Console, outputs: Outputs | None = None) -> None:
    """Per-run detail for ``--verbose``; ``outputs`` is None when nothing ran in this process
    (``report``, ``diff``: saved reports keep no captured output)."""
    from repro_check.results.compare_report import CompareReport, label
    from repro_check.results.diagnosis import Diagnosis
    from repro_check.results.report_diff import ReportDiff

    if isinstance(obj, CompareReport):
        for name, condition in obj.conditions.items():
            _runs(console, f"Runs of {label(name)}:", condition.runs, outputs, condition.plan)
    elif isinstance(obj, Diagnosis):
        for experiment in obj.experiments:
            _runs(console, f"Runs of {experiment.id}:", experiment.runs, outputs)
    elif not isinstance(obj, ReportDiff):  # a diff has no runs of its own
        _runs(console, "Runs:", obj.runs, outputs, obj.plan)
