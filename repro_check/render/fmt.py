"""Number and text formatting shared by the text renderers (console, Markdown)."""

from __future__ import annotations

import dataclasses
import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repro_check.plan.settings import CheckPlan, Tolerance
from repro_check.plan.targets import MODULE_PREFIX, NOTEBOOK, is_script, kind
from repro_check.redact import redact
from repro_check.results.compare_report import CompareReport
from repro_check.results.comparison import (
    Divergence,
    ParamSpread,
    Stats,
    counted_runs,
    reference_run,
)
from repro_check.results.records import RunRecord
from repro_check.results.report import (
    VERDICT_AWAITING,
    VERDICT_DIFFERS_FROM_BASELINE,
    VERDICT_INTERRUPTED,
    VERDICT_NOT_REPRODUCIBLE,
    VERDICT_REPRODUCIBLE,
    RunReport,
)
from repro_check.results.studies import StudyComparison
from repro_check.results.trial_fields import field_equal, floats_equal, param_equal
from repro_check.results.trial_record import TrialRecord
from repro_check.vocab import Pruner, Sampler


def num(value: float | None, digits: int = 6) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def param(value: Any) -> str:
    return num(value) if isinstance(value, float) else repr(value)


def stats_line(stats: Stats | None) -> str:
    if stats is None:
        return "-"
    return f"{num(stats.mean)} ± {num(stats.std, 3)}  ({num(stats.min)} .. {num(stats.max)})"


def spread_line(spread: ParamSpread) -> str:
    if spread.stats is not None:
        s = spread.stats
        return f"std {num(s.std, 3)}, range {num(s.range, 3)} ({num(s.min)} .. {num(s.max)})"
    return ", ".join(f"{value} ×{count}" for value, count in sorted(spread.counts.items()))


def divergence_line(divergence: Divergence) -> str:
    size = ""
    if divergence.max_abs_diff is not None:
        size = (
            f"; max |Δ| {num(divergence.max_abs_diff, 3)}, "
            f"max rel {num(divergence.max_rel_diff, 3)}"
        )
    return f"trial {divergence.trial}, {divergence.field}: {divergence.detail}{size}"


def histories_text(report: RunReport) -> str:
    """ "2 of 3": distinct histories among the counted runs (the finished ones, or every run
    with trials when none finished); the runs left out are named, never counted."""
    counted = len(counted_runs(report.runs))
    text = f"{report.comparison.distinct_histories} of {counted}"
    empty = sum(not run.trials for run in report.runs)
    partial = len(report.runs) - empty - counted
    left_out = []
    if partial:
        left_out.append(f"{partial} unfinished")
    if empty:
        left_out.append(f"{empty} with no trials")
    if left_out:
        text += f" (not counted: {', '.join(left_out)})"
    return text


def reference_index(report: RunReport) -> int | None:
    """The run the best table's ``≠`` marks compare against (the first with trials)."""
    ref = reference_run(report.runs)
    return None if ref is None else ref.index


def environment_line(env: Mapping[str, Any]) -> str:
    if not env:
        return "unknown (workers report it when they finish, and no run finished)"
    packages = env.get("packages", {})
    parts = [f"Python {env.get('python', '?')}", str(env.get("platform", "?"))]
    parts += [f"{name} {packages[name]}" for name in ("optuna", "numpy") if name in packages]
    torch = env.get("torch")
    if torch:
        gpus = ", ".join(torch.get("gpus") or []) or "no GPU"
        cuda = f"CUDA {torch['cuda']}" if torch.get("cuda") else "CPU build"
        parts.append(f"torch {torch.get('version')} ({cuda}, {gpus})")
    elif "torch" in packages:
        parts.append(f"torch {packages['torch']} (unused)")
    parts.append(threads_text(env))
    return " · ".join(parts)


def threads_text(env: Mapping[str, Any]) -> str:
    """``threads 1 (pinned; 2 cores)`` or ``threads 2 (as the shell sets; 2 cores)``: what the
    replicates used against the machine's default. Reports made before the ``threads`` control
    always pinned (no ``threads_pinned``)."""
    threads = env.get("threads", "?")
    cores = env.get("cpu_count")
    how = "pinned" if env.get("threads_pinned", True) else "as the shell sets"
    return f"threads {threads} ({how}" + (f"; {cores} cores)" if cores else ")")


