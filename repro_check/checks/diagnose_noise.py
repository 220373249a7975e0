"""``diagnose`` on an objective whose fully controlled runs part: noise no control fixes. The
objective is evaluated at the parted trial's params in fresh processes (the noise probe), the
tolerance a fix would suggest is tried on the study (never advice that would not pass), and the
noise is located: at the line the entropy audit saw, else at the first line where two traced
processes part. Every step returns what it found; nothing is appended to a caller's list."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

from repro_check.checks.causes import Finding, ToleranceCheck, known
from repro_check.checks.causes.noise import audit_sites
from repro_check.checks.causes.tolerance_advice import run_command
from repro_check.checks.lab import Found, Lab, runs_of
from repro_check.execution.linetrace import Split, first_op_split, first_split
from repro_check.plan.settings import Controls, StudySettings, Tolerance
from repro_check.results import report
from repro_check.results.comparison import first_divergence
from repro_check.results.diagnosis import Experiment, NoiseProbe
from repro_check.results.records import RunRecord
from repro_check.results.trial_fields import field_equal
from repro_check.vocab import CauseId, sampler_spec

PROBE_PROCESSES = 3
PROBE_EVALUATIONS = 3
VALUE_FIELDS = ("values", "intermediate_values")
ATOL_MARGIN = 10
"""The tolerance suggested: this many times the noise measured (the spread of the probe's 9
values), rounded up to one significant digit. Nine Gaussian draws spread about 3 standard
deviations, below 1 one time in 800: the tolerance is then at least 10 of them, which two
runs' values differ by (7 standard deviations of a difference) about one time in 10^12."""
REORDER_MARGIN = 2
"""Two trials whose values lie within this many times the noise may swap order in another
run. The probe's spread is about 3 standard deviations, so twice it is a 4.2-sigma move of
the difference of two draws: about one swap in 10^5 pairs, where once the spread (2.1 sigma)
swaps one pair in 60, too often for advice to hold over 20 fresh checks."""


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


def _trace_split(
    lab: Lab, study: StudySettings, probe: NoiseProbe
) -> tuple[Experiment, Split | None, str | None]:
    """Evaluate the noisy params once more in two fresh processes, each traced line by line
    in the user's files: the experiment, the first line after which their locals differ, and
    why the trace stopped early, if it met a bound."""
    one = dataclasses.replace(study, trials=1, n_jobs=1)
    jobs = lab.jobs("line_trace", Controls(), one, 2, fixed_params=dict(probe.params), trace=True)
    results = lab.run(jobs, stop_early=False)
    traces = [r.trace for r in results if r.trace is not None]
    ops = [r.trace_ops for r in results if r.trace is not None]
    stopped = next((r.trace_truncated for r in results if r.trace_truncated), None)
    runs = runs_of(results, "line_trace")
    what = "the noisy params once, traced line by line"
    experiment = lab.experiment("line_trace", what, Controls(), runs, one)
    if len(traces) < 2:
        return experiment, None, stopped
    split = first_split(traces[0], traces[1])
    op = first_op_split(ops[0], ops[1]) if ops[0] and ops[1] else None
    if split is not None and op is not None:
        split = dataclasses.replace(split, op=op)
    return experiment, split, stopped


def candidate_atol(noise: float) -> float:
    """A round tolerance at least ``ATOL_MARGIN`` times the measured noise (one significant
    digit, rounded up: 10 x 0.149 is 2, never 1)."""
    raw = ATOL_MARGIN * noise
    digit = 10 ** math.floor(math.log10(raw))
    return float(f"{math.ceil(round(raw / digit, 9)) * digit:.1g}")


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
    command = run_command(lab.plan, study)
    startup = _startup_trials(study)
    recorded = first_divergence(full.runs, tol)
    if recorded is not None:
        trials = max((len(r.trials) for r in full.runs), default=0)
        steered = params_split(full.runs)
        check = ToleranceCheck(
            atol, len(full.runs), trials, recorded, steered, startup=startup, command=command
        )
        return check, None
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
    return (
        ToleranceCheck(atol, len(runs), trials, divergence, steered, reorder, startup, command),
        experiment,
    )


def _startup_trials(study: StudySettings) -> int | None:
    """The sampler's start-up trials: its configured ``n_startup_trials``, else Optuna's
    default for it (TPE's 10, even in a shorter study: then every trial is one)."""
    configured = study.sampler_kwargs.get("n_startup_trials")
    if isinstance(configured, int) and not isinstance(configured, bool) and configured > 0:
        return configured
    spec = sampler_spec(study.sampler)
    return spec.startup_trials if spec else None


def _reorder_risk(
    runs: Sequence[RunRecord], noise: float, study: StudySettings
) -> tuple[float, float] | None:
    """(noise, smallest gap) when noise of this size could swap two trials' order in another
    run (the gap within ``REORDER_MARGIN`` times it) and the sampler looks at the values: it
    would then suggest other params. A study no longer than the sampler's start-up trials
    never looks at them."""
    spec = sampler_spec(study.sampler)
    if spec is not None and spec.value_free:
        return None
    startup = _startup_trials(study)
    if startup is not None and study.trials <= startup:
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
    return (noise, smallest) if smallest <= REORDER_MARGIN * noise else None


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


def _measured_noise(full: Experiment, probe: NoiseProbe | None) -> float | None:
    """The noise to size a tolerance by: the probe's spread at fixed params, else the size of
    the split in the values (the objective did not vary at fixed params)."""
    if probe is not None and probe.noisy:
        return probe.max_abs_diff
    split = full.divergence
    if split is not None and split.field in VALUE_FIELDS:
        return split.max_abs_diff
    return None


def noise_step(
    lab: Lab, full: Experiment, study: StudySettings, screened: Experiment | None
) -> tuple[Found, NoiseProbe | None]:
    """Full control parted: what the noise is and where it enters (see the module). Returns
    what was found and the noise probe. ``screened``: the hash-seed/threads ablation that ran
    beside full control (it parted too), or None."""
    probe = _probe_noise(lab, full, study)
    noise = probe.max_abs_diff if probe is not None and probe.noisy else None
    check, tried = _tolerance_check(lab, full, study, _measured_noise(full, probe))
    found = Found(experiments=(tried,) if tried is not None else ())
    context = lab.context(study, noise, check)
    base = Finding(full, context, full.divergence.trial if full.divergence else None, True)
    params_parted = full.divergence is not None and full.divergence.field == "params"
    sites = audit_sites(full)
    noise_cause = known(CauseId.OBJECTIVE_NOISE)
    if sites and not params_parted:  # the audit saw where: one cause per line
        causes = tuple(noise_cause.found(dataclasses.replace(base, site=s)) for s in sites)
    elif probe is not None and probe.noisy:
        trace, traced, stopped = _trace_split(lab, study, probe)
        found += Found(experiments=(trace,))
        finding = dataclasses.replace(base, probe=probe, traced=traced, trace_stopped=stopped)
        causes = (noise_cause.found(finding),)
    elif params_parted:  # the same controls, other params: the sampler ignores its seed
        causes = (known(CauseId.SAMPLER_SEED).found(base),)
    else:
        causes = (noise_cause.found(base),)
    beside = "; nor does the PYTHONHASHSEED run beside it" if screened is not None else ""
    warning = (
        "full control is not reproducible, so the controls were not tested one by "
        f"one (noise would hide their effect{beside})"
    )
    return found + Found(causes=causes, warnings=(warning,)), probe
