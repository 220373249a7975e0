"""The run report: one value object that every renderer (console, JSON, ...) draws.

It can be rebuilt from its own JSON (``from_dict``): the comparison is recomputed from the saved
trials, so a saved report re-renders exactly as it first did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from repro_check.__about__ import __version__
from repro_check.errors import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_NOT_REPRODUCIBLE,
    EXIT_REPRODUCIBLE,
)
from repro_check.json_values import to_json_safe
from repro_check.plan.settings import STUDY_NAME, CheckPlan, Tolerance
from repro_check.plan.targets import is_script
from repro_check.results.baseline import BaselineCheck
from repro_check.results.comparison import (
    Comparison,
    Divergence,
    compare_runs,
)
from repro_check.results.fingerprint import fingerprint
from repro_check.results.records import STATUS_CANCELLED, RunRecord
from repro_check.results.report_notes import (
    direction_advice,
    environment_notes,
    failure_reasons,
    reasons_text,
    returned_count,
    shell_notes,
)
from repro_check.results.resume import ResumeCheck
from repro_check.results.script_notes import script_notes
from repro_check.results.studies import ScriptComparison, compare_studies
from repro_check.results.trial_record import TrialRecord
from repro_check.vocab import Verdict

if TYPE_CHECKING:
    from repro_check.results import saved as saved_format

SCHEMA_VERSION = 2
"""2 added ``mode`` and each run's ``studies`` (script mode); version 1 files still load."""
READABLE_SCHEMA_VERSIONS = (1, 2)

VERDICT_REPRODUCIBLE = Verdict.REPRODUCIBLE
VERDICT_NOT_REPRODUCIBLE = Verdict.NOT_REPRODUCIBLE
VERDICT_INCOMPLETE = Verdict.INCOMPLETE
VERDICT_DIFFERS_FROM_BASELINE = Verdict.DIFFERS_FROM_BASELINE
VERDICT_AWAITING = Verdict.AWAITING
VERDICT_INTERRUPTED = Verdict.INTERRUPTED

N_JOBS_NOTE = (
    "n_jobs > 1: Optuna reseeds the sampler in every thread and trials race each other, "
    "so this study cannot be reproducible; use n_jobs=1"
)


