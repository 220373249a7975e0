"""``diagnose`` on a script: from the script as written to the smallest set of controls that
makes it reproducible, each cause with its fix at the script's own line.

1. the script as written (no control): reproducible means there is nothing to fix;
2. every control on: if that is not reproducible either, the script has noise no control
   fixes (or runs trials in threads);
3. otherwise each control off alone (the registry's ablations, ``checks.causes``: the ones
   whose absence breaks it are necessary), then only the necessary ones on, to confirm that
   they are enough.
When full control is not reproducible and the audit saw no source of variation, the line
tracer locates the noise in the script's own files (``script_trace``). The per-trial noise
probe at fixed params and the two-studies probe need an objective, so they do not run here
(``diagnose FILE.py:objective`` runs them). Each step returns what it found (``lab.Found``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from repro_check.checks.causes import ABLATIONS, Finding, ablations, known
from repro_check.checks.causes.model import divergence_trial, where_runs_part
from repro_check.checks.causes.noise import audit_sites
from repro_check.checks.diagnose_resume import resume_experiment
from repro_check.checks.lab import Found, Lab, rank, runs_of, unfinished
from repro_check.checks.script_trace import traced_noise
from repro_check.plan.settings import Controls
from repro_check.results import report
from repro_check.results.diagnosis import Diagnosis, Experiment
from repro_check.results.records import RunRecord
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


def _necessary(lab: Lab, as_written: Experiment, full: Experiment) -> Found:
    """Each control off alone, then only the necessary ones: the smallest set. As for an
    objective, each ablation is one new run compared with full control's run 0 (reused, not
    rerun), except those with fresh runs (two of their own). Every registered ablation runs,
    global RNG seeding included: the audit sees the streams around each trial, not what the
    script's own body drew from them before its study began."""
    chosen = ablations(lab.facts(global_streams_used=True))
    runs = lab.run_ablations(full.runs[0], chosen, lab.plan.study, stop_early=False)
    context = lab.context(lab.plan.study)
    experiments = []
    causes = []
    needed: list[str] = []
    for ablation in chosen:
        exp = lab.ablation_experiment(ablation, runs[ablation.id], lab.plan.study, full)
        experiments.append(exp)
        if exp.verdict == report.VERDICT_NOT_REPRODUCIBLE:
            needed += [name for name in ablation.off if name not in needed]
            cause = ABLATIONS[ablation.id][0]
            finding = Finding(
                exp, context, divergence_trial(exp), ablation=ablation,
                runs_as_written=as_written.runs,
            )  # fmt: skip
            causes.append(cause.found(finding))
    if needed:
        only = Controls.only(needed)
        experiments.append(_experiment(lab, "only_needed", f"only {', '.join(needed)} on", only))
    return Found(tuple(experiments), tuple(causes))


def _smallest_set_warning(found: Found) -> tuple[str, ...]:
    """What the ablations add up to: the smallest set that reproduces, or why there is none."""
    only = next((e for e in found.experiments if e.id == "only_needed"), None)
    if only is not None and only.verdict != report.VERDICT_REPRODUCIBLE:
        return (
            f"the controls found necessary one by one are not enough together "
            f"({where_runs_part(only)}): apply every control's fix",
        )
    if only is not None:
        enabled = only.controls.enabled()
        them = "it" if len(enabled) == 1 else "them"
        return (
            f"the smallest set of controls that makes the script reproducible: "
            f"{', '.join(enabled)} (checked: reproducible with only {them} on)",
        )
    if not found.causes:
        return (
            "every control on makes the script reproducible, but no single control is "
            "necessary: two or more of them cover the same source; apply every fix",
        )
    return ()


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
    ref = next((r for r in runs if r.studies), None)
    notes = ref.notes if ref is not None else ()
    used = [n for n in notes if n.startswith("the script's ") and " storage " in n]
    if (plan_storage is None and not used) or resume_at is not None:
        return []
    where = f" ({used[0].split(':', 1)[0]})" if used else ""
    return [f"the study uses a storage{where}; {SCRIPT_RESUME_NOTE}"]


def _noise_causes(lab: Lab, full: Experiment) -> Found:
    """Full control parted: trials racing in threads, else noise at the lines the audit saw,
    else at the line the tracer finds."""
    context = lab.context(lab.plan.study)
    n_jobs = max((s.n_jobs for r in full.runs for s in r.studies), default=1)
    trial = divergence_trial(full)
    if n_jobs != 1:
        finding = Finding(full, context, divergence_trial(full, 0), blocking=True, n_jobs=n_jobs)
        return Found(causes=(known(CauseId.PARALLEL_TRIALS).found(finding),))
    if sites := audit_sites(full):
        noise = known(CauseId.OBJECTIVE_NOISE)
        base = Finding(full, context, trial, blocking=True)
        return Found(causes=tuple(noise.found(dataclasses.replace(base, site=s)) for s in sites))
    return traced_noise(lab, full, context)


def diagnose_script(lab: Lab) -> Diagnosis:
    """The diagnosis of ``lab.plan``'s script (see the module docstring)."""
    plan = lab.plan
    as_written = _experiment(
        lab, "as_written", "the script as written, no control", Controls.none()
    )
    warnings = (
        SCRIPT_PROBES_NOTE,
        *storage_warnings(plan.storage, as_written.runs, plan.resume_at),
    )
    lab.torch_used = any(r.environment.get("torch") for r in as_written.runs)
    if as_written.verdict == report.VERDICT_REPRODUCIBLE:
        clean = "the script is reproducible as written: no control is needed"
        found = Found((as_written,), (), (clean, *warnings[1:]))
        found += resume_experiment(lab, as_written, plan.study, Controls.none())
        return _diagnosis(lab, found, reproducible=True)
    full = _experiment(lab, "full_control", "every control on", Controls(), audit=True)
    found = Found((as_written, full), (), warnings)
    lab.torch_used = lab.torch_used or any(r.environment.get("torch") for r in full.runs)
    if report.VERDICT_INCOMPLETE in (full.verdict, as_written.verdict):
        failures = "; ".join(why for exp in found.experiments if (why := unfinished(exp.runs)))
        unfinished_warning = (f"the script's runs could not finish: {failures}",)
        return _diagnosis(lab, Found(found.experiments, (), unfinished_warning), False, True)
    if full.verdict == report.VERDICT_NOT_REPRODUCIBLE:
        return _diagnosis(lab, found + _noise_causes(lab, full), reproducible=False)
    ablated = _necessary(lab, as_written, full)
    found += ablated + Found(warnings=_smallest_set_warning(ablated))
    found += resume_experiment(lab, full, plan.study)
    return _diagnosis(lab, found, reproducible=True)


def _diagnosis(lab: Lab, found: Found, reproducible: bool, incomplete: bool = False) -> Diagnosis:
    return Diagnosis(
        lab.plan,
        lab.device,
        reproducible,
        rank(found.causes),
        found.experiments,
        warnings=found.warnings,
        incomplete=incomplete,
    )