def _script_trials(report: RunReport) -> str:
    """``15 trials`` (one study) or ``2 studies (30 trials)``: what a script's runs hold."""
    runs = [run for run in report.runs if run.studies]
    studies = max((len(run.studies) for run in runs), default=0)
    trials = max((sum(len(s.trials) for s in run.studies) for run in runs), default=0)
    return f"{trials} trials" if studies == 1 else f"{studies} studies ({trials} trials)"


def _script_part(report: RunReport) -> str | None:
    """Where a script's runs first part (by study), or None when they do not."""
    studies = report.studies
    if studies is None:
        return None
    if studies.structure is not None:
        return "the runs created different studies"
    differing = studies.first_differing
    if differing is None:
        if any(s.study.n_jobs != 1 for s in studies.studies):
            return "n_jobs > 1 makes trials race"
        return None
    d = differing.comparison.divergence
    assert d is not None
    where = f"runs part at trial {d.trial} ({d.field})"
    if len(studies.studies) == 1:
        return where
    return f"{study_name(differing.study.name)} (study {differing.index}): {where}"


def script_first_part(report: RunReport) -> str | None:
    """A script's first difference as a table cell: ``study 'b' trial 3 (params)``."""
    studies = report.studies
    if studies is None:
        return None
    if studies.structure is not None:
        return "different studies"
    differing = studies.first_differing
    if differing is None or differing.comparison.divergence is None:
        return None
    d = differing.comparison.divergence
    where = f"trial {d.trial} ({d.field})"
    return where if len(studies.studies) == 1 else f"study {differing.index} {where}"


def first_divergence(report: RunReport) -> Divergence | None:
    """The report's first divergence; a script's is that of its first differing study."""
    if report.studies is not None:
        differing = report.studies.first_differing
        return differing.comparison.divergence if differing is not None else None
    return report.comparison.divergence


def study_name(name: str) -> str:
    return repr(name) if name else "an unnamed study"


def study_heading(compared: StudyComparison) -> str:
    """``Study 0 'name': TPESampler(seed=42) at train.py:8 · 15 trials · the runs agree``."""
    study = compared.study
    sampler = study.sampler
    if sampler.seed is not None:
        built = f"{sampler.cls}(seed={sampler.seed})"
    elif sampler.seeded_by_check:
        built = f"{sampler.cls}, seeded by the check"
    else:
        built = f"{sampler.cls} without seed"
    if sampler.at is not None:
        built += (
            f" at {sampler.at}" if sampler.via is None else f" from {sampler.via}() at {sampler.at}"
        )
    elif study.at is not None:
        built += f" (Optuna's default) for create_study at {study.at}"
    trials = max((len(run.trials) for run in compared.runs), default=0)
    length = f"{trials} trials" + (" (capped)" if study.capped else "")
    d = compared.comparison.divergence
    agree = "the runs agree" if d is None else f"runs part at trial {d.trial} ({d.field})"
    name = f" {study.name!r}" if study.name else " (unnamed)"
    return f"Study {compared.index}{name}: {built} · {length} · {agree}"


def study_report(report: RunReport, compared: StudyComparison) -> RunReport:
    """``report`` seen through one of its studies: what the run sections draw per study."""
    return dataclasses.replace(
        report, runs=compared.runs, comparison=compared.comparison, studies=None, baseline=None
    )


def headline(report: RunReport) -> str:
    """One line per verdict; the verdict itself is decided by the report, never here."""
    n = len(report.runs)
    verdict = report.verdict
    if verdict == VERDICT_INTERRUPTED:
        done = sum(run.finished for run in report.runs)
        return f"INTERRUPTED: {done} of {n} runs had finished; the rest were stopped"
    if verdict == VERDICT_AWAITING:
        return (
            f"AWAITING: {n} of {report.plan.runs} replicates finished "
            f"({report.ran_here} here); the check still awaits {report.awaiting}"
        )
    if verdict == VERDICT_DIFFERS_FROM_BASELINE and report.baseline is not None:
        d = report.baseline.divergence
        where = f" at trial {d.trial} ({d.field})" if d is not None else ""
        return (
            f"DIFFERS FROM BASELINE{where}: {n} runs agree with each other, not with the baseline"
        )
    if verdict == VERDICT_REPRODUCIBLE:
        return _reproducible_headline(report)
    part = _where_runs_part(report)
    if verdict == VERDICT_NOT_REPRODUCIBLE:
        return f"NOT REPRODUCIBLE: {part}"
    if report.complete and not report.any_completed:
        mismatch = report.direction_mismatch
        if mismatch is not None:
            return f"INCOMPLETE: no trial completed: {mismatch}"
        return "INCOMPLETE: no trial completed in any run (every trial failed)"
    broken = sum(not run.finished for run in report.runs)
    return f"INCOMPLETE: {broken} of {n} runs did not finish; {part}"