@dataclass(frozen=True)
class RunReport:
    """The outcome of one check (``run``), or of one condition of ``compare``."""

    command: str
    target: str
    plan: CheckPlan
    device: str
    runs: tuple[RunRecord, ...]
    comparison: Comparison
    tool_version: str = __version__
    stopped_early: bool = False
    extra_notes: tuple[str, ...] = field(default_factory=tuple)
    baseline: BaselineCheck | None = None
    """Set by ``run --baseline``: this run's replicates against a saved report."""
    awaiting: int = 0
    """Shared checks: replicates still running elsewhere (or not started); no verdict yet."""
    ran_here: int = 0
    """Shared checks: replicates this process ran."""
    interrupted: bool = False
    """Ctrl-C (or SIGTERM) stopped the check: the report holds what had finished."""
    saved: bool = False
    """Rebuilt from a saved file (``from_dict``): no process here did a share of the check, so
    replicates still awaited are not a pass (exit 3, not 0)."""
    saved_tolerance: Tolerance | None = None
    """Rebuilt from a file: the tolerance the file says it was made with (not the one used)."""
    studies: ScriptComparison | None = None
    """Script mode: the runs compared study by study (None in objective mode)."""

    @property
    def mode(self) -> str:
        """``script`` (the user's script, run whole) or ``objective``."""
        return "script" if self.studies is not None else "objective"

    resume: ResumeCheck | None = None
    """Set by ``run --resume-at K``: the replicates stopped after K trials and resumed in a
    fresh process, against each other and these (straight-through) runs."""

    @property
    def resumed_runs(self) -> tuple[RunRecord, ...]:
        return self.resume.runs if self.resume is not None else ()

    @property
    def complete(self) -> bool:
        """Every planned replicate is here and finished, or ``--fail-fast`` stopped the rest at
        a certain divergence. (Replicates of a shared check still running are ``awaiting``.)"""
        if len(self.runs) < self.plan.runs and not self.awaiting:
            return False
        if self.resume is not None and len(self.resume.runs) < self.plan.runs:
            return False
        return all(
            run.finished or (self.stopped_early and run.status == STATUS_CANCELLED)
            for run in (*self.runs, *self.resumed_runs)
        )

    @property
    def reproducible(self) -> bool:
        """Only when every run finished, all agree on every trial, at least one trial
        completed, and nothing makes the agreement luck (threads racing under n_jobs > 1)."""
        return (
            self.complete
            and not self.awaiting
            and not self.stopped_early
            and self.comparison.divergence is None
            and self.plan.study.n_jobs == 1
            and self.any_completed
            and (self.studies is None or self.studies.reproducible)
            and (self.resume is None or self.resume.matches)
        )

    @property
    def any_completed(self) -> bool:
        """A study whose every trial failed reproduces nothing worth calling reproducible."""
        return any(t.state == "COMPLETE" for run in self.runs for t in run.all_trials())

    @property
    def differs_from_baseline(self) -> bool:
        return self.baseline is not None and not self.baseline.matches

    @property
    def runs_part(self) -> bool:
        """Two recorded runs differ somewhere: in the run's (first) study, or, for a script,
        in any of its studies."""
        return self.comparison.divergence is not None or (
            self.studies is not None and self.studies.first_differing is not None
        )

    @property
    def certainly_differs(self) -> bool:
        """Two recorded runs differ on a trial both reported: not reproducible, whatever the
        runs still missing (awaiting elsewhere, or stopped by --fail-fast) would show."""
        return self.runs_part and (self.stopped_early or bool(self.awaiting))

    @property
    def any_failed(self) -> bool:
        """A replicate crashed, timed out or could not run (not one --fail-fast cancelled)."""
        return any(
            not run.finished and run.status != STATUS_CANCELLED
            for run in (*self.runs, *self.resumed_runs)
        )

    @property
    def verdict(self) -> Verdict:
        if self.interrupted:
            return VERDICT_INTERRUPTED
        if self.certainly_differs:
            return VERDICT_NOT_REPRODUCIBLE
        if self.any_failed:  # whatever the replicates still awaited show: it cannot pass
            return VERDICT_INCOMPLETE
        if self.awaiting:
            return VERDICT_AWAITING
        if not self.complete or not self.any_completed:
            return VERDICT_INCOMPLETE
        if not self.reproducible:
            return VERDICT_NOT_REPRODUCIBLE
        return VERDICT_DIFFERS_FROM_BASELINE if self.differs_from_baseline else VERDICT_REPRODUCIBLE

    @property
    def exit_code(self) -> int:
        return {
            VERDICT_REPRODUCIBLE: EXIT_REPRODUCIBLE,
            # this process did its share; no verdict yet (a saved report did no share)
            VERDICT_AWAITING: EXIT_INCOMPLETE if self.saved else EXIT_REPRODUCIBLE,
            VERDICT_INCOMPLETE: EXIT_INCOMPLETE,
            VERDICT_INTERRUPTED: EXIT_INTERRUPTED,
        }.get(self.verdict, EXIT_NOT_REPRODUCIBLE)

    @property
    def environment(self) -> Mapping[str, Any]:
        return next((run.environment for run in self.runs if run.environment), {})

    @property
    def direction_mismatch(self) -> str | None:
        """When trials failed because the objective returned more (or fewer) values than
        there are ``--direction``s: the sentence that says what to pass instead."""
        wanted = len(self.plan.study.directions)
        for run in self.runs:
            for trial in run.trials:
                count = returned_count(trial.error) if trial.state == "FAIL" else None
                if count is not None and count != wanted:
                    return direction_advice(count, wanted)
        return None

    @property
    def failed_trials(self) -> int:
        """The most trials that failed in one run (0 when none failed)."""
        return max((run.state_counts().get("FAIL", 0) for run in self.runs), default=0)

    @property
    def failure_lines(self) -> list[str]:
        """The distinct reasons trials failed, with counts: one line when every run failed
        the same way ("In every run: 9 failed trials: ..."), else one line per run."""
        per_run = [(run.index, failure_reasons(run)) for run in self.runs]
        per_run = [(index, reasons) for index, reasons in per_run if reasons]
        if not per_run:
            return []
        if len(per_run) == len(self.runs) > 1 and all(r == per_run[0][1] for _, r in per_run):
            return [f"In every run: {reasons_text(per_run[0][1])}"]
        return [f"Run {index}: {reasons_text(reasons)}" for index, reasons in per_run]

    @property
    def notes(self) -> list[str]:
        """Every note, in the order a reader needs them: how the study was set up, what the
        runs said, how they ended, their environments, then what the verdict rests on."""
        notes = self._setup_notes()
        seen = set(notes)
        for run in self.runs:
            for note in run.notes:
                if note not in seen:
                    seen.add(note)
                    notes.append(note)
        notes.extend(self._run_notes())
        notes.extend(self._outcome_notes())
        notes.extend(environment_notes(self.runs, self.plan.tolerance))
        notes.extend(shell_notes(self.runs, self.plan.controls))
        notes.extend(self._controls_notes())
        notes.extend(self.extra_notes)
        return notes

    def _setup_notes(self) -> list[str]:
        """What the plan or the script's studies make of the verdict (n_jobs, directions)."""
        notes: list[str] = []
        if self.plan.study.n_jobs != 1 and self.studies is None:
            notes.append(N_JOBS_NOTE)
        if self.studies is not None:
            notes.extend(script_notes(self.studies, self.runs, self.plan.cap))
        mismatch = self.direction_mismatch
        if mismatch is not None:
            notes.append(mismatch)
        return notes

    def _outcome_notes(self) -> list[str]:
        """--fail-fast's stop, and a check where no trial completed (with the first error)."""
        notes = []
        if self.stopped_early:
            notes.append("--fail-fast: stopped every run at the first certain divergence")
        if self.runs and not self.any_completed:
            first = next((t.error for r in self.runs for t in r.trials if t.error), None)
            notes.append(
                "no trial completed in any run" + (f" (first error: {first})" if first else "")
            )
        return notes

    def _controls_notes(self) -> list[str]:
        """A reproducible objective's verdict holds with the controls the check applied."""
        if not self.reproducible or self.studies is not None:
            return []
        torch_used = any(run.environment.get("torch") for run in self.runs)
        applied = [
            c
            for c in self.plan.controls.enabled()
            if torch_used or c not in ("torch_determinism", "cudnn")
        ]
        if not applied:
            return []
        return [
            f"the verdict holds with these controls applied: {', '.join(applied)}; "
            "`repro-check diagnose` says which of them your own script must apply"
        ]

    def _run_notes(self) -> list[str]:
        """Each run's error (a resumed run's too) and its pruned/failed trial counts."""
        notes = []
        for run in self.runs:
            if run.error and not (self.stopped_early and run.status == STATUS_CANCELLED):
                notes.append(f"run {run.index} {run.status}: {run.error}")
        for run in self.resumed_runs:
            if run.error:
                notes.append(f"resumed run {run.index} {run.status}: {run.error}")
        for run in self.runs:
            counts = run.state_counts()
            pruned, failed = counts.get("PRUNED", 0), counts.get("FAIL", 0)
            if pruned or failed:
                notes.append(f"run {run.index}: {pruned} pruned, {failed} failed trials")
        return notes

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool_version": self.tool_version,
            "command": self.command,
            "target": self.target,
            "mode": self.mode,
            "reproducible": self.reproducible,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "stopped_early": self.stopped_early,
            "awaiting": self.awaiting,
            "interrupted": self.interrupted,
            "settings": self.plan.to_dict(self.device),
            "runs": [self._run_dict(run) for run in self.runs],
            "divergence": self._divergence_dict(),
            "summary": self.comparison.summary_dict(),
            "baseline": self.baseline.to_dict() if self.baseline is not None else None,
            **({} if self.resume is None else {"resume": self.resume.to_dict()}),
            "notes": self.notes,
            "environment": to_json_safe(dict(self.environment)),
        }

    def _no_studies(self, run: RunRecord) -> list[dict[str, Any]]:
        """A run without study records: in script mode one that stopped before the script made
        a study (none); in objective mode the check's one study."""
        return [] if self.studies is not None else [self._objective_study(run)]

    def _objective_study(self, run: RunRecord) -> dict[str, Any]:
        """Objective mode's one study as script mode writes each (its trials are the run's)."""
        study = self.plan.study
        return {
            "name": STUDY_NAME,
            "directions": list(run.directions),
            "sampler": {
                "class": study.sampler,
                "seed": run.seed if self.plan.controls.sampler_seed else None,
                "at": None,
                "seeded_by_check": self.plan.controls.sampler_seed,
            },
            "pruner": study.pruner,
            "at": None,
            "n_trials": study.trials,
            "timeout": None,
            "n_jobs": study.n_jobs,
            "capped": False,
            "loaded": False,
            "trials": None,
            "pending": [],
        }

    def _divergence_dict(self) -> dict[str, Any] | None:
        """The first divergence; a script's is that of the first study its runs part on,
        with that study's index (``study``)."""
        if self.studies is None:
            return Divergence.to_optional_dict(self.comparison.divergence)
        differing = self.studies.first_differing
        if differing is None or differing.comparison.divergence is None:
            return None
        return {**differing.comparison.divergence.to_dict(), "study": differing.index}

    def _run_dict(self, run: RunRecord) -> dict[str, Any]:
        data = {
            **run.to_dict(),
            **({} if run.studies else {"studies": self._no_studies(run)}),
            "environment_fingerprint": fingerprint(dict(run.environment)),
        }
        gpu = run.environment.get("gpu")
        if gpu is not None:  # per run: the report's one environment is the first run's
            data["gpu"] = to_json_safe(gpu)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], tolerance: Tolerance | None = None) -> RunReport:
        """Rebuild from ``to_dict`` output: decoded as a saved report is (``from_saved``).
        A field of the wrong type raises ``saved_errors.SavedReportError`` (a ``ValueError``)."""
        from repro_check.results import saved as saved_format

        wire = saved_format.decode(saved_format.encode_plain(data), saved_format.RunReport)
        return cls.from_saved(wire, tolerance)

    @classmethod
    def from_saved(
        cls,
        data: saved_format.RunReport,
        tolerance: Tolerance | None = None,
        interned: dict[bytes, TrialRecord] | None = None,
    ) -> RunReport:
        """Rebuild from a saved report decoded into ``results.saved``'s types (validated first:
        ``validate.checked``).

        The comparison is recomputed from the saved trials with ``tolerance``: the command's
        (a gate's tolerance never comes from the file it gates); None keeps the file's, for
        callers that only re-render a report they wrote themselves. ``interned``: records of
        equal trials met before, shared (``records.saved_trials``; one per report when None)."""
        import msgspec

        plan = CheckPlan.from_dict(data.target, msgspec.to_builtins(data.settings))
        notes_in = list(data.notes)
        saved_tol = plan.tolerance
        if tolerance is not None and tolerance != plan.tolerance:
            notes_in.append(
                f"the report was saved with tolerance atol={saved_tol.atol:g}, "
                f"rtol={saved_tol.rtol:g}; this verdict uses the command's atol="
                f"{tolerance.atol:g}, rtol={tolerance.rtol:g} (--atol/--rtol), not the file's"
            )
            plan = dataclasses.replace(plan, tolerance=tolerance)
        environment = data.environment or {}
        script = data.mode == "script"
        shared = {} if interned is None else interned  # replicates share their equal trials
        runs = tuple(
            RunRecord.from_saved(run, _run_environment(environment, run.gpu), script, shared)
            for run in data.runs
        )
        del shared
        baseline = data.baseline
        report = cls(
            command=data.command,
            target=data.target,
            plan=plan,
            device=data.settings.device,
            runs=runs,
            comparison=compare_runs(runs, plan.tolerance),
            tool_version="?" if data.tool_version is msgspec.UNSET else data.tool_version,
            stopped_early=data.stopped_early,
            baseline=None if baseline is None else BaselineCheck.from_saved(baseline),
            awaiting=data.awaiting,
            interrupted=data.interrupted,
            saved=True,
            saved_tolerance=saved_tol,
            studies=compare_studies(runs, plan.tolerance) if script else None,
        )
        if data.resume is not None:
            resume = ResumeCheck.from_dict(
                msgspec.to_builtins(data.resume),
                runs,
                plan.study,
                plan.seed,
                plan.tolerance,
                environment,
            )
            report = dataclasses.replace(report, resume=resume)
        derived = set(report.notes)  # once: the property recomputes every note
        extra = [n for n in dict.fromkeys(notes_in) if n not in derived]
        return dataclasses.replace(report, extra_notes=tuple(extra))


