"""``diagnose``: find which source of randomness breaks reproducibility, and the fix.

The search, like reprotest's for builds:
1. full control, beside the ``PYTHONHASHSEED`` ablation, whose runs stand in for full
   control's other replicates when they agree (``_full_control``); if full control is not
   reproducible, the objective has noise no seed fixes (or trials race under ``n_jobs > 1``):
   probe the objective at fixed params in fresh processes;
2. otherwise switch each other control off alone: the ones whose absence breaks it are necessary;
3. two studies in one process: does the objective carry module state between studies?
4. thread count 1 vs all cores: a portability warning, not a cause;
5. with ``--resume-at K`` or a storage: each replicate stopped after K trials and resumed in a
   fresh process (``checks.resume``), against the fully controlled runs.
Every experiment is a few short replicates that stop at their first divergence.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

from repro_check.checks.causes import (
    NOISE_SOURCES,
    Cause,
    Location,
    ToleranceCheck,
    no_kernel_fix,
)
from repro_check.checks.diagnose_resume import resume_experiment, resume_point
from repro_check.checks.lab import (
    CONTROL_EXPERIMENTS,
    Diagnosis,
    Experiment,
    Lab,
    NoiseProbe,
    ablation_specs,
    controls_off,
    globals_consumed,
    located_causes,
    parted,
    rank,
    runs_of,
    unfinished,
)
from repro_check.execution import devices
from repro_check.execution.linetrace import Split, first_op_split, first_split
from repro_check.execution.replicates import JobRunner, script_spec
from repro_check.execution.runner import JobResult, ProgressCallback
from repro_check.plan.settings import CheckPlan, Controls, StudySettings, Tolerance
from repro_check.results import report
from repro_check.results.comparison import (
    field_equal,
    first_divergence,
)
from repro_check.results.records import (
    STATUS_CANCELLED,
    STATUS_ERROR,
    STATUS_OK,
    RunRecord,
)
from repro_check.vocab import CauseId, sampler_spec

__all__ = ["CONTROL_EXPERIMENTS", "Diagnosis", "Experiment", "NoiseProbe", "run_diagnose"]

DEFAULT_REPLICATES = 2
PROBE_PROCESSES = 3
PROBE_EVALUATIONS = 3


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


def _trace_split(
    lab: Lab, study: StudySettings, probe: NoiseProbe, experiments: list[Experiment]
) -> tuple[Split | None, str | None]:
    """Evaluate the noisy params once more in two fresh processes, each traced line by line
    in the user's files, and find the first line after which their locals differ; and why
    the trace stopped early, if it met a bound."""
    one = dataclasses.replace(study, trials=1, n_jobs=1)
    jobs = lab.jobs("line_trace", Controls(), one, 2, fixed_params=dict(probe.params), trace=True)
    results = lab.run(jobs, stop_early=False)
    traces = [r.trace for r in results if r.trace is not None]
    ops = [r.trace_ops for r in results if r.trace is not None]
    stopped = next((r.trace_truncated for r in results if r.trace_truncated), None)
    runs = runs_of(results, "line_trace")
    experiments.append(
        lab.experiment(
            "line_trace", "the noisy params once, traced line by line", Controls(), runs, one
        )
    )
    if len(traces) < 2:
        return None, stopped
    split = first_split(traces[0], traces[1])
    op = first_op_split(ops[0], ops[1]) if ops[0] and ops[1] else None
    if split is not None and op is not None:
        split = dataclasses.replace(split, op=op)
    return split, stopped


def _probe_noise(lab: Lab, full: Experiment, study: StudySettings) -> NoiseProbe | None:
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
    values = [t.values[0] for r in runs_of(results, "noise_probe") for t in r.trials if t.values]
    if not values:
        return None
    return NoiseProbe(dict(trial.params), trial.number, tuple(values), PROBE_PROCESSES)


_VALUE_FIELDS = ("values", "intermediate_values")


def candidate_atol(noise: float) -> float:
    """A round tolerance comfortably above the measured noise (10x, one significant digit)."""
    return float(f"{10 * noise:.1g}")


def _tolerance_check(
    lab: Lab, full: Experiment, study: StudySettings, noise: float | None
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
    runs = runs_of(results, group)
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
    lab: Lab,
    full: Experiment,
    study: StudySettings,
    causes: list[Cause],
    warnings: list[str],
    experiments: list[Experiment],
    pair: Experiment | None = None,
) -> NoiseProbe | None:
    probe = _probe_noise(lab, full, study)
    noise = probe.max_abs_diff if probe is not None and probe.noisy else None
    measured = noise
    split = full.divergence
    if measured is None and split is not None and split.field in _VALUE_FIELDS:
        measured = split.max_abs_diff  # no spread at fixed params: the size of the split
    check, tried = _tolerance_check(lab, full, study, measured)
    if tried is not None:
        experiments.append(tried)
    located = located_causes(full, CauseId.OBJECTIVE_NOISE)
    if located and not (full.divergence is not None and full.divergence.field == "params"):
        # the audit saw where: one cause per line, each fix at its line, then what the
        # tolerance check found (a tolerance that was tried, or why none rescues the check)
        generic = lab.fix(CauseId.OBJECTIVE_NOISE, study, noise, check)
        tail = generic.removeprefix(NOISE_SOURCES).lstrip(";.\n")
        causes.extend(dataclasses.replace(c, fix=f"{c.fix}\n{tail}") for c in located)
    elif probe is not None and probe.noisy:
        stats = probe.stats
        spread = f"std {stats.std:.3g}" if stats else ""
        traced, stopped = _trace_split(lab, study, probe, experiments)
        where = f"; the first line where two processes part: {traced.describe()}" if traced else ""
        if traced is None and stopped is not None:
            where = f"; the line tracer found no line where two processes part ({stopped})"
        fix = lab.fix(CauseId.OBJECTIVE_NOISE, study, noise, check)
        if traced is not None:
            fix = f"# {traced.file}:{traced.line}: {traced.source}\n{fix}"
        causes.append(
            Cause(
                CauseId.OBJECTIVE_NOISE,
                f"at fixed params {dict(probe.params)} (from trial {probe.trial}) the objective "
                f"returned {len(probe.values)} values across {probe.processes} fresh processes "
                f"spreading by {probe.max_abs_diff:.3g} ({spread}); every control was on{where}",
                fix,
                full.divergence.trial if full.divergence else None,
                blocking=True,
                location=Location(traced.file, traced.line, traced.source) if traced else None,
            )
        )
    elif full.divergence is not None and full.divergence.field == "params":
        causes.append(
            Cause(
                CauseId.SAMPLER_SEED,
                f"with every control on, the sampler still proposes different params: "
                f"{parted(full)}",
                lab.fix(CauseId.SAMPLER_SEED, study),
                full.divergence.trial,
                blocking=True,
            )
        )
    else:
        causes.append(
            Cause(
                CauseId.OBJECTIVE_NOISE,
                f"with every control on, {parted(full)}; the objective at fixed params did not "
                "vary, so the noise is intermittent or depends on earlier trials",
                lab.fix(CauseId.OBJECTIVE_NOISE, study, noise, check),
                full.divergence.trial if full.divergence else None,
                blocking=True,
            )
        )
    beside = "; nor does the PYTHONHASHSEED run beside it" if pair is not None else ""
    warnings.append(
        "full control is not reproducible, so the controls were not tested one by "
        f"one (noise would hide their effect{beside})"
    )
    return probe


def _ablation_ids(lab: Lab, full: Experiment, warnings: list[str]) -> list[str]:
    """The controls to switch off one by one after full control (``PYTHONHASHSEED``'s ran
    beside it, in ``_full_control``). Global RNG seeding is tested only when the
    audit saw the objective consume a global stream (or could not tell): an objective that
    never touches one cannot depend on its seeding."""
    ids = ["no_sampler_seed"]
    consumed = globals_consumed(full)
    if consumed is None or consumed:
        ids += ["no_global_rng", "no_trial_reseed"]
    else:
        warnings.append(
            "the objective never consumed the global random, NumPy or torch streams (audited, "
            "at import and in every trial): their seeding needs no experiment"
        )
    return ids + lab.torch_ablations()


def _control_experiments(
    lab: Lab,
    full: Experiment,
    pair: Experiment,
    study: StudySettings,
    causes: list[Cause],
    warnings: list[str],
) -> list[Experiment]:
    """Each control off alone, plus the process-state probe that ran in full control's
    process. ``pair`` is the ``PYTHONHASHSEED`` and ``threads`` ablation that ran beside full
    control: reproducible or incomplete, it is not rerun; parted, the two controls are
    ablated apart, in the same batch as the other ablations."""
    reference = full.runs[0]
    ids = _ablation_ids(lab, full, warnings)
    specs = ablation_specs(ids)
    experiments = [pair]
    if pair.verdict == report.VERDICT_INCOMPLETE:
        warnings.append(
            f"the {pair.id} run could not finish ({unfinished(pair.runs)}): PYTHONHASHSEED "
            "and the thread count were not tested"
        )
    if pair.verdict == report.VERDICT_NOT_REPRODUCIBLE:
        specs += ablation_specs(["no_hash_seed", "no_threads"])
        ids += ["no_hash_seed", "no_threads"]
    runs = lab.against(reference, specs, study)
    experiments += [lab.ablation(exp_id, runs[exp_id], study, full) for exp_id in ids]
    warnings += _split_pair_warnings(pair, experiments)
    for exp in experiments:
        if exp.id in CONTROL_EXPERIMENTS and exp.verdict == report.VERDICT_NOT_REPRODUCIBLE:
            cause_id, _names, what = CONTROL_EXPERIMENTS[exp.id]
            causes.append(
                Cause(
                    cause_id,
                    f"with {what} off, {parted(exp)}",
                    lab.fix(cause_id, study),
                    exp.divergence.trial if exp.divergence else None,
                )
            )
    if lab.second_study is not None:
        state = lab.experiment(
            "process_state",
            "two studies one after another in one process",
            Controls(),
            [reference, dataclasses.replace(lab.second_study, index=1)],
            study,
        )
        state = dataclasses.replace(state, reference=full.id)
        experiments.append(state)
        if state.verdict == report.VERDICT_NOT_REPRODUCIBLE:
            causes.append(
                Cause(
                    CauseId.PROCESS_STATE,
                    f"the second study in the same process differs: {parted(state)}",
                    lab.fix(CauseId.PROCESS_STATE, study),
                    state.divergence.trial if state.divergence else None,
                )
            )
    return experiments


def _split_pair_warnings(pair: Experiment, experiments: Sequence[Experiment]) -> list[str]:
    """The ``PYTHONHASHSEED`` and threads pair parted from full control, yet each control off
    alone reproduces: the thread count changes the numbers deterministically (1 thread vs the
    machine's), or the two interact, or a race showed once. Never silent."""
    if pair.verdict != report.VERDICT_NOT_REPRODUCIBLE:
        return []
    split = [e for e in experiments if e.id in ("no_hash_seed", "no_threads")]
    unfinished_split = [e for e in split if e.verdict == report.VERDICT_INCOMPLETE]
    if unfinished_split:
        return [
            f"the {e.id} run could not finish ({unfinished(e.runs)}): that control went "
            f"untested, though with PYTHONHASHSEED and pinned threads both off, {parted(pair)}"
            for e in unfinished_split
        ]
    if not split or any(e.verdict != report.VERDICT_REPRODUCIBLE for e in split):
        return []
    return [
        f"with PYTHONHASHSEED and pinned threads both off, {parted(pair)}, yet each off alone "
        "reproduces: the results follow the thread count (1 pinned vs the machine's), or the "
        "two interact, or a thread race showed once; pin the thread count and PYTHONHASHSEED "
        "where results must match across machines"
    ]


def _full_control(
    lab: Lab, study: StudySettings, id: str = "full_control"
) -> tuple[Experiment, Experiment | None]:
    """Every control on, and the ``PYTHONHASHSEED`` and ``threads`` ablation (the shell's
    hash seed and thread counts), in one batch under one stop rule: one fully controlled run
    (whose process then runs a second study: the process-state probe) and ``replicates - 1``
    runs with those controls off. Returns full control and that ablation (the pair).

    If they agree, the ablation's runs are also full control's other replicates: they had
    every source of variation full control has (fresh processes, their own addresses) and
    more, so full control reproduces too, and one study is saved. If not, full control gets
    ``replicates - 1`` runs of its own against the first (or, if the pair's divergence
    stopped it, is run afresh). Under ``n_jobs > 1`` (racing trials, a verdict of its own)
    full control runs the usual way, without a pair."""
    if study.n_jobs != 1:
        return lab.full_control(study, id, second_study=True), None
    what = "a fixed PYTHONHASHSEED and pinned threads off"
    first = lab.jobs(id, Controls(), study, 1, audit=True, studies=2)
    count = max(1, lab.replicates - 1)  # a witness even when called with one replicate
    loose = controls_off("no_hash_seed").without("threads")
    others = lab.jobs(id, loose, study, count, audit=True)
    mine = [r for r in lab.run([*first, *others]) if r.job.group == id]  # each has a run
    reference = dataclasses.replace(mine[0].runs[0], index=0)
    lab.second_study = mine[0].runs[1] if len(mine[0].runs) > 1 else None
    witnesses = [dataclasses.replace(r.runs[0], index=i) for i, r in enumerate(mine[1:], 1)]
    pair = lab.experiment(
        "no_hash_seed", f"{what}, every other control on", loose, [reference, *witnesses], study
    )
    if pair.verdict == report.VERDICT_NOT_REPRODUCIBLE:
        pair = dataclasses.replace(pair, id="no_hash_seed_threads")
    audits = tuple(r.audit for r in mine if r.audit is not None)
    desc = f"every control on, n_jobs={study.n_jobs}"
    if pair.verdict == report.VERDICT_REPRODUCIBLE:
        full = lab.experiment(
            id,
            f"{desc}; replicated by {pair.id}'s runs (fewer controls; they agreed)",
            Controls(),
            [reference],
            study,
        )
        pair = dataclasses.replace(pair, reference=id)
        return dataclasses.replace(full, audits=audits, witness=pair.id), pair
    if reference.status == STATUS_CANCELLED and pair.verdict == report.VERDICT_NOT_REPRODUCIBLE:
        against = "against a fully controlled run stopped with it, not full control's run 0"
        pair = dataclasses.replace(pair, description=f"{what}, every other control on ({against})")
        return lab.full_control(study, id, second_study=True), pair
    runs = [reference]
    if reference.status == STATUS_OK:  # finished: full control's run 0; now its others
        more = lab.run(
            lab.jobs(id, Controls(), study, lab.replicates - 1, audit=True), reference=reference
        )
        runs += [dataclasses.replace(r.runs[0], index=i) for i, r in enumerate(more, 1) if r.runs]
        audits += tuple(r.audit for r in more if r.audit is not None)
    full = lab.experiment(id, desc, Controls(), runs, study)  # a broken run 0: incomplete
    return dataclasses.replace(full, audits=audits), dataclasses.replace(pair, reference=id)


def run_diagnose(
    plan: CheckPlan,
    replicates: int = DEFAULT_REPLICATES,
    on_progress: ProgressCallback | None = None,
    runner: JobRunner | None = None,
) -> Diagnosis:
    """``runner`` runs every experiment's jobs (None: fresh worker processes)."""
    device = devices.resolve(plan.device)
    if plan.storage is not None and resume_point(plan) is not None and script_spec(plan) is None:
        from repro_check.storage.store import open_storage

        open_storage(plan.storage)  # a storage that cannot open is bad input, before any run
    lab = Lab(plan, device, replicates, on_progress, runner)
    if script_spec(plan) is not None:
        from repro_check.checks.diagnose_script import diagnose_script

        return diagnose_script(lab)
    study = plan.study
    causes: list[Cause] = []
    warnings: list[str] = []
    ops: list[str] = []
    full, pair = _full_control(lab, study)
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
        if pair is not None:  # the retry runs its own pair: ids stay unique in the report
            experiments.append(dataclasses.replace(pair, id=f"{pair.id}_{full.id}"))
        full, pair = _full_control(lab, study, "full_control_warn_only")
        experiments.append(full)
    if full.verdict == report.VERDICT_INCOMPLETE:
        failures = unfinished(full.runs)
        experiments += [pair] if pair is not None else []
        return Diagnosis(
            plan,
            device,
            False,
            rank(causes),
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
                f"thread and trials race; {parted(full)}",
                lab.fix(CauseId.PARALLEL_TRIALS, study),
                full.divergence.trial if full.divergence else 0,
                blocking=True,
            )
        )
        study = dataclasses.replace(study, n_jobs=1)
        full, pair = _full_control(lab, study, "full_control_n_jobs_1")
        experiments.append(full)
    reproducible = full.verdict == report.VERDICT_REPRODUCIBLE
    noise = None
    if full.verdict == report.VERDICT_NOT_REPRODUCIBLE:
        experiments += [pair] if pair is not None else []
        noise = _noise_branch(lab, full, study, causes, warnings, experiments, pair)
    elif reproducible:
        assert pair is not None  # full control reproduces only with n_jobs=1: beside its pair
        experiments += _control_experiments(lab, full, pair, study, causes, warnings)
    resumed = resume_experiment(lab, full, study, causes, warnings)
    if resumed is not None:
        experiments.append(resumed)
    return Diagnosis(
        plan,
        device,
        reproducible and plan.study.n_jobs == 1,
        rank(causes),
        tuple(experiments),
        noise,
        tuple(warnings),
        tuple(ops),
    )
