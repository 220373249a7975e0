"""``diagnose``: find which source of randomness breaks reproducibility, and the fix.

The search, like reprotest's for builds:
1. full control; if that is not reproducible, the objective has noise no seed fixes (or trials
   race under ``n_jobs > 1``): probe the objective at fixed params in fresh processes;
2. otherwise switch each control off alone: the ones whose absence breaks it are necessary;
3. two studies in one process: does the objective carry module state between studies?
4. thread count 1 vs all cores: a portability warning, not a cause.
Every experiment is a few short replicates that stop at their first divergence.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repro_check.__about__ import __version__
from repro_check.checks.causes import (
    CAUSE_IDS,
    Cause,
    FixContext,
    ToleranceCheck,
    fix_for,
    no_kernel_fix,
)
from repro_check.errors import EXIT_INCOMPLETE, EXIT_REPRODUCIBLE
from repro_check.execution import devices
from repro_check.execution.replicates import default_workers, placement
from repro_check.execution.runner import Job, JobResult, ProgressCallback, run_jobs
from repro_check.plan.settings import CheckPlan, Controls, StudySettings, Tolerance
from repro_check.results import report
from repro_check.results.comparison import (
    Divergence,
    DivergenceWatch,
    Stats,
    diff_magnitude,
    field_equal,
    first_divergence,
)
from repro_check.results.records import (
    STATUS_CANCELLED,
    STATUS_ERROR,
    STATUS_OK,
    RunRecord,
    encode_float,
    encode_params,
)
from repro_check.vocab import CauseId, sampler_spec

DEFAULT_REPLICATES = 2
PROBE_PROCESSES = 3
PROBE_EVALUATIONS = 3

CONTROL_EXPERIMENTS: dict[str, tuple[CauseId, tuple[str, ...], str]] = {
    # experiment id: (cause id, controls switched off, what that means)
    "no_sampler_seed": (CauseId.SAMPLER_SEED, ("sampler_seed",), "the sampler seed"),
    "no_global_rng": (CauseId.GLOBAL_RNG, ("global_rng", "trial_reseed"), "global RNG seeding"),
    "no_trial_reseed": (CauseId.TRIAL_RESEED, ("trial_reseed",), "per-trial reseeding"),
    "no_hash_seed": (CauseId.HASH_SEED, ("hash_seed",), "a fixed PYTHONHASHSEED"),
    "no_torch_determinism": (
        CauseId.TORCH_DETERMINISM,
        ("torch_determinism",),
        "torch deterministic algorithms",
    ),
    "no_cudnn": (CauseId.TORCH_DETERMINISM, ("cudnn",), "the cuDNN flags"),
}


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
            "verdict": self.verdict,
            "stopped_early": self.stopped_early,
            "divergence": Divergence.to_optional_dict(self.divergence),
            "runs": [
                {"index": r.index, "status": r.status, "error": r.error, "trials": len(r.trials)}
                for r in self.runs
            ],
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


class _Lab:
    """Runs experiments for one diagnosis: shared target, device, workers and stop rule."""

    def __init__(
        self, plan: CheckPlan, device: str, replicates: int, on_progress: ProgressCallback | None
    ) -> None:
        self.plan = plan
        self.device = device
        self.replicates = replicates
        self.on_progress = on_progress
        self.warn_only = False
        self.next_index = 0
        self.torch_used = False

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
        self, jobs: Sequence[Job], stop_early: bool = True, tol: Tolerance | None = None
    ) -> list[JobResult]:
        tol = tol if tol is not None else self.plan.tolerance
        gpus = placement(self.plan, self.device)
        return run_jobs(
            self.plan.target,
            jobs,
            workers=default_workers(self.plan, self.device, len(jobs), len(gpus)),
            threads=self.plan.threads,
            device=self.device,
            timeout=self.plan.timeout,
            on_progress=self.on_progress,
            stop_when=(lambda: DivergenceWatch(tol).add) if stop_early else None,
            gpus=gpus,
        )

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
        divergence = first_divergence(runs, tol if tol is not None else self.plan.tolerance)
        stopped = any(r.status == STATUS_CANCELLED for r in runs)
        broken = any(r.status not in (STATUS_OK, STATUS_CANCELLED) for r in runs)
        if divergence is not None and (stopped or not broken):
            verdict = report.VERDICT_NOT_REPRODUCIBLE
        elif broken or stopped:
            verdict = report.VERDICT_INCOMPLETE
        else:
            verdict = report.VERDICT_REPRODUCIBLE
        if divergence is None and study.n_jobs != 1 and not broken:
            verdict = report.VERDICT_NOT_REPRODUCIBLE  # racing threads: agreement is luck
        return Experiment(
            id, description, controls, verdict, divergence, tuple(runs), study.n_jobs, threads
        )

    def full_control(self, study: StudySettings, id: str = "full_control") -> Experiment:
        controls = Controls()
        results = self.run(self.jobs(id, controls, study, self.replicates))
        return self.experiment(
            id, f"every control on, n_jobs={study.n_jobs}", controls, _runs_of(results, id), study
        )


def _runs_of(results: Sequence[JobResult], group: str) -> list[RunRecord]:
    """The group's runs, numbered 0, 1, ... within the experiment (as the user reads them)."""
    runs = [r for result in results if result.job.group == group for r in result.runs]
    return [dataclasses.replace(run, index=i) for i, run in enumerate(runs)]


