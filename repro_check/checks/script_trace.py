"""``diagnose`` on a script whose fully controlled runs part with no source the entropy audit
knows: the trial at which they first parted (its params were the same in both: every control
was on) is run again in two fresh processes with every control on, and the objective's call
for it (or an ask/tell loop's lines from ``ask`` to ``tell``) is traced line by line in the
script's own files (``execution.linetrace``): the first line after which their locals differ
is the cause's location."""

from __future__ import annotations

import dataclasses

from repro_check.checks.causes import Finding, FixContext, known
from repro_check.checks.lab import Found, Lab, runs_of
from repro_check.execution.linetrace import Split, first_op_split, first_split
from repro_check.plan.settings import Controls
from repro_check.results.diagnosis import Experiment
from repro_check.results.studies import compare_studies
from repro_check.vocab import CauseId

_VALUE_FIELDS = ("values", "intermediate_values")


def _trace_target(lab: Lab, full: Experiment) -> tuple[int, int] | None:
    """(study index, trial number) of the first trial whose values parted the controlled runs
    (at the same params); None when they parted otherwise (params, studies, trial counts)."""
    compared = compare_studies(full.runs, lab.plan.tolerance)
    differing = compared.first_differing
    if compared.structure is not None or differing is None:
        return None
    divergence = differing.comparison.divergence
    if divergence is None or divergence.field not in _VALUE_FIELDS:
        return None
    return differing.index, divergence.trial


def _trace_split(lab: Lab, full: Experiment) -> tuple[Experiment | None, Split | None, str | None]:
    """The trial where the controlled runs parted, run again in two fresh processes with
    every control on, its objective call traced line by line in the script's files: the
    experiment (None when no trial can be traced), the first line after which their locals
    differ, and why the trace stopped early (if it did)."""
    at = _trace_target(lab, full)
    if at is None:
        return None, None, None
    jobs = lab.jobs("line_trace", Controls(), lab.plan.study, 2, trace=True, trace_at=at)
    results = lab.run(jobs, False)
    runs = runs_of(results, "line_trace")
    what = f"study {at[0]} trial {at[1]} once more, traced line by line"
    experiment = lab.experiment("line_trace", what, Controls(), runs, lab.plan.study)
    traced = [r for r in results if r.trace is not None]
    stopped = next((r.trace_truncated for r in traced if r.trace_truncated), None)
    if len(traced) < 2:
        return experiment, None, stopped
    a, b = traced[0], traced[1]
    split = first_split(a.trace or [], b.trace or [])
    op = first_op_split(a.trace_ops, b.trace_ops) if a.trace_ops and b.trace_ops else None
    if split is not None and op is not None:
        split = dataclasses.replace(split, op=op)
    return experiment, split, stopped


def traced_noise(lab: Lab, full: Experiment, context: FixContext) -> Found:
    """Noise no control fixes and no audited source explains: located by the line tracer.
    Returns the trace experiment (when one ran) and the ``objective_noise`` cause."""
    experiment, split, stopped = _trace_split(lab, full)
    trial = full.divergence.trial if full.divergence else None
    finding = Finding(full, context, trial, blocking=True, traced=split, trace_stopped=stopped)
    cause = known(CauseId.OBJECTIVE_NOISE).found(finding)
    return Found((experiment,) if experiment is not None else (), (cause,))
