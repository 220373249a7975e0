"""``compare``: the same study under three conditions, side by side.

- ``fixed_seed``: every run the same seed, the plan's controls: exactly ``run`` (for a script
  that is the script as written unless ``controls`` says otherwise; ``plan.defaults``);
- ``seed_sweep``: seeds S, S+1, ..., under the plan's controls (every control, where those
  would leave the seeds nowhere to go): the spread a paper should report;
- ``uncontrolled``: what a user gets with no help: every control off (nothing seeded, the
  shell's PYTHONHASHSEED and thread counts, no deterministic-algorithm flags).
All conditions' replicates run in one pool of workers, so the cores stay busy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from repro_check.__about__ import __version__
from repro_check.errors import EXIT_INCOMPLETE, EXIT_REPRODUCIBLE
from repro_check.execution import devices
from repro_check.execution.replicates import JobRunner, replicate_jobs, run_replicates
from repro_check.execution.runner import Job, ProgressCallback
from repro_check.plan.settings import CheckPlan, Controls
from repro_check.results import report
from repro_check.results.comparison import Stats
from repro_check.results.records import RunRecord
from repro_check.vocab import GATE, Condition

CONDITIONS: tuple[str, ...] = tuple(Condition)
"""``compare``'s conditions (``repro_check.vocab.Condition``); the gate is ``vocab.GATE``."""


def condition_controls(plan: CheckPlan, condition: str) -> Controls:
    """The controls one condition runs under. The gate's are the plan's, the ones ``run``
    applies with the same flags and config (``plan.config`` fills in ``default_controls``), so
    ``compare`` exits as ``run`` does. The seed sweep needs a control that takes the seed (a
    script as written takes none): without one it runs with every control."""
    if condition == Condition.UNCONTROLLED:
        return Controls.none()
    if condition == GATE:
        return plan.controls
    seeded = plan.controls.sampler_seed or plan.controls.global_rng or plan.controls.trial_reseed
    return plan.controls if seeded else Controls()


def condition_jobs(plan: CheckPlan, condition: str, offset: int) -> list[Job]:
    """The replicates of one condition; job indices start at ``offset`` so they stay unique."""
    controls = condition_controls(plan, condition)
    if condition == Condition.SEED_SWEEP:
        seeds = [(plan.seed + i) % 2**32 for i in range(plan.runs)]  # seeds are 32-bit
    else:
        seeds = [plan.seed] * plan.runs
    return [
        dataclasses.replace(job, index=offset + job.index, group=condition)
        for job in replicate_jobs(plan, controls=controls, seeds=seeds)
    ]