def _ops(results: Sequence[JobResult]) -> list[str]:
    found: list[str] = []
    for result in results:
        found += [op for op in result.nondeterministic_ops if op not in found]
    return found


def _determinism_refused(experiment: Experiment) -> bool:
    return any(
        r.status == STATUS_ERROR and r.error and "no deterministic implementation" in r.error
        for r in experiment.runs
    )


def _parted(experiment: Experiment) -> str:
    d = experiment.divergence
    if d is None:
        return "the runs differ"
    return f"runs part at trial {d.trial} ({d.field}: {d.detail})"


def _probe_noise(lab: _Lab, full: Experiment, study: StudySettings) -> NoiseProbe | None:
    """Evaluate the objective at the params of the first trial whose values differed."""
    divergence = full.divergence
    if divergence is None:
        return None
    reference = next(r for r in full.runs if r.index == divergence.runs[0])
    trial = next((t for t in reference.trials if t.number == divergence.trial), None)
    if trial is None or not trial.params:
        return None
    probe_study = dataclasses.replace(study, trials=PROBE_EVALUATIONS, n_jobs=1)
    jobs = lab.jobs(
        "noise_probe", Controls(), probe_study, PROBE_PROCESSES, fixed_params=dict(trial.params)
    )
    results = lab.run(jobs, stop_early=False)
    values = [t.values[0] for r in _runs_of(results, "noise_probe") for t in r.trials if t.values]
    if not values:
        return None
    return NoiseProbe(dict(trial.params), trial.number, tuple(values), PROBE_PROCESSES)


_VALUE_FIELDS = ("values", "intermediate_values")


def candidate_atol(noise: float) -> float:
    """A round tolerance comfortably above the measured noise (10x, one significant digit)."""
    return float(f"{10 * noise:.1g}")


def _tolerance_check(
    lab: _Lab, full: Experiment, study: StudySettings, noise: float | None
) -> tuple[ToleranceCheck | None, Experiment | None]:
    """Try the tolerance a fix would suggest: first on the recorded fully controlled runs,
    then, if they agree under it, on fresh fully controlled runs of the whole study (noise
    also steers which params the sampler suggests next, which no tolerance absorbs)."""
    if noise is None or not noise > 0 or not math.isfinite(noise):
        return None, None
    atol = candidate_atol(noise)
    tol = Tolerance(atol=atol, rtol=lab.plan.tolerance.rtol)
    recorded = first_divergence(full.runs, tol)
    if recorded is not None:
        trials = max((len(r.trials) for r in full.runs), default=0)
        steered = params_split(full.runs)
        return ToleranceCheck(atol, len(full.runs), trials, recorded, steered), None
    group = "tolerance_check"
    # as many runs as `run` would compare (more runs part sooner), at least the replicates
    count = max(lab.replicates, lab.plan.runs)
    results = lab.run(lab.jobs(group, Controls(), study, count), tol=tol)
    runs = _runs_of(results, group)
    experiment = lab.experiment(
        group, f"every control on, compared with --atol {atol:g}", Controls(), runs, study, tol=tol
    )
    if experiment.verdict == report.VERDICT_INCOMPLETE:
        return None, experiment
    trials = max((len(r.trials) for r in runs), default=0)
    divergence = experiment.divergence
    if divergence is None and experiment.verdict != report.VERDICT_REPRODUCIBLE:
        return None, experiment
    steered = params_split(runs)
    reorder = _reorder_risk(runs, noise, study) if divergence is None and steered is None else None
    startup = _startup_trials(study)
    return (
        ToleranceCheck(atol, len(runs), trials, divergence, steered, reorder, startup),
        experiment,
    )


def _startup_trials(study: StudySettings) -> int | None:
    configured = study.sampler_kwargs.get("n_startup_trials")
    if isinstance(configured, int) and not isinstance(configured, bool) and configured > 0:
        return min(configured, study.trials)
    spec = sampler_spec(study.sampler)
    default = spec.startup_trials if spec else None
    return min(default, study.trials) if default else None


