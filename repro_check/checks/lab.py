"""The experiment machinery ``diagnose`` is built from: a ``Lab`` runs sets of replicates
under chosen controls (objective or script alike) and says what each showed; ``Diagnosis`` is
what a diagnosis returns. The searches themselves live in ``diagnose`` (objectives) and
``diagnose_script`` (scripts)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repro_check.__about__ import __version__
from repro_check.checks.causes import (
    CAUSE_IDS,
    Cause,
    FixContext,
    Location,
    ToleranceCheck,
    fix_for,
    located_fix,
)
from repro_check.errors import EXIT_INCOMPLETE, EXIT_REPRODUCIBLE
from repro_check.execution.replicates import JobRunner, run_plan_jobs, script_spec
from repro_check.execution.runner import Job, JobResult, ProgressCallback
from repro_check.plan.settings import CheckPlan, Controls, StudySettings, Tolerance
from repro_check.results import report
from repro_check.results.comparison import (
    Divergence,
    DivergenceWatch,
    Stats,
    diff_magnitude,
    first_divergence,
)
from repro_check.results.records import (
    STATUS_CANCELLED,
    STATUS_OK,
    RunRecord,
    TrialRecord,
    encode_float,
    encode_params,
)
from repro_check.results.resume import ResumeCheck
from repro_check.results.studies import compare_studies
from repro_check.vocab import CauseId

CONTROL_EXPERIMENTS: dict[str, tuple[CauseId, tuple[str, ...], str]] = {
    # experiment id: (cause id, controls switched off, what that means)
    "no_sampler_seed": (CauseId.SAMPLER_SEED, ("sampler_seed",), "the sampler seed"),
    "no_global_rng": (CauseId.GLOBAL_RNG, ("global_rng", "trial_reseed"), "global RNG seeding"),
    "no_trial_reseed": (CauseId.TRIAL_RESEED, ("trial_reseed",), "per-trial reseeding"),
    "no_hash_seed": (CauseId.HASH_SEED, ("hash_seed",), "a fixed PYTHONHASHSEED"),
    "no_threads": (CauseId.THREADS, ("threads",), "pinned thread counts"),
    "no_torch_determinism": (
        CauseId.TORCH_DETERMINISM,
        ("torch_determinism",),
        "torch deterministic algorithms",
    ),
    "no_cudnn": (CauseId.TORCH_DETERMINISM, ("cudnn",), "the cuDNN flags"),
}


FRESH_PAIRS = frozenset({"no_trial_reseed", "no_threads", "no_torch_determinism", "no_cudnn"})
"""Ablations compared between fresh runs of their own, not with the fully controlled run:
without per-trial reseeding (or with the machine's thread count, or torch's default kernels) a
run computes other numbers than the reference, deterministically; only two such runs parting
shows the control is needed."""


def controls_off(exp_id: str) -> Controls:
    """Every control on but those the ablation ``exp_id`` switches off."""
    controls = Controls()
    for name in CONTROL_EXPERIMENTS[exp_id][1]:
        controls = controls.without(name)
    return controls


Spec = tuple[str, Controls, int | None]
"""One experiment for ``Lab.against`` to run: (id, controls, threads or None for the lab's)."""


def ablation_specs(ids: Sequence[str]) -> list[Spec]:
    """The ablations ``ids`` (keys of ``CONTROL_EXPERIMENTS``) as specs for ``Lab.against``."""
    return [(exp_id, controls_off(exp_id), None) for exp_id in ids]


@dataclass(frozen=True)
class Experiment:
    """One set of replicates under one set of controls, and what it showed."""

    id: str
    description: str
    controls: Controls
    verdict: str
    """reproducible, not reproducible or incomplete."""
    divergence: Divergence | None
    runs: tuple[RunRecord, ...]
    n_jobs: int = 1
    threads: int | None = None
    audits: tuple[Mapping[str, Any], ...] = ()
    """What the entropy audit saw in each run (full control only; not saved)."""
    reference: str | None = None
    """The experiment whose run 0 is this one's run 0, reused, not rerun (an ablation
    compared with the fully controlled run); None: every run is this experiment's own."""
    resume: ResumeCheck | None = None
    """The resume experiment's comparison (its runs are the resumed replicates; the
    straight-through ones are the fully controlled runs)."""
    resume_chosen: bool = False
    """The resume point was picked by diagnose (a storage, no ``--resume-at``)."""
    straight_through: str | None = None
    """The experiment whose runs are the resume's straight-through replicates (reused)."""
    witness: str | None = None
    """The experiment whose new runs stand in for this one's other replicates: they ran with
    fewer controls, in fresh processes, and agreed with this one's run 0 trial for trial, so
    they show that these controls reproduce too (full control, witnessed by the
    ``PYTHONHASHSEED`` ablation); None: every replicate is this experiment's own."""

    @property
    def stopped_early(self) -> bool:
        return any(run.status == STATUS_CANCELLED for run in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "controls": self.controls.to_dict(),
            "n_jobs": self.n_jobs,
            "threads": self.threads,
            "reference": self.reference,
            "witness": self.witness,
            "verdict": self.verdict,
            "stopped_early": self.stopped_early,
            "divergence": Divergence.to_optional_dict(self.divergence),
            **({"resume": self._resume_dict()} if self.resume is not None else {}),
            "runs": [
                {"index": r.index, "status": r.status, "error": r.error, "trials": len(r.trials)}
                for r in self.runs
            ],
        }

    def _resume_dict(self) -> dict[str, Any]:
        assert self.resume is not None
        data = self.resume.to_dict()
        data.pop("runs")  # the experiment's runs are the resumed ones
        return {
            **data,
            "chosen_by_diagnose": self.resume_chosen,
            "straight_through": self.straight_through,
        }


@dataclass(frozen=True)
class NoiseProbe:
    """The objective evaluated at fixed params, several times in fresh processes."""

    params: Mapping[str, Any]
    trial: int
    values: tuple[float, ...]
    processes: int

    @property
    def stats(self) -> Stats | None:
        return Stats.of(self.values)

    @property
    def max_abs_diff(self) -> float:
        pairs = [(self.values[0], v) for v in self.values[1:]]
        return diff_magnitude(pairs)[0] or 0.0

    @property
    def noisy(self) -> bool:
        return self.max_abs_diff > 0 or len(set(map(repr, self.values))) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": encode_params(self.params),
            "from_trial": self.trial,
            "processes": self.processes,
            "values": [encode_float(v) for v in self.values],
            "spread": Stats.to_optional_dict(self.stats),
            "max_abs_diff": encode_float(self.max_abs_diff),
        }


