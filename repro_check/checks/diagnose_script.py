"""``diagnose`` on a script: from the script as written to the smallest set of controls that
makes it reproducible, each cause with its fix at the script's own line.

1. the script as written (no control): reproducible means there is nothing to fix;
2. every control on: if that is not reproducible either, the script has noise no control
   fixes (or runs trials in threads);
3. otherwise each control off alone (the ones whose absence breaks it are necessary), then
   only the necessary ones on, to confirm that they are enough.
When full control is not reproducible and the audit saw no source of variation, the line
tracer locates the noise in the script's own files (``script_trace``). The per-trial noise
probe at fixed params and the two-studies probe need an objective, so they do not run here
(``diagnose FILE.py:objective`` runs them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from repro_check.checks.causes import Cause, FixContext, Location
from repro_check.checks.diagnose_resume import resume_experiment
from repro_check.checks.lab import (
    CONTROL_EXPERIMENTS,
    Diagnosis,
    Experiment,
    Lab,
    ablation_specs,
    located_causes,
    parted,
    rank,
    runs_of,
    unfinished,
)
from repro_check.checks.script_trace import traced_noise
from repro_check.plan.settings import Controls
from repro_check.results import report
from repro_check.results.records import RunRecord
from repro_check.results.script_notes import SEEDABLE
from repro_check.vocab import CauseId

SCRIPT_PROBES_NOTE = (
    "the noise probe (fixed params in fresh processes) and the two-studies probe need an "
    "objective: run `repro-check diagnose FILE.py:objective` for them"
)


def _experiment(
    lab: Lab, exp_id: str, description: str, controls: Controls, audit: bool = False
) -> Experiment:
    # a script streams its trials once it ended: stopping at the first divergence saves
    # nothing and would leave the other replicates without their studies
    jobs = lab.jobs(exp_id, controls, lab.plan.study, lab.replicates, audit=audit)
    results = lab.run(jobs, False)
    runs = runs_of(results, exp_id)
    exp = lab.experiment(exp_id, description, controls, runs, lab.plan.study)
    audits = tuple(r.audit for r in results if r.audit is not None)
    return dataclasses.replace(exp, audits=audits)


def _reference(runs: Sequence[RunRecord]) -> RunRecord | None:
    return next((r for r in runs if r.studies), None)


def sampler_fix(runs: Sequence[RunRecord], seed: int) -> str | None:
    """The fix at each line where the script built a sampler without a seed."""
    ref = _reference(runs)
    if ref is None:
        return None
    lines = []
    for study in ref.studies:
        sampler = study.sampler
        if sampler.seed is not None or sampler.cls not in SEEDABLE:
            continue
        if sampler.at is None:
            where = f"{study.at}: " if study.at else ""
            lines.append(
                f"{where}create_study() has no sampler (Optuna's default {sampler.cls} is "
                f"unseeded): create_study(..., sampler=optuna.samplers.{sampler.cls}(seed={seed}))"
            )
        else:
            lines.append(
                f"{sampler.at}: {sampler.cls}() has no seed: "
                f"optuna.samplers.{sampler.cls}(seed={seed}, ...)"
            )
    return "\n".join(dict.fromkeys(lines)) or None


def sampler_location(runs: Sequence[RunRecord]) -> Location | None:
    """The first line where the script built a seedable sampler without a seed (or created a
    study with Optuna's default one)."""
    import linecache

    ref = _reference(runs)
    for study in ref.studies if ref is not None else ():
        sampler = study.sampler
        at = sampler.at or study.at
        if sampler.seed is not None or sampler.cls not in SEEDABLE or at is None:
            continue
        file, _, line = at.rpartition(":")
        if file and line.isdigit():
            return Location(file, int(line), linecache.getline(file, int(line)).strip())
    return None


def _fix(lab: Lab, cause_id: str, runs: Sequence[RunRecord]) -> str:
    if cause_id == CauseId.SAMPLER_SEED:
        found = sampler_fix(runs, lab.plan.seed)
        if found is not None:
            return found
    return lab.fix(cause_id, lab.plan.study)


def _necessary(
    lab: Lab, causes: list[Cause], as_written: Experiment, full: Experiment
) -> list[Experiment]:
    """Each control off alone, then only the necessary ones: the smallest set. As for an
    objective, each ablation is one new run compared with full control's run 0 (reused, not
    rerun), except those that change the numbers deterministically (``FRESH_PAIRS``: two
    fresh runs of their own)."""
    # every control, global RNG seeding included: the audit sees the streams around each
    # trial, not what the script's own body drew from them before its study began
    ids = ["no_sampler_seed", "no_global_rng", "no_trial_reseed", "no_hash_seed", "no_threads"]
    ids += lab.torch_ablations()
    runs = lab.against(full.runs[0], ablation_specs(ids), lab.plan.study, stop_early=False)
    experiments = []
    needed: list[str] = []
    for exp_id in ids:
        cause_id, off, what = CONTROL_EXPERIMENTS[exp_id]
        exp = lab.ablation(exp_id, runs[exp_id], lab.plan.study, full)
        experiments.append(exp)
        if exp.verdict == report.VERDICT_NOT_REPRODUCIBLE:
            needed += [name for name in off if name not in needed]
            causes.append(
                Cause(
                    cause_id,
                    f"with {what} off, {parted(exp)}",
                    _fix(lab, cause_id, as_written.runs),
                    exp.divergence.trial if exp.divergence else None,
                    location=sampler_location(as_written.runs)
                    if cause_id == CauseId.SAMPLER_SEED
                    else None,
                )
            )
    if needed:
        only = Controls.only(needed)
        experiments.append(_experiment(lab, "only_needed", f"only {', '.join(needed)} on", only))
    return experiments


SCRIPT_RESUME_NOTE = (
    "give --trials N --resume-at K to check whether a restart that resumes it changes the "
    "study (the script stopped after K trials, then run again in private copies of its "
    "storages to end at N)"
)


def storage_warnings(
    plan_storage: str | None, runs: Sequence[RunRecord], resume_at: int | None = None
) -> list[str]:
    """Why no resume experiment ran although the study uses a storage (``--storage``, or the
    script's own: its runs' notes name each storage the script opened)."""
    ref = _reference(runs)
    notes = ref.notes if ref is not None else ()
    used = [n for n in notes if n.startswith("the script's ") and " storage " in n]
    if (plan_storage is None and not used) or resume_at is not None:
        return []
    where = f" ({used[0].split(':', 1)[0]})" if used else ""
    return [f"the study uses a storage{where}; {SCRIPT_RESUME_NOTE}"]


def diagnose_script(lab: Lab) -> Diagnosis:
    """The diagnosis of ``lab.plan``'s script (see the module docstring)."""
    plan = lab.plan
    causes: list[Cause] = []
    warnings = [SCRIPT_PROBES_NOTE]
    as_written = _experiment(
        lab, "as_written", "the script as written, no control", Controls.none()
    )
    warnings += storage_warnings(plan.storage, as_written.runs, plan.resume_at)
    experiments = [as_written]
    lab.torch_used = any(r.environment.get("torch") for r in as_written.runs)
    if as_written.verdict == report.VERDICT_REPRODUCIBLE:
        warnings[0] = "the script is reproducible as written: no control is needed"
        resumed = resume_experiment(lab, as_written, plan.study, causes, warnings, Controls.none())
        experiments += [resumed] if resumed is not None else []
        return Diagnosis(
            plan, lab.device, True, rank(causes), tuple(experiments), warnings=tuple(warnings)
        )
    full = _experiment(lab, "full_control", "every control on", Controls(), audit=True)
    experiments.append(full)
    lab.torch_used = lab.torch_used or any(r.environment.get("torch") for r in full.runs)
    if full.verdict == report.VERDICT_INCOMPLETE or as_written.verdict == report.VERDICT_INCOMPLETE:
        failures = "; ".join(why for exp in experiments if (why := unfinished(exp.runs)))
        return Diagnosis(
            plan,
            lab.device,
            False,
            (),
            tuple(experiments),
            warnings=(f"the script's runs could not finish: {failures}",),
            incomplete=True,
        )
    if full.verdict == report.VERDICT_NOT_REPRODUCIBLE:
        n_jobs = max((s.n_jobs for r in full.runs for s in r.studies), default=1)
        if n_jobs != 1:
            causes.append(
                Cause(
                    CauseId.PARALLEL_TRIALS,
                    f"optimize(n_jobs={n_jobs}): trials run in threads and race; {parted(full)}",
                    "study.optimize(objective, n_trials=..., n_jobs=1)",
                    full.divergence.trial if full.divergence else 0,
                    blocking=True,
                )
            )
        elif located := located_causes(full, CauseId.OBJECTIVE_NOISE):
            causes.extend(located)
        else:
            causes.append(traced_noise(lab, full, experiments, _context(lab)))
        return Diagnosis(
            plan, lab.device, False, rank(causes), tuple(experiments), warnings=tuple(warnings)
        )
    experiments += _necessary(lab, causes, as_written, full)
    only = next((e for e in experiments if e.id == "only_needed"), None)
    if only is not None and only.verdict != report.VERDICT_REPRODUCIBLE:
        warnings.append(
            f"the controls found necessary one by one are not enough together "
            f"({parted(only)}): apply every control's fix"
        )
    elif only is not None:
        found = only.controls.enabled()
        them = "it" if len(found) == 1 else "them"
        warnings.append(
            f"the smallest set of controls that makes the script reproducible: "
            f"{', '.join(found)} (checked: reproducible with only {them} on)"
        )
    elif not causes:
        warnings.append(
            "every control on makes the script reproducible, but no single control is "
            "necessary: two or more of them cover the same source; apply every fix"
        )
    resumed = resume_experiment(lab, full, plan.study, causes, warnings)
    experiments += [resumed] if resumed is not None else []
    return Diagnosis(
        plan, lab.device, True, rank(causes), tuple(experiments), warnings=tuple(warnings)
    )


def _context(lab: Lab) -> FixContext:
    return FixContext(lab.plan.study, lab.plan.seed, lab.plan.target, lab.torch_used)
