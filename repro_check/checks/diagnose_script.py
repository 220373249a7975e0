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
from repro_check.results.report_notes import shell_notes
from repro_check.vocab import CauseId

SCRIPT_PROBES_NOTE = (
    "the noise probe (fixed params in fresh processes) and the two-studies probe need an "
    "objective: run `repro-check diagnose FILE.py:objective` for them"
)


def _experiment(
    lab: Lab,
    exp_id: str,
    description: str,
    controls: Controls,
    audit: bool = False,
    count: int | None = None,
) -> Experiment:
    # a script streams its trials once it ended: stopping at the first divergence saves
    # nothing and would leave the other replicates without their studies
    runs_wanted = count if count is not None else lab.replicates
    jobs = lab.jobs(exp_id, controls, lab.plan.study, runs_wanted, audit=audit)
    results = lab.run(jobs, False)
    runs = runs_of(results, exp_id)
    exp = lab.experiment(exp_id, description, controls, runs, lab.plan.study)
    audits = tuple(r.audit for r in results if r.audit is not None)
    return dataclasses.replace(exp, audits=audits)


def _necessary(lab: Lab, as_written: Experiment, full: Experiment) -> Found:
    """Each control off alone, then only the necessary ones: the smallest set. As for an
    objective, each ablation is new runs compared with full control's run 0 (reused, not
    rerun), except those with fresh runs (runs of their own). Every registered ablation runs,
    global RNG seeding included: the audit sees the streams around each trial, not what the
    script's own body drew from them before its study began."""
    chosen = ablations(lab.facts(global_streams_used=True))
    runs = lab.run_ablations(full.runs[0], chosen, lab.plan.study, stop_early=False)
    context = lab.context(lab.plan.study)
    experiments = []
    causes = []
    for ablation in chosen:
        exp = lab.ablation_experiment(ablation, runs[ablation.id], lab.plan.study, full)
        experiments.append(exp)
        if exp.verdict == report.VERDICT_NOT_REPRODUCIBLE:
            cause = ABLATIONS[ablation.id][0]
            finding = Finding(
                exp, context, divergence_trial(exp), ablation=ablation,
                runs_as_written=as_written.runs, audits=full.audits,
            )  # fmt: skip
            causes.append(cause.found(finding))
    needed = needed_controls(experiments)
    if needed:
        only = Controls.only(needed)
        experiments.append(_experiment(lab, "only_needed", f"only {', '.join(needed)} on", only))
        broader = needed_controls(experiments, every_control_off=True)
        if experiments[-1].verdict == report.VERDICT_NOT_REPRODUCIBLE and broader != needed:
            # a control whose own ablation reproduced, yet one that also switched it off
            # parted: the two interact; try them all before calling the set not enough
            what = f"only {', '.join(broader)} on"
            experiments.append(
                _experiment(lab, "only_needed_broader", what, Controls.only(broader))
            )
    return Found(tuple(experiments), tuple(causes))


def needed_controls(
    experiments: Sequence[Experiment], every_control_off: bool = False
) -> list[str]:
    """The controls the parted ablations show necessary, in the controls' order. An ablation
    that switches several off (``no_global_rng``: both global seedings) needs only those whose
    own ablation did not reproduce: per-trial reseeding is not needed when ``no_trial_reseed``
    reproduced, though ``no_global_rng`` parted. ``every_control_off``: every control a parted
    ablation switched off, the fallback when that smaller set is not enough."""
    verdicts = {e.id: e.verdict for e in experiments}
    parted = [
        ABLATIONS[e.id][1] for e in experiments
        if e.id in ABLATIONS and e.verdict == report.VERDICT_NOT_REPRODUCIBLE
    ]  # fmt: skip
    alone_ok = {
        ablation.off[0]
        for _cause, ablation in ABLATIONS.values()
        if len(ablation.off) == 1 and verdicts.get(ablation.id) == report.VERDICT_REPRODUCIBLE
    }
    needed: set[str] = set()
    for ablation in parted:
        kept = [name for name in ablation.off if every_control_off or name not in alone_ok]
        needed.update(kept or ablation.off)
    return [name for name in Controls.names() if name in needed]


def _smallest_set_warning(found: Found) -> tuple[str, ...]:
    """What the ablations add up to: the smallest set that reproduces, or why there is none.
    The set names the controls of the causes shown (only a fallback adds one whose own
    ablation reproduced, and then says why)."""
    tried = [e for e in found.experiments if e.id.startswith("only_needed")]
    only = next((e for e in reversed(tried) if e.verdict == report.VERDICT_REPRODUCIBLE), None)
    if tried and only is None:
        return (
            f"the controls found necessary one by one are not enough together "
            f"({where_runs_part(tried[-1])}): apply every control's fix",
        )
    if only is not None:
        enabled = only.controls.enabled()
        them = "it" if len(enabled) == 1 else "them"
        text = (
            f"the smallest set of controls that makes the script reproducible: "
            f"{', '.join(enabled)} (checked: reproducible with only {them} on)"
        )
        if only is not tried[0]:
            extra = [c for c in enabled if c not in tried[0].controls.enabled()]
            text += (
                f"; {', '.join(extra)} too, though its own ablation reproduced: with only "
                f"{', '.join(tried[0].controls.enabled())} on, {where_runs_part(tried[0])}"
            )
        return (text,)
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
    # as many runs as `run` compares (at least): "reproducible as written" is run's verdict
    as_written = _experiment(
        lab,
        "as_written",
        "the script as written, no control",
        Controls.none(),
        count=max(lab.replicates, plan.runs),
    )
    warnings = (
        SCRIPT_PROBES_NOTE,
        *storage_warnings(plan.storage, as_written.runs, plan.resume_at),
    )
    lab.torch_used = any(r.environment.get("torch") for r in as_written.runs)
    if as_written.verdict == report.VERDICT_REPRODUCIBLE:
        clean = "the script is reproducible as written: no control is needed"
        # as `run` says: a hash seed or thread count the shell fixed holds the verdict up
        shell = shell_notes(as_written.runs, Controls.none())
        found = Found((as_written,), (), (clean, *shell, *warnings[1:]))
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
