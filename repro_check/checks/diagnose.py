"""``diagnose``: find which source of randomness breaks reproducibility, and the fix.

The search, like reprotest's for builds:
1. full control, beside the screening ablation (``PYTHONHASHSEED`` and pinned threads off),
   whose runs replicate full control when they agree (``_full_control``); if full control is
   not reproducible, the objective has noise no seed fixes (or trials race under
   ``n_jobs > 1``): ``diagnose_noise`` probes the objective at fixed params in fresh processes;
2. otherwise switch each control off alone (the registry's ablations, ``checks.causes``): the
   ones whose absence breaks it are necessary;
3. two studies in one process: does the objective carry module state between studies?
   (a fresh fully controlled process runs the first quarter of the study twice, beside
   full control: ``PROCESS_PROBE_SHARE``)
4. with ``--resume-at K`` or a storage: each replicate stopped after K trials and resumed in a
   fresh process (``diagnose_resume``), against the fully controlled runs.
Every experiment is a few short replicates that stop at their first divergence. Each step
returns what it found (``lab.Found``); the causes are worded by their registry entries.

Every verdict that says "reproducible" or "not needed" rests on as many runs as ``run``
compares by default (``DEFAULT_REPLICATES``, 3): a parting needs two runs to be certain, an
agreement needs as many as ``run`` would have to agree (two random hash seeds order a set of
three strings alike one time in six; three, one in 36).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from repro_check.checks.causes import ABLATIONS, Finding, ablations, known
from repro_check.checks.causes.model import divergence_trial, where_runs_part
from repro_check.checks.diagnose_noise import noise_step
from repro_check.checks.diagnose_resume import resume_experiment, resume_point
from repro_check.checks.lab import Found, Lab, globals_consumed, rank, unfinished
from repro_check.execution import devices
from repro_check.execution.replicates import JobRunner, script_spec
from repro_check.execution.runner import JobResult, ProgressCallback
from repro_check.plan.settings import DEFAULT_RUNS, CheckPlan, Controls, StudySettings
from repro_check.results import report
from repro_check.results.diagnosis import Diagnosis, Experiment, NoiseProbe
from repro_check.results.records import STATUS_CANCELLED, STATUS_ERROR, STATUS_OK
from repro_check.vocab import CauseId

__all__ = ["DEFAULT_REPLICATES", "SCREENED", "run_diagnose"]

DEFAULT_REPLICATES = DEFAULT_RUNS
"""Runs per experiment: as many as ``run`` compares by default, so that no verdict of
diagnose rests on fewer runs than ``run``'s (an experiment compared with full control's run 0
reuses it as one of them)."""

PROCESS_PROBE_SHARE = 4
"""The process-state probe runs the first 1/4 of the study (at least one trial) twice in one
fresh process: state a study leaves behind shows from the next study's first trials, and a
whole second study would cost one study more than the 4 the diagnosis may spend (three full
control runs, for as many as ``run`` compares, are three of them)."""

SCREENED = ("no_hash_seed", "no_threads")
"""The ablations screened together beside full control: the shell's hash seed and thread
counts rarely matter, so one experiment with both off usually replicates full control (saving
a study) and shows neither is needed; only when it parts are they run one by one."""


@dataclass(frozen=True)
class FullControl:
    """Full control, and the screening ablation that ran beside it (None under n_jobs > 1)."""

    experiment: Experiment
    screen: Experiment | None


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


def _full_control(lab: Lab, study: StudySettings, id: str = "full_control") -> FullControl:
    """Every control on, and the screening ablation (the shell's hash seed and thread counts),
    in one batch under one stop rule: one fully controlled run (whose process then runs a
    second study: the process-state probe) and ``replicates - 1`` runs with those controls off.

    If they agree, the screen's runs are also full control's other replicates: they had every
    source of variation full control has (fresh processes, their own addresses) and more, so
    full control reproduces too, and one study is saved (full control's ``witness``). If not,
    full control gets ``replicates - 1`` runs of its own against the first (or, if the
    screen's divergence stopped it, is run afresh). Under ``n_jobs > 1`` (racing trials, a
    verdict of its own) full control runs the usual way, without a screen."""
    if study.n_jobs != 1:
        return FullControl(lab.full_control(study, id), None)
    what = "a fixed PYTHONHASHSEED and pinned threads off"
    first = lab.jobs(id, Controls(), study, 1, audit=True)
    count = max(1, lab.replicates - 1)  # a replicate even when called with one
    loose = Controls().without("hash_seed").without("threads")
    others = lab.jobs(id, loose, study, count, audit=True)
    probe = lab.jobs(PROCESS_STATE, Controls(), _probe_study(study), 1, studies=2)
    results = lab.run([*first, *others, *probe])
    batch = [r for r in results if r.job.group == id]  # each has a run
    lab.process_probe = next((r.runs for r in results if r.job.group == PROCESS_STATE), [])
    reference = dataclasses.replace(batch[0].runs[0], index=0)
    screen_runs = [dataclasses.replace(r.runs[0], index=i) for i, r in enumerate(batch[1:], 1)]
    screen = lab.experiment(
        "no_hash_seed", f"{what}, every other control on", loose, [reference, *screen_runs], study
    )
    if screen.verdict == report.VERDICT_NOT_REPRODUCIBLE:
        screen = dataclasses.replace(screen, id="no_hash_seed_threads")
    audits = tuple(r.audit for r in batch if r.audit is not None)
    desc = f"every control on, n_jobs={study.n_jobs}"
    if screen.verdict == report.VERDICT_REPRODUCIBLE:
        full = lab.experiment(
            id,
            f"{desc}; replicated by {screen.id}'s runs (fewer controls; they agreed)",
            Controls(),
            [reference],
            study,
        )
        screen = dataclasses.replace(screen, reference=id)
        return FullControl(dataclasses.replace(full, audits=audits, witness=screen.id), screen)
    if reference.status == STATUS_CANCELLED and screen.verdict == report.VERDICT_NOT_REPRODUCIBLE:
        stopped = "against a fully controlled run stopped with it, not full control's run 0"
        screen = dataclasses.replace(
            screen, description=f"{what}, every other control on ({stopped})"
        )
        return FullControl(lab.full_control(study, id), screen)
    runs = [reference]
    if reference.status == STATUS_OK:  # finished: full control's run 0; now its others
        more = lab.run(
            lab.jobs(id, Controls(), study, lab.replicates - 1, audit=True), reference=reference
        )
        runs += [dataclasses.replace(r.runs[0], index=i) for i, r in enumerate(more, 1) if r.runs]
        audits += tuple(r.audit for r in more if r.audit is not None)
    full = lab.experiment(id, desc, Controls(), runs, study)  # a broken run 0: incomplete
    return FullControl(
        dataclasses.replace(full, audits=audits), dataclasses.replace(screen, reference=id)
    )


def _without_deterministic_kernels(
    lab: Lab, study: StudySettings, refused: FullControl
) -> tuple[Found, tuple[str, ...], FullControl]:
    """Torch stopped the study under deterministic algorithms: name the ops (one run in
    warn-only mode reports them) and retry full control in warn-only mode. Returns the cause,
    the ops, and the retried full control."""
    lab.warn_only = True
    probe_jobs = lab.jobs("op_probe", Controls(), dataclasses.replace(study, n_jobs=1), 1)
    ops = _ops(lab.run(probe_jobs, stop_early=False))
    full = refused.experiment
    error = next(r.error for r in full.runs if r.status == STATUS_ERROR and r.error)
    named = tuple(ops or [error.split(" ", 1)[0]])
    finding = Finding(full, lab.context(study), 0, blocking=True, ops=named, refused=error)
    found = Found(causes=(known(CauseId.TORCH_DETERMINISM).found(finding),))
    if refused.screen is not None:  # the retry runs its own screen: ids stay unique
        renamed = dataclasses.replace(refused.screen, id=f"{refused.screen.id}_{full.id}")
        found += Found(experiments=(renamed,))
    retried = _full_control(lab, study, "full_control_warn_only")
    return found + Found(experiments=(retried.experiment,)), named, retried


def _parallel_trials(
    lab: Lab, study: StudySettings, raced: Experiment
) -> tuple[Found, StudySettings, FullControl]:
    """Full control under n_jobs > 1 did not reproduce: agreement would be luck anyway. Name
    ``parallel_trials`` and retry full control (and every experiment after it) with one job."""
    finding = Finding(
        raced, lab.context(study), divergence_trial(raced, 0), blocking=True, n_jobs=study.n_jobs
    )
    found = Found(causes=(known(CauseId.PARALLEL_TRIALS).found(finding),))
    study = dataclasses.replace(study, n_jobs=1)
    retried = _full_control(lab, study, "full_control_n_jobs_1")
    return found + Found(experiments=(retried.experiment,)), study, retried


def _ablation_step(lab: Lab, full: Experiment, screen: Experiment, study: StudySettings) -> Found:
    """Each control off alone (the registry's ablations worth running here). ``screen``
    reproducible or incomplete is not rerun; parted, its two controls are ablated apart, in
    the same batch as the others."""
    consumed = globals_consumed(full)
    streams_used = consumed is None or bool(consumed)
    warnings: list[str] = []
    if not streams_used:
        warnings.append(
            "the objective never consumed the global random, NumPy or torch streams (audited, "
            "at import and in every trial): their seeding needs no experiment"
        )
    wanted = ablations(lab.facts(streams_used))
    chosen = [a for a in wanted if a.id not in SCREENED]
    if screen.verdict == report.VERDICT_INCOMPLETE:
        warnings.append(
            f"the {screen.id} run could not finish ({unfinished(screen.runs)}): PYTHONHASHSEED "
            "and the thread count were not tested"
        )
    if screen.verdict == report.VERDICT_NOT_REPRODUCIBLE:
        chosen += [a for a in wanted if a.id in SCREENED]
    runs = lab.run_ablations(full.runs[0], chosen, study)
    done = [lab.ablation_experiment(a, runs[a.id], study, full) for a in chosen]
    warnings += _split_screen_warnings(screen, done)
    context = lab.context(study)
    causes = []
    for exp in done:
        if exp.verdict == report.VERDICT_NOT_REPRODUCIBLE:
            cause, ablation = ABLATIONS[exp.id]
            finding = Finding(
                exp, context, divergence_trial(exp), ablation=ablation, audits=full.audits
            )
            causes.append(cause.found(finding))
    return Found((screen, *done), tuple(causes), tuple(warnings))


def _split_screen_warnings(screen: Experiment, done: Sequence[Experiment]) -> list[str]:
    """The screen parted from full control, yet each of its controls off alone reproduces:
    the thread count changes the numbers deterministically (1 thread vs the machine's), or the
    two interact, or a race showed once. Never silent."""
    if screen.verdict != report.VERDICT_NOT_REPRODUCIBLE:
        return []
    split = [e for e in done if e.id in SCREENED]
    unfinished_split = [e for e in split if e.verdict == report.VERDICT_INCOMPLETE]
    if unfinished_split:
        return [
            f"the {e.id} run could not finish ({unfinished(e.runs)}): that control went "
            "untested, though with PYTHONHASHSEED and pinned threads both off, "
            f"{where_runs_part(screen)}"
            for e in unfinished_split
        ]
    if not split or any(e.verdict != report.VERDICT_REPRODUCIBLE for e in split):
        return []
    return [
        f"with PYTHONHASHSEED and pinned threads both off, {where_runs_part(screen)}, yet each "
        "off alone reproduces: the results follow the thread count (1 pinned vs the machine's), "
        "or the two interact, or a thread race showed once; pin the thread count and "
        "PYTHONHASHSEED where results must match across machines"
    ]


PROCESS_STATE = "process_state"


def _probe_study(study: StudySettings) -> StudySettings:
    """The process-state probe's study: the first ``1/PROCESS_PROBE_SHARE`` of the trials."""
    return dataclasses.replace(study, trials=max(1, math.ceil(study.trials / PROCESS_PROBE_SHARE)))


def _process_state_step(lab: Lab, study: StudySettings) -> Found:
    """The probe's process ran the study's first trials twice, one study after the other:
    the second compared with the first."""
    if len(lab.process_probe) < 2:
        return Found()
    probe = _probe_study(study)
    runs = [dataclasses.replace(run, index=i) for i, run in enumerate(lab.process_probe[:2])]
    what = (
        f"the first {probe.trials} trials twice, one study after another in one fresh "
        "process, every control on"
    )
    state = lab.experiment(PROCESS_STATE, what, Controls(), runs, probe)
    if state.verdict != report.VERDICT_NOT_REPRODUCIBLE:
        return Found(experiments=(state,))
    finding = Finding(state, lab.context(study), divergence_trial(state))
    return Found((state,), (known(CauseId.PROCESS_STATE).found(finding),))


def _diagnose_objective(lab: Lab) -> Diagnosis:
    plan, study = lab.plan, lab.plan.study
    control = _full_control(lab, study)
    lab.torch_used = any(r.environment.get("torch") for r in control.experiment.runs)
    found = Found(experiments=(control.experiment,))
    ops: tuple[str, ...] = ()
    if _determinism_refused(control.experiment):
        refused, ops, control = _without_deterministic_kernels(lab, study, control)
        found += refused
    full, screen = control.experiment, control.screen
    if full.verdict == report.VERDICT_INCOMPLETE:
        return Diagnosis(
            plan,
            lab.device,
            False,
            rank(found.causes),
            found.experiments + ((screen,) if screen is not None else ()),
            warnings=(f"full control could not finish: {unfinished(full.runs)}",),
            nondeterministic_ops=ops,
            incomplete=not found.causes,  # a named cause is a finished diagnosis
        )
    if full.verdict != report.VERDICT_REPRODUCIBLE and study.n_jobs != 1:
        raced, study, control = _parallel_trials(lab, study, full)
        found += raced
        full, screen = control.experiment, control.screen
    noise: NoiseProbe | None = None
    if full.verdict == report.VERDICT_NOT_REPRODUCIBLE:
        found += Found(experiments=(screen,) if screen is not None else ())
        noisy, noise = noise_step(lab, full, study, screen)
        found += noisy
    elif full.verdict == report.VERDICT_REPRODUCIBLE:
        assert screen is not None  # full control reproduces only with n_jobs=1: beside it
        found += _ablation_step(lab, full, screen, study)
        found += _process_state_step(lab, study)
    found += resume_experiment(lab, full, study)
    return Diagnosis(
        plan,
        lab.device,
        full.verdict == report.VERDICT_REPRODUCIBLE and plan.study.n_jobs == 1,
        rank(found.causes),
        found.experiments,
        noise,
        found.warnings,
        ops,
    )


def run_diagnose(
    plan: CheckPlan,
    replicates: int = DEFAULT_REPLICATES,
    on_progress: ProgressCallback | None = None,
    runner: JobRunner | None = None,
) -> Diagnosis:
    """Diagnose ``plan``'s objective or script; ``runner`` runs every experiment's jobs (None:
    fresh worker processes)."""
    device = devices.resolve(plan.device)
    if plan.storage is not None and resume_point(plan) is not None and script_spec(plan) is None:
        from repro_check.storage.store import open_storage

        open_storage(plan.storage)  # a storage that cannot open is bad input, before any run
    lab = Lab(plan, device, replicates, on_progress, runner)
    if script_spec(plan) is not None:
        from repro_check.checks.diagnose_script import diagnose_script

        return diagnose_script(lab)
    return _diagnose_objective(lab)