@dataclass(frozen=True)
class Diagnosis:
    """Everything diagnose found: the ranked causes and the experiments behind them."""

    plan: CheckPlan
    device: str
    reproducible_under_full_control: bool
    causes: tuple[Cause, ...]
    experiments: tuple[Experiment, ...]
    objective_noise: NoiseProbe | None = None
    warnings: tuple[str, ...] = ()
    nondeterministic_ops: tuple[str, ...] = ()
    incomplete: bool = False
    tool_version: str = __version__

    @property
    def exit_code(self) -> int:
        """0 once the diagnosis completed, whatever it found (``run`` is the gate)."""
        return EXIT_INCOMPLETE if self.incomplete else EXIT_REPRODUCIBLE

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": report.SCHEMA_VERSION,
            "tool_version": self.tool_version,
            "command": "diagnose",
            "target": self.plan.target,
            "exit_code": self.exit_code,
            "settings": self.plan.to_dict(self.device),
            "reproducible_under_full_control": self.reproducible_under_full_control,
            "causes": [c.to_dict() for c in self.causes],
            "objective_noise": self.objective_noise.to_dict() if self.objective_noise else None,
            "nondeterministic_ops": list(self.nondeterministic_ops),
            "experiments": [e.to_dict() for e in self.experiments],
            "warnings": list(self.warnings),
        }


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
        self.second_study: RunRecord | None = None
        """The process-state probe's second study (``full_control(second_study=True)``)."""

    def fix(
        self,
        cause_id: str,
        study: StudySettings,
        noise: float | None = None,
        tolerance: ToleranceCheck | None = None,
    ) -> str:
        context = FixContext(
            study, self.plan.seed, self.plan.target, self.torch_used, noise, tolerance
        )
        return fix_for(cause_id, context)

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

    def torch_ablations(self) -> list[str]:
        """The torch ablations this check needs: torch's deterministic kernels where the
        objective used torch, and cuDNN's as well on CUDA."""
        if not self.torch_used:
            return []
        return ["no_torch_determinism", *(["no_cudnn"] if self.device == "cuda" else [])]

    def against(
        self,
        reference: RunRecord,
        specs: Sequence[Spec],
        study: StudySettings,
        stop_early: bool = True,
    ) -> dict[str, list[RunRecord]]:
        """Run each ablation (id, controls, threads) on ``study``. Most are ``replicates - 1``
        new runs compared with the fully controlled ``reference`` run (reused, not rerun: it
        is each one's run 0), each stopping at its first certain divergence from it; those in
        ``FRESH_PAIRS`` get ``replicates`` runs of their own. Without ``stop_early`` (a
        script, whose trials arrive once it ended) all run in one batch."""
        beside = [s for s in specs if s[0] not in FRESH_PAIRS]
        apart = [s for s in specs if s[0] in FRESH_PAIRS]
        # (specs, the run their stop rule compares with)
        batches = [(beside, reference), (apart, None)] if stop_early else [(list(specs), None)]
        runs: dict[str, list[RunRecord]] = {}
        for chosen, compared_with in batches:
            jobs: list[Job] = []
            for exp_id, controls, threads in chosen:
                count = self.replicates if exp_id in FRESH_PAIRS else max(1, self.replicates - 1)
                extra = {"threads": threads} if threads is not None else {}
                jobs += self.jobs(exp_id, controls, study, count, **extra)
            if not jobs:
                continue
            results = self.run(jobs, stop_early, reference=compared_with)
            for exp_id, _controls, _threads in chosen:
                own = runs_of(results, exp_id)
                if exp_id not in FRESH_PAIRS:  # the reference is run 0; the new runs 1, 2, ...
                    own = [reference, *(dataclasses.replace(r, index=r.index + 1) for r in own)]
                runs[exp_id] = own
        return runs

    def ablation(
        self, exp_id: str, runs: Sequence[RunRecord], study: StudySettings, full: Experiment
    ) -> Experiment:
        """The ablation ``exp_id``'s experiment from its runs (``against``'s). One compared
        with ``full``'s run 0 names ``full`` as its reference; a fresh pair has none."""
        _cause_id, _names, what = CONTROL_EXPERIMENTS[exp_id]
        description = f"{what} off, every other control on"
        exp = self.experiment(exp_id, description, controls_off(exp_id), runs, study)
        return exp if exp_id in FRESH_PAIRS else dataclasses.replace(exp, reference=full.id)

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

    def full_control(
        self, study: StudySettings, id: str = "full_control", second_study: bool = False
    ) -> Experiment:
        """Every control on, with the entropy audit: if these runs part, the audit's sites
        say where. ``second_study``: the first replicate's process then runs a second study
        after its first (the process-state probe, compared with that first study, at the
        cost of one study, not two); it is kept in ``self.second_study``."""
        controls = Controls()
        jobs = self.jobs(id, controls, study, self.replicates, audit=True)
        if second_study:
            jobs[0] = dataclasses.replace(jobs[0], studies=2)
        results = self.run(jobs)
        mine = [r for r in results if r.job.group == id]
        runs = [dataclasses.replace(r.runs[0], index=i) for i, r in enumerate(mine) if r.runs]
        self.second_study = None
        if second_study and mine and len(mine[0].runs) > 1:
            self.second_study = mine[0].runs[1]
        exp = self.experiment(id, f"every control on, n_jobs={study.n_jobs}", controls, runs, study)
        audits = tuple(r.audit for r in mine if r.audit is not None)
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


