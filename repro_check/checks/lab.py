"""The experiment machinery ``diagnose`` is built from: a ``Lab`` runs sets of replicates
under chosen controls (objective or script alike) and says what each showed. The searches
themselves live in ``diagnose`` (objectives) and ``diagnose_script`` (scripts); the causes they
can name, in ``checks.causes``; what a diagnosis returns, in ``results.diagnosis``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from repro_check.checks.causes import (
    CAUSE_IDS,
    Ablation,
    FixContext,
    StudyFacts,
    ToleranceCheck,
)
from repro_check.execution.replicates import JobRunner, run_plan_jobs, script_spec
from repro_check.execution.runner import Job, JobResult, ProgressCallback
from repro_check.plan.settings import CheckPlan, Controls, StudySettings, Tolerance
from repro_check.results import report
from repro_check.results.comparison import Divergence, DivergenceWatch, first_divergence
from repro_check.results.diagnosis import Cause, Experiment
from repro_check.results.records import STATUS_CANCELLED, STATUS_OK, RunRecord
from repro_check.results.studies import compare_studies
from repro_check.results.trial_record import TrialRecord


@dataclass(frozen=True)
class Found:
    """What one step of a diagnosis found: the experiments it ran (in order), the causes they
    showed and the warnings to give. Steps return one; the diagnosis adds them up in order, so
    no step changes another's lists."""

    experiments: tuple[Experiment, ...] = ()
    causes: tuple[Cause, ...] = ()
    warnings: tuple[str, ...] = ()

    def __add__(self, other: Found) -> Found:
        return Found(
            self.experiments + other.experiments,
            self.causes + other.causes,
            self.warnings + other.warnings,
        )


class Lab:
    """Runs experiments for one diagnosis: shared target, device, workers and stop rule."""

    def __init__(
        self,
        plan: CheckPlan,
        device: str,
        replicates: int,
        on_progress: ProgressCallback | None,
        runner: JobRunner | None = None,
    ) -> None:
        self.plan = plan
        self.runner = runner
        """Runs the jobs (None: ``run_jobs``, fresh worker processes)."""
        self.device = device
        self.replicates = replicates
        self.on_progress = on_progress
        self.warn_only = False
        self.next_index = 0
        self.torch_used = False
        self.process_probe: list[RunRecord] = []
        """The process-state probe's two studies, run in one process beside full control."""

    def context(
        self,
        study: StudySettings,
        noise: float | None = None,
        tolerance: ToleranceCheck | None = None,
    ) -> FixContext:
        """What the causes' fixes are tailored to in this diagnosis."""
        script = script_spec(self.plan) is not None
        return FixContext(
            study, self.plan.seed, self.plan.target, self.torch_used, noise, tolerance, script
        )

    def facts(self, global_streams_used: bool) -> StudyFacts:
        """What decides which ablations are worth running (see ``Ablation.wanted``)."""
        script = script_spec(self.plan) is not None
        return StudyFacts(script, self.torch_used, self.device, global_streams_used)

    def jobs(
        self, group: str, controls: Controls, study: StudySettings, count: int, **extra: Any
    ) -> list[Job]:
        made = []
        for _ in range(count):
            script = script_spec(self.plan)
            if script is not None:  # a script: its studies are counted as they come
                extra = {**extra, "script": script, "cap": self.plan.cap, "studies": 0}
            made.append(
                Job(
                    index=self.next_index,
                    seed=self.plan.seed,
                    study=study,
                    controls=controls,
                    group=group,
                    warn_only=self.warn_only,
                    **extra,
                )
            )
            self.next_index += 1
        return made

    def run(
        self,
        jobs: Sequence[Job],
        stop_early: bool = True,
        tol: Tolerance | None = None,
        reference: RunRecord | None = None,
    ) -> list[JobResult]:
        """Run ``jobs``; each group stops at its first certain divergence (``stop_early``),
        among its own runs or, given a ``reference`` run that already finished, from it."""
        tol = tol if tol is not None else self.plan.tolerance
        watched = tol

        def watch() -> Callable[[int, TrialRecord], bool]:
            rule = DivergenceWatch(watched)
            for trial in reference.trials if reference is not None else ():
                rule.add(-1, trial)
            return rule.add

        return run_plan_jobs(
            self.plan,
            self.device,
            jobs,
            self.runner,
            on_progress=self.on_progress,
            stop_when=watch if stop_early else None,
        )

    def run_ablations(
        self,
        reference: RunRecord,
        chosen: Sequence[Ablation],
        study: StudySettings,
        stop_early: bool = True,
    ) -> dict[str, list[RunRecord]]:
        """Run each ablation on ``study``; returns each one's runs by its id. Most are
        ``replicates - 1`` new runs compared with the fully controlled ``reference`` run
        (reused, not rerun: it is each one's run 0), each stopping at its first certain
        divergence from it; those with ``fresh_runs`` get ``replicates`` runs of their own.
        Without ``stop_early`` (a script, whose trials arrive once it ended) all run in one
        batch."""
        beside = [a for a in chosen if not a.fresh_runs]
        apart = [a for a in chosen if a.fresh_runs]
        # (ablations, the run their stop rule compares with)
        batches = [(beside, reference), (apart, None)] if stop_early else [(list(chosen), None)]
        runs: dict[str, list[RunRecord]] = {}
        for batch, compared_with in batches:
            jobs: list[Job] = []
            for ablation in batch:
                count = self.replicates if ablation.fresh_runs else max(1, self.replicates - 1)
                jobs += self.jobs(ablation.id, ablation.controls, study, count)
            if not jobs:
                continue
            results = self.run(jobs, stop_early, reference=compared_with)
            for ablation in batch:
                own = runs_of(results, ablation.id)
                if not ablation.fresh_runs:  # the reference is run 0; the new runs 1, 2, ...
                    own = [reference, *(dataclasses.replace(r, index=r.index + 1) for r in own)]
                runs[ablation.id] = own
        return runs

    def ablation_experiment(
        self, ablation: Ablation, runs: Sequence[RunRecord], study: StudySettings, full: Experiment
    ) -> Experiment:
        """The ablation's experiment from its runs (``run_ablations``'). One compared with
        ``full``'s run 0 names ``full`` as its reference; one with fresh runs has none."""
        description = f"{ablation.what} off, every other control on"
        exp = self.experiment(ablation.id, description, ablation.controls, runs, study)
        return exp if ablation.fresh_runs else dataclasses.replace(exp, reference=full.id)

    def experiment(
        self,
        id: str,
        description: str,
        controls: Controls,
        runs: Sequence[RunRecord],
        study: StudySettings,
        threads: int | None = None,
        tol: Tolerance | None = None,
    ) -> Experiment:
        tol = tol if tol is not None else self.plan.tolerance
        divergence = (
            script_divergence(runs, tol) if script_spec(self.plan) else first_divergence(runs, tol)
        )
        stopped = any(r.status == STATUS_CANCELLED for r in runs)
        broken = any(r.status not in (STATUS_OK, STATUS_CANCELLED) for r in runs)
        if divergence is not None and (stopped or not broken):
            verdict = report.VERDICT_NOT_REPRODUCIBLE
        elif broken or stopped or not any_completed(runs):
            # as `run` says: runs whose every trial failed reproduce nothing worth the name
            verdict = report.VERDICT_INCOMPLETE
        else:
            verdict = report.VERDICT_REPRODUCIBLE
        n_jobs = max((s.n_jobs for r in runs for s in r.studies), default=study.n_jobs)
        if divergence is None and (study.n_jobs != 1 or n_jobs != 1) and not broken:
            verdict = report.VERDICT_NOT_REPRODUCIBLE  # racing threads: agreement is luck
        return Experiment(
            id, description, controls, verdict, divergence, tuple(runs), study.n_jobs, threads
        )

    def full_control(self, study: StudySettings, id: str = "full_control") -> Experiment:
        """Every control on, ``replicates`` runs, with the entropy audit: if these runs part,
        the audit's sites say where."""
        controls = Controls()
        jobs = self.jobs(id, controls, study, self.replicates, audit=True)
        results = self.run(jobs)
        own_results = [r for r in results if r.job.group == id]
        runs = [
            dataclasses.replace(r.runs[0], index=i) for i, r in enumerate(own_results) if r.runs
        ]
        exp = self.experiment(id, f"every control on, n_jobs={study.n_jobs}", controls, runs, study)
        audits = tuple(r.audit for r in own_results if r.audit is not None)
        return dataclasses.replace(exp, audits=audits)