@dataclass(frozen=True)
class CompareReport:
    """One run-shaped report per condition, plus the sentence that sums them up."""

    plan: CheckPlan
    device: str
    conditions: Mapping[str, report.RunReport]
    tool_version: str = __version__

    @property
    def exit_code(self) -> int:
        """That of ``fixed_seed``; without it, 0 unless a run could not finish."""
        if GATE in self.conditions:
            return self.conditions[GATE].exit_code
        complete = all(c.complete for c in self.conditions.values())
        return EXIT_REPRODUCIBLE if complete else EXIT_INCOMPLETE

    @property
    def sentence(self) -> str:
        return summary_sentence(self.conditions)

    def to_dict(self) -> dict[str, object]:
        return {
            "schema_version": report.SCHEMA_VERSION,
            "tool_version": self.tool_version,
            "command": "compare",
            "target": self.plan.target,
            "exit_code": self.exit_code,
            "summary": self.sentence,
            "conditions": {name: c.to_dict() for name, c in self.conditions.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> CompareReport:
        raw = data["conditions"]
        assert isinstance(raw, Mapping)
        conditions = {name: report.RunReport.from_dict(c) for name, c in raw.items()}
        first = next(iter(conditions.values()))
        return cls(first.plan, first.device, conditions, str(data.get("tool_version", "?")))


def relative_spread(stats_std: float, mean: float) -> float | None:
    """std as a fraction of |mean| (None when the mean is 0 or not finite)."""
    if not math.isfinite(mean) or mean == 0 or not math.isfinite(stats_std):
        return None
    return stats_std / abs(mean)


def _g(value: float) -> str:
    return f"{value:.3g}"


def _size(stats: Stats) -> str:
    """The spread in the value's own units: "std 1 over a range of 2 (1 .. 3)"."""
    bounds = f"{_g(stats.min)} .. {_g(stats.max)}"
    return f"std {_g(stats.std)} over a range of {_g(stats.range)} ({bounds})"


def _versus(stats: Stats, reference: Stats | None) -> str:
    """``stats``' std against the uncontrolled condition's ("", or ", 50% of ...")."""
    if reference is None or not math.isfinite(reference.std) or reference.std <= 0:
        return ""
    ratio = stats.std / reference.std
    if not math.isfinite(ratio):
        return ""
    if 0.9 <= ratio <= 1.1:
        return ", about as much as without controls"
    if ratio < 1:
        return f", {ratio * 100:.2g}% of the spread without controls"
    return f", {ratio:.2g} times the spread without controls"


def _spread_phrase(condition: report.RunReport, reference: Stats | None = None) -> str:
    """A verb phrase: "moves the best value by std 0.01 over a range of 0.02 (0.5 .. 0.52)" or
    "leaves the best value unchanged". The spread is in the value's units (a relative figure
    means nothing when the mean is near 0), optionally against the uncontrolled spread."""
    stats = condition.comparison.best_value
    if stats is None:
        return "gives no best value to compare"
    if stats.std == 0:
        return "leaves the best value unchanged"
    if not math.isfinite(stats.std):
        return f"moves the best value over {_g(stats.min)} .. {_g(stats.max)}"
    return f"moves the best value by {_size(stats)}{_versus(stats, reference)}"


def summary_sentence(conditions: Mapping[str, report.RunReport]) -> str:
    """What the controls bought, in one sentence."""
    parts = []
    loose = conditions.get(Condition.UNCONTROLLED)
    loose_stats = loose.comparison.best_value if loose is not None else None
    if conditions and not any(c.any_completed for c in conditions.values()):
        return "no trial completed in any condition, so there is no spread to compare."
    fixed = conditions.get(GATE)
    if fixed is not None:
        if fixed.verdict == report.VERDICT_INCOMPLETE:
            parts.append("with fixed seeds the runs did not finish (incomplete)")
        elif fixed.reproducible:
            parts.append("fixed seeds remove all spread")
        else:
            phrase = _spread_phrase(fixed, loose_stats)
            parts.append(f"even with fixed seeds the runs differ (noise {phrase})")
    sweep = conditions.get(Condition.SEED_SWEEP)
    if sweep is not None:
        parts.append(f"seed choice alone {_spread_phrase(sweep, loose_stats)}")
    if loose is not None:
        divergence = loose.comparison.divergence
        where = f", parting at trial {divergence.trial}" if divergence else ""
        parts.append(f"without controls the study {_spread_phrase(loose)}{where}")
    return "; ".join(parts) + "."


def run_compare(
    plan: CheckPlan,
    conditions: Sequence[str] = CONDITIONS,
    on_progress: ProgressCallback | None = None,
    runner: JobRunner | None = None,
) -> CompareReport:
    """Every condition's replicates in one pool; ``runner`` runs them (None: fresh worker
    processes)."""
    device = devices.resolve(plan.device)
    jobs: list[Job] = []
    for condition in conditions:
        jobs += condition_jobs(plan, condition, offset=len(jobs))
    runs = run_replicates(plan, device, jobs, on_progress, runner=runner)
    by_condition: dict[str, list[RunRecord]] = {name: [] for name in conditions}
    for job, run in zip(jobs, runs, strict=True):
        offset = min(j.index for j in jobs if j.group == job.group)
        by_condition[job.group].append(_renumber(run, run.index - offset))
    reports = {}
    for name in conditions:
        condition_plan = _with_controls(plan, condition_controls(plan, name))
        reports[name] = report.build("compare", condition_plan, device, by_condition[name])
    return CompareReport(plan, device, reports)


def _renumber(run: RunRecord, index: int) -> RunRecord:
    return dataclasses.replace(run, index=index)


def _with_controls(plan: CheckPlan, controls: Controls) -> CheckPlan:
    return dataclasses.replace(plan, controls=controls)
