"""``compare``'s report: one run-shaped report per condition, and the sentence that sums them up.

A report type, so it lives with the others in ``results/`` (``checks.compare`` builds it,
``results.validate`` reads a saved one, the renderers draw it): nothing here runs a check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from repro_check.__about__ import __version__
from repro_check.errors import EXIT_INCOMPLETE, EXIT_REPRODUCIBLE
from repro_check.plan.settings import CheckPlan
from repro_check.results import report
from repro_check.results.comparison import Stats
from repro_check.vocab import GATE, Condition


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