def _reorder_risk(
    runs: Sequence[RunRecord], noise: float, study: StudySettings
) -> tuple[float, float] | None:
    """(noise, smallest gap) when noise of this size could swap two trials' order in a run and
    the sampler looks at the values: it would then suggest other params."""
    spec = sampler_spec(study.sampler)
    if spec is not None and spec.value_free:
        return None
    gaps = []
    for run in runs:
        values = sorted(
            t.values[0]
            for t in run.trials
            if t.state == "COMPLETE" and t.values and math.isfinite(t.values[0])
        )
        gaps += [b - a for a, b in itertools.pairwise(values)]
    if not gaps:
        return None
    smallest = min(gaps)
    return (noise, smallest) if smallest <= noise else None


def params_split(runs: Sequence[RunRecord]) -> int | None:
    """The first trial number at which two runs that both have it got different params (bit
    for bit) or states: where the sampler's path forks."""
    exact = Tolerance()
    tables = [{t.number: t for t in run.trials} for run in runs]
    numbers = sorted(set().union(*tables)) if tables else []
    for number in numbers:
        held = [table[number] for table in tables if number in table]
        first = held[0]
        if any(
            not field_equal("params", first, other, exact)
            or not field_equal("state", first, other, exact)
            for other in held[1:]
        ):
            return number
    return None


def _noise_branch(
    lab: _Lab,
    full: Experiment,
    study: StudySettings,
    causes: list[Cause],
    warnings: list[str],
    experiments: list[Experiment],
) -> NoiseProbe | None:
    probe = _probe_noise(lab, full, study)
    noise = probe.max_abs_diff if probe is not None and probe.noisy else None
    measured = noise
    parted = full.divergence
    if measured is None and parted is not None and parted.field in _VALUE_FIELDS:
        measured = parted.max_abs_diff  # no spread at fixed params: the size of the split
    check, tried = _tolerance_check(lab, full, study, measured)
    if tried is not None:
        experiments.append(tried)
    if probe is not None and probe.noisy:
        stats = probe.stats
        spread = f"std {stats.std:.3g}" if stats else ""
        causes.append(
            Cause(
                CauseId.OBJECTIVE_NOISE,
                f"at fixed params {dict(probe.params)} (from trial {probe.trial}) the objective "
                f"returned {len(probe.values)} values across {probe.processes} fresh processes "
                f"spreading by {probe.max_abs_diff:.3g} ({spread}); every control was on",
                lab.fix(CauseId.OBJECTIVE_NOISE, study, noise, check),
                full.divergence.trial if full.divergence else None,
                blocking=True,
            )
        )
    elif full.divergence is not None and full.divergence.field == "params":
        causes.append(
            Cause(
                CauseId.SAMPLER_SEED,
                f"with every control on, the sampler still proposes different params: "
                f"{_parted(full)}",
                lab.fix(CauseId.SAMPLER_SEED, study),
                full.divergence.trial,
                blocking=True,
            )
        )
    else:
        causes.append(
            Cause(
                CauseId.OBJECTIVE_NOISE,
                f"with every control on, {_parted(full)}; the objective at fixed params did not "
                "vary, so the noise is intermittent or depends on earlier trials",
                lab.fix(CauseId.OBJECTIVE_NOISE, study, noise, check),
                full.divergence.trial if full.divergence else None,
                blocking=True,
            )
        )
    warnings.append(
        "full control is not reproducible, so the controls were not tested one by "
        "one (noise would hide their effect)"
    )
    return probe