def _reproducible_headline(report: RunReport) -> str:
    """How many runs agree, on how much, how closely; a warning when most trials failed."""
    n = len(report.runs)
    trials = max((len(run.trials) for run in report.runs), default=0)
    how = "bit for bit" if report.plan.tolerance.exact else "within tolerance"
    failed = report.failed_trials
    if trials and failed * 2 > trials:  # agreeing on failures is not much of a result
        return (
            f"REPRODUCIBLE, but {failed} of {trials} trials failed in every run: "
            f"{n} runs × {trials} trials agree {how}"
        )
    if report.studies is not None:
        return f"REPRODUCIBLE: {n} runs × {_script_trials(report)} agree {how}"
    return f"REPRODUCIBLE: {n} runs × {trials} trials agree {how}"


def _where_runs_part(report: RunReport) -> str:
    """Where (or why) the runs of a report that did not reproduce part, for its headline."""
    script_part = _script_part(report)
    resumed = report.resume.first_difference if report.resume is not None else None
    divergence = report.comparison.divergence
    if script_part is not None:
        return script_part
    if only_resume_differs(report) and resumed is not None:
        return (
            f"resuming at trial {report.plan.resume_at} changes the study: resumed runs part "
            f"at trial {resumed.trial} ({resumed.field})"
        )
    if divergence is not None:
        return f"runs part at trial {divergence.trial} ({divergence.field})"
    if report.plan.study.n_jobs != 1 and report.studies is None:
        return "n_jobs > 1 makes trials race"
    if report.stopped_early:
        return "--fail-fast stopped the runs"
    return "no divergence among the trials that finished"


def script_words(plan: CheckPlan) -> list[str]:
    """A script target as typed: ``train.py -- ARGS``, ``-m pkg.mod -- ARGS`` or
    ``tune.ipynb -p NAME VALUE``."""
    target = plan.target
    words = target.split(" ", 1) if target.startswith(MODULE_PREFIX) else [target]
    parameters = [word for name, value in plan.parameters for word in ("-p", name, value)]
    return [*words, *parameters, *(["--", *plan.args] if plan.args else [])]


def script_kind(plan: CheckPlan) -> str:
    """How the settings line names a script target's kind: ``script`` or ``notebook``."""
    return "notebook" if kind(plan.target) == NOTEBOOK else "script"


def settings_line(report: RunReport) -> str:
    plan = report.plan
    tol = plan.tolerance
    tol_text = "exact" if tol.exact else f"atol {tol.atol}, rtol {tol.rtol}"
    if report.studies is not None:
        command = shlex.join(script_words(plan))
        cap = f" · --trials {plan.cap} caps each study" if plan.cap is not None else ""
        seed = f" · seed {plan.seed}" if plan.controls.take_seed else ""  # none reaches it
        return (
            f"{command} · {script_kind(plan)}{seed} · device {report.device} · "
            f"tolerance {tol_text} · controls {controls_text(report)}{cap}"
        )
    return (
        f"{report.target} · seed {plan.seed} · sampler {plan.study.sampler} · "
        f"pruner {plan.study.pruner} · {'/'.join(plan.study.directions)} · "
        f"device {report.device} · tolerance {tol_text} · controls {controls_text(report)}"
    )


def controls_text(report: RunReport) -> str:
    enabled = report.plan.controls.enabled()
    if len(enabled) == len(report.plan.controls.names()):
        return "all"
    return ",".join(enabled) or "none"


def only_resume_differs(report: RunReport) -> bool:
    """``--resume-at``: the straight-through runs agree, the resumed ones part from them."""
    resume = report.resume
    return resume is not None and resume.straight_reproducible and not resume.matches


def diagnose_hint(report: RunReport) -> str:
    plan = report.plan
    if report.studies is not None:
        cap = ["--trials", str(plan.cap)] if plan.cap is not None else []
        words = ["repro-check", "diagnose", *cap, *script_words(plan)]
        return f"run `{shlex.join(words)}` to find the cause"
    args = ["repro-check", "diagnose", report.target, "--trials", str(plan.study.trials)]
    for direction in plan.study.directions:
        if direction != "minimize" or len(plan.study.directions) > 1:
            args += ["--direction", direction]
    if plan.study.sampler != Sampler.TPE:
        args += ["--sampler", plan.study.sampler]
    if plan.study.pruner != Pruner.NONE:
        args += ["--pruner", plan.study.pruner]
    if plan.study.n_jobs != 1:
        args += ["--n-jobs", str(plan.study.n_jobs)]
    return f"run `{shlex.join(args)}` to find the cause"