def located_causes(full: Experiment, cause_id: str) -> list[Cause]:
    """One cause per line of the user's code the audit saw calling a source of variation in
    the fully controlled runs: the certain ones (an unseeded generator, os.urandom...), or, when
    there are none, the suspects (clock reads, threads and process pools)."""
    sites: dict[tuple[str, int], dict[str, Any]] = {}
    for audit in full.audits:
        for site in audit.get("sites", []):
            key = (str(site["file"]), int(site["line"]))
            known = sites.setdefault(key, {**site, "trials": []})
            known["trials"] = sorted({*known["trials"], *site.get("trials", [])})
    certain = [s for s in sites.values() if s["kind"] == "random"]
    chosen = certain or [s for s in sites.values() if s["kind"] in ("clock", "parallel")]
    causes = []
    for site in sorted(chosen, key=lambda s: (min(s["trials"], default=1 << 30), s["line"])):
        where = Location(str(site["file"]), int(site["line"]), str(site["text"]))
        trials = site["trials"]
        seen = f" (trials {_trial_list(trials)})" if trials else ""
        verb = "calls" if site["kind"] == "random" else "may depend on"
        causes.append(
            Cause(
                cause_id,
                f"with every control on, {parted(full)}; your code {verb} "
                f"{site['source']} at {where}{seen}: {where.source}",
                located_fix(str(site["source"]), str(site["kind"]), where),
                full.divergence.trial if full.divergence else None,
                blocking=True,
                location=where,
            )
        )
    return causes


def _trial_list(trials: Sequence[int]) -> str:
    shown = ", ".join(map(str, trials[:5]))
    return shown + (f" and {len(trials) - 5} more" if len(trials) > 5 else "")


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


def parted(experiment: Experiment) -> str:
    d = experiment.divergence
    if d is None:
        return "the runs differ"
    return f"runs part at trial {d.trial} ({d.field}: {d.detail})"


def rank(causes: list[Cause]) -> tuple[Cause, ...]:
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