def _control_experiments(
    lab: _Lab, full: Experiment, study: StudySettings, causes: list[Cause], warnings: list[str]
) -> list[Experiment]:
    """Each control off alone, plus process state and thread count, in one pool."""
    ids = ["no_sampler_seed", "no_global_rng", "no_trial_reseed", "no_hash_seed"]
    if lab.torch_used:
        ids.append("no_torch_determinism")
        if lab.device == "cuda":
            ids.append("no_cudnn")
    jobs: list[Job] = []
    controls_of: dict[str, Controls] = {}
    for exp_id in ids:
        controls = Controls()
        for name in CONTROL_EXPERIMENTS[exp_id][1]:
            controls = controls.without(name)
        controls_of[exp_id] = controls
        jobs += lab.jobs(exp_id, controls, study, lab.replicates)
    jobs += lab.jobs("process_state", Controls(), study, 1, studies=2)
    cores = os.cpu_count() or 1
    if cores > 1:
        jobs += lab.jobs("threads", Controls(), study, 1, threads=1)
        jobs += lab.jobs("threads", Controls(), study, 1, threads=cores)
    results = lab.run(jobs)
    experiments = []
    for exp_id in ids:
        cause_id, _off, what = CONTROL_EXPERIMENTS[exp_id]
        exp = lab.experiment(
            exp_id,
            f"{what} off, every other control on",
            controls_of[exp_id],
            _runs_of(results, exp_id),
            study,
        )
        experiments.append(exp)
        if exp.verdict == report.VERDICT_NOT_REPRODUCIBLE:
            causes.append(
                Cause(
                    cause_id,
                    f"with {what} off, {_parted(exp)}",
                    lab.fix(cause_id, study),
                    exp.divergence.trial if exp.divergence else None,
                )
            )
    state = lab.experiment(
        "process_state",
        "two studies one after another in one process",
        Controls(),
        _runs_of(results, "process_state"),
        study,
    )
    experiments.append(state)
    if state.verdict == report.VERDICT_NOT_REPRODUCIBLE:
        causes.append(
            Cause(
                CauseId.PROCESS_STATE,
                f"the second study in the same process differs: {_parted(state)}",
                lab.fix(CauseId.PROCESS_STATE, study),
                state.divergence.trial if state.divergence else None,
            )
        )
    if cores > 1:
        thread_runs = _runs_of(results, "threads")
        threads = lab.experiment(
            "threads", f"1 thread vs {cores} threads", Controls(), thread_runs, study, threads=cores
        )
        experiments.append(threads)
        if threads.verdict == report.VERDICT_NOT_REPRODUCIBLE:
            warnings.append(
                f"results change with the thread count (1 vs {cores}): "
                f"{_parted(threads)}; pin the thread count (repro-check --threads, "
                "torch.set_num_threads, OMP_NUM_THREADS) where results must match"
            )
    return experiments


def _rank(causes: list[Cause]) -> tuple[Cause, ...]:
    unique: dict[str, Cause] = {}
    for cause in causes:
        unique.setdefault(cause.id, cause)
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


def run_diagnose(
    plan: CheckPlan,
    replicates: int = DEFAULT_REPLICATES,
    on_progress: ProgressCallback | None = None,
) -> Diagnosis:
    device = devices.resolve(plan.device)
    lab = _Lab(plan, device, replicates, on_progress)
    study = plan.study
    causes: list[Cause] = []
    warnings: list[str] = []
    ops: list[str] = []
    full = lab.full_control(study)
    lab.torch_used = any(r.environment.get("torch") for r in full.runs)
    experiments = [full]
    if _determinism_refused(full):
        lab.warn_only = True
        probe_jobs = lab.jobs("op_probe", Controls(), dataclasses.replace(study, n_jobs=1), 1)
        ops = _ops(lab.run(probe_jobs, stop_early=False))
        refused = next(r.error for r in full.runs if r.status == STATUS_ERROR and r.error)
        named = ops or [refused.split(" ", 1)[0]]
        causes.append(
            Cause(
                CauseId.TORCH_DETERMINISM,
                f"torch has no deterministic kernel for {', '.join(named)}: under "
                f"torch.use_deterministic_algorithms(True) the study stops ({refused})",
                no_kernel_fix(named),
                0,
                blocking=True,
            )
        )
        ops = named
        full = lab.full_control(study, "full_control_warn_only")
        experiments.append(full)
    if full.verdict == report.VERDICT_INCOMPLETE:
        failures = "; ".join(f"run {r.index} {r.status}: {r.error}" for r in full.runs if r.error)
        return Diagnosis(
            plan,
            device,
            False,
            _rank(causes),
            tuple(experiments),
            warnings=(f"full control could not finish: {failures}",),
            nondeterministic_ops=tuple(ops),
            incomplete=not causes,  # a named cause is a finished diagnosis
        )
    if full.verdict != report.VERDICT_REPRODUCIBLE and study.n_jobs != 1:
        causes.append(
            Cause(
                CauseId.PARALLEL_TRIALS,
                f"n_jobs={study.n_jobs}: Optuna reseeds the sampler in every "
                f"thread and trials race; {_parted(full)}",
                lab.fix(CauseId.PARALLEL_TRIALS, study),
                full.divergence.trial if full.divergence else 0,
                blocking=True,
            )
        )
        study = dataclasses.replace(study, n_jobs=1)
        full = lab.full_control(study, "full_control_n_jobs_1")
        experiments.append(full)
    reproducible = full.verdict == report.VERDICT_REPRODUCIBLE
    noise = None
    if full.verdict == report.VERDICT_NOT_REPRODUCIBLE:
        noise = _noise_branch(lab, full, study, causes, warnings, experiments)
    elif reproducible:
        experiments += _control_experiments(lab, full, study, causes, warnings)
    return Diagnosis(
        plan,
        device,
        reproducible and plan.study.n_jobs == 1,
        _rank(causes),
        tuple(experiments),
        noise,
        tuple(warnings),
        tuple(ops),
    )