def baseline_line(report: RunReport) -> str:
    check = report.baseline
    if check is None:
        return ""
    text = check.summary()
    if not check.matches:
        text += (
            f"; best value {num(check.best_value_before, 10)} in the baseline, "
            f"{num(check.best_value_now, 10)} now"
        )
    if check.settings_changed:
        text += f" (settings changed: {'; '.join(check.settings_changed)})"
    return text + (
        ""
        if check.matches
        else f"; if that change is intended, rerun with --save-baseline {check.path} to refresh it"
    )


def compare_settings_line(report: CompareReport) -> str:
    plan = report.plan
    if is_script(plan.target):
        command = shlex.join(script_words(plan))
        cap = f" · --trials {plan.cap} caps each study" if plan.cap is not None else ""
        return (
            f"{command} · {script_kind(plan)} · {plan.runs} runs per condition · "
            f"device {report.device}{cap}"
        )
    return (
        f"{plan.target} · {plan.runs} runs per condition × {plan.study.trials} trials · "
        f"sampler {plan.study.sampler} · device {report.device}"
    )


def awaiting_hint(report: RunReport) -> str:
    plan = report.plan
    storage = redact(plan.storage or "")
    return (
        f"the last process to finish prints the check; or run `repro-check report "
        f"--storage '{storage}' --name {shlex.quote(plan.name or '')}` later"
    )


@dataclass(frozen=True)
class Cell:
    text: str
    differs: bool = False


@dataclass(frozen=True)
class BestTable:
    """The best-per-run table as plain cells; each renderer styles it its own way."""

    columns: list[str]
    numeric: list[bool]
    rows: list[list[Cell]]
    statuses: list[str]


def best_table(report: RunReport) -> BestTable:
    """One row per run; cells that differ from the reference run (the first with trials) are
    flagged (shown as ``≠``)."""
    multi = any(run.multi_objective for run in report.runs)
    params = [] if multi else sorted({k for run in report.runs for k in (run.best_params or {})})
    columns = [
        "run",
        "status",
        "Pareto set" if multi else "best value",
        *params,
        "trials",
        "wall s",
    ]
    numeric = [True, False, *([True] * (len(columns) - 2))]
    marks = report.comparison.differing_cells
    pareto_differs = _pareto_differs(report) if multi else set()
    rows = []
    for run in report.runs:
        differing = marks.get(run.index, set())
        row = [Cell(str(run.index)), Cell(run.status)]
        if multi:
            size = f"{len(run.best_trials())} trials" if run.trials else "-"
            row.append(Cell(size, run.index in pareto_differs))
        else:
            row.append(Cell(num(run.best_value, 10), "value" in differing))
            best = run.best_params or {}
            row += [Cell(param(best[p]) if p in best else "-", p in differing) for p in params]
        row += [Cell(str(len(run.trials))), Cell(num(run.wall_s, 3))]
        rows.append(row)
    return BestTable(columns, numeric, rows, [run.status for run in report.runs])


PARETO_ROWS = 10
"""Pareto trials shown per run; the rest are counted in one more row."""


@dataclass(frozen=True)
class ParetoTable:
    """Every run's Pareto front (multi-objective): one row per Pareto trial, in trial order;
    a cell differs when the reference run's front has another value at that position."""

    columns: list[str]
    numeric: list[bool]
    rows: list[list[Cell]]
    reference: int | None


def _front(run: RunRecord) -> list[TrialRecord]:
    return sorted(run.best_trials(), key=lambda t: t.number)


def _pareto_cells(
    trial: TrialRecord, ref: TrialRecord | None, params: list[str], tol: Tolerance
) -> list[Cell]:
    values = trial.values or ()
    ref_values = ref.values or () if ref is not None else ()
    cells = [Cell(str(trial.number), ref is None or ref.number != trial.number)]
    for i in range(max(len(values), 1)):
        if i >= len(values):
            cells.append(Cell("-"))
            continue
        same = i < len(ref_values) and floats_equal(values[i], ref_values[i], tol)
        cells.append(Cell(num(values[i], 10), not same))
    for name in params:
        if name not in trial.params:
            cells.append(Cell("-", ref is not None and name in ref.params))
            continue
        same = (
            ref is not None
            and name in ref.params
            and param_equal(trial.params[name], ref.params[name])
        )
        cells.append(Cell(param(trial.params[name]), not same))
    return cells