def any_completed(runs: Sequence[RunRecord]) -> bool:
    """Some trial completed in some run (in any of a script's studies)."""
    return any(t.state == "COMPLETE" for run in runs for t in run.all_trials())


def unfinished(runs: Sequence[RunRecord]) -> str:
    """Why runs are incomplete, in one line: each run's error, or that no trial completed."""
    failures = "; ".join(f"run {r.index} {r.status}: {r.error}" for r in runs if r.error)
    if failures or any_completed(runs):
        return failures
    first = next((t.error for run in runs for t in run.all_trials() if t.error), None)
    return "no trial completed in any run" + (f" (first error: {first})" if first else "")


def globals_consumed(full: Experiment) -> set[str] | None:
    """The global streams (random, numpy, torch) the objective consumed in the fully
    controlled runs, at import or in a trial; None when a run's audit is missing."""
    if not full.audits or len(full.audits) < len(full.runs):
        return None
    consumed: set[str] = set()
    for audit in full.audits:
        if "consumed" not in audit:
            return None
        consumed |= {name for name, trials in audit["consumed"].items() if trials}
    return consumed


def script_divergence(runs: Sequence[RunRecord], tol: Tolerance) -> Divergence | None:
    """Where a script's runs first part: different studies (trial 0, field ``studies``), or
    the first divergence of the first study on which they differ."""
    compared = compare_studies(runs, tol)
    if compared.structure is not None:
        indices = tuple(r.index for r in runs)
        return Divergence(0, "studies", indices, None, None, compared.structure)
    differing = compared.first_differing
    if differing is None or differing.comparison.divergence is None:
        return None
    d = differing.comparison.divergence
    if len(compared.studies) == 1:
        return d
    label = differing.study.name or f"study {differing.index}"
    return dataclasses.replace(d, detail=f"{label}: {d.detail}")


def runs_of(results: Sequence[JobResult], group: str) -> list[RunRecord]:
    """The group's runs, numbered 0, 1, ... within the experiment (as the user reads them)."""
    runs = [r for result in results if result.job.group == group for r in result.runs]
    return [dataclasses.replace(run, index=i) for i, run in enumerate(runs)]


def rank(causes: Sequence[Cause]) -> tuple[Cause, ...]:
    """Blocking causes first, then by the trial they part the runs at. Causes of one id
    are one cause, unless the audit located them at different lines; causes at one line are
    one cause whatever their id (the first found)."""
    unique: dict[object, Cause] = {}
    for cause in causes:
        key: object = (cause.location.file, cause.location.line) if cause.location else cause.id
        unique.setdefault(key, cause)
    return tuple(
        sorted(
            unique.values(),
            key=lambda c: (
                not c.blocking,
                c.trial if c.trial is not None else 1 << 30,
                CAUSE_IDS.index(c.id),
            ),
        )
    )