def _run_environment(environment: Mapping[str, Any], gpu: Any) -> Mapping[str, Any]:
    """A saved run's environment: the report's, with the run's own GPU when it has one."""
    if gpu is None:
        return environment
    return {**environment, "gpu": gpu}


def build(
    command: str,
    plan: CheckPlan,
    device: str,
    runs: Sequence[RunRecord],
    stopped_early: bool = False,
) -> RunReport:
    runs = tuple(sorted(runs, key=lambda r: r.index))
    return RunReport(
        command,
        plan.target,
        plan,
        device,
        runs,
        compare_runs(runs, plan.tolerance),
        stopped_early=stopped_early,
        studies=compare_studies(runs, plan.tolerance) if is_script(plan.target) else None,
    )


class CheckInterrupted(Exception):
    """Ctrl-C stopped a check's workers. ``report`` is the partial report the core built from
    the runs that had finished (``interrupted=True``, on the device they ran on), None when none
    had: a caller only shows it."""

    def __init__(self, report: RunReport | None) -> None:
        super().__init__("interrupted")
        self.report = report


def interrupted(plan: CheckPlan, device: str, runs: Sequence[RunRecord]) -> CheckInterrupted:
    """The exception a check raises when stopped: its partial report, from ``runs``."""
    if not runs:
        return CheckInterrupted(None)
    partial = build("run", plan, device, runs)
    return CheckInterrupted(dataclasses.replace(partial, interrupted=True))