def pareto_table(report: RunReport) -> ParetoTable | None:
    """The Pareto front of each run with trials, marked against the reference run's (None for
    a single-objective report)."""
    if not any(run.multi_objective for run in report.runs):
        return None
    directions = next((r.directions for r in report.runs if r.multi_objective), ())
    params = sorted({k for run in report.runs for t in run.best_trials() for k in t.params})
    columns = [
        "run",
        "trial",
        *(f"value {i + 1} ({d})" for i, d in enumerate(directions)),
        *params,
    ]
    numeric = [True, True, *([True] * len(directions)), *([True] * len(params))]
    reference = reference_run(report.runs)
    ref_front = _front(reference) if reference is not None else []
    tol = report.plan.tolerance
    rows: list[list[Cell]] = []
    for run in report.runs:
        if run.trials:
            is_ref = run is reference
            rows += _pareto_rows(run, is_ref, ref_front, params, tol, len(columns))
    return ParetoTable(columns, numeric, rows, None if reference is None else reference.index)


def _pareto_rows(
    run: RunRecord,
    is_ref: bool,
    ref_front: list[TrialRecord],
    params: list[str],
    tol: Tolerance,
    width: int,
) -> list[list[Cell]]:
    """One run's rows of the Pareto table (``width`` cells each): a row per Pareto trial (the
    first ``PARETO_ROWS``, then one counting the rest), or one row of ``-`` when it has no
    front."""
    front = _front(run)
    if not front:
        empty = [Cell(str(run.index)), Cell("-", bool(ref_front) and not is_ref)]
        return [empty + [Cell("-") for _ in range(width - 2)]]
    rows = []
    for position, trial in enumerate(front[:PARETO_ROWS]):
        ref = trial if is_ref else (ref_front[position] if position < len(ref_front) else None)
        rows.append([Cell(str(run.index)), *_pareto_cells(trial, ref, params, tol)])
    if len(front) > PARETO_ROWS:
        more = f"+{len(front) - PARETO_ROWS} more"
        rows.append([Cell(str(run.index)), Cell(more), *(Cell("") for _ in range(width - 2))])
    return rows


def _pareto_differs(report: RunReport) -> set[int]:
    """Runs whose Pareto front differs from the reference run's (size, trials, values,
    params)."""
    reference = reference_run(report.runs)
    if reference is None:
        return set()
    tol = report.plan.tolerance
    ref_front = _front(reference)
    differs = set()
    for run in report.runs:
        if run is reference or not run.trials:
            continue
        front = _front(run)
        if len(front) != len(ref_front) or any(
            a.number != b.number
            or not field_equal("values", a, b, tol)
            or not field_equal("params", a, b, tol)
            for a, b in zip(front, ref_front, strict=True)
        ):
            differs.add(run.index)
    return differs


def pareto_line(report: RunReport) -> str:
    """ "4 trials in every run" or "4, 5 and 4 trials (runs 0, 1, 2)"."""
    sizes = [(run.index, len(run.best_trials())) for run in report.runs if run.trials]
    if not sizes:
        return "-"
    counts = {size for _, size in sizes}
    if len(counts) == 1:
        size = counts.pop()
        where = "every run" if len(sizes) > 1 else "the run"
        return f"{size} trial{'' if size == 1 else 's'} in {where}"
    return ", ".join(f"run {index}: {size}" for index, size in sizes) + " trials"


def run_seed(plan: CheckPlan, run: RunRecord) -> str:
    """The seeds that decided ``run``, as they were: "seed 0" where the check handed its seed
    to the code (always, for an objective); for a script also each study's sampler as the
    script built it ("sampler seed 1", "unseeded sampler"). "" when nothing is known: never
    the plan's placeholder seed for a script that took none."""
    from repro_check.results.script_notes import unseeded

    if not plan.script:
        return f"seed {run.seed}"
    parts = [f"seed {run.seed}"] if plan.controls.take_seed else []
    for study in run.studies:
        sampler = study.sampler
        if sampler.seeded_by_check:
            continue  # the check's seed, named above
        if sampler.seed is not None:
            parts.append(f"sampler seed {sampler.seed}")
        elif unseeded(sampler):
            parts.append("unseeded sampler")
    return ", ".join(dict.fromkeys(parts))
