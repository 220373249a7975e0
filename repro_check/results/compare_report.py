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
from repro_check.results.records import SamplerInfo
from repro_check.vocab import GATE, Condition

LABELS: dict[str, str] = {
    Condition.FIXED_SEED: "fixed seed",
    Condition.SEED_SWEEP: "seed sweep",
    Condition.UNCONTROLLED: "as written",
}
"""How every output names ``compare``'s conditions (console, Markdown, JUnit, plot, and the
JSON's ``labels``); the JSON's keys stay ``vocab.Condition``'s values. "as written" is the
target with every control off: nothing seeded by the check, as ``python train.py`` runs it."""

DESCRIBED = frozenset({Condition.SEED_SWEEP})
"""Conditions that are described, never judged: a seed sweep is meant to vary, so it has no
verdict of its own (its runs' spread is the point) and no hint to diagnose it."""


def label(condition: str) -> str:
    """The condition's name in every output (an unknown key is shown as it is)."""
    return LABELS.get(condition, condition)


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
            "labels": {name: label(name) for name in self.conditions},
            "judged": [name for name in self.conditions if name not in DESCRIBED],
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


_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip
"""Student's t, 97.5th percentile, for 1 to 30 degrees of freedom."""


def t_quantile(df: int) -> float:
    """Student's t 97.5th percentile for ``df`` degrees of freedom (the two-sided 95% one):
    from the table up to 30, then 1.96 + 2.5/df, within 0.002 of the exact value."""
    if df < 1:
        raise ValueError("a t interval needs at least 2 values")
    return _T975[df - 1] if df <= len(_T975) else 1.96 + 2.5 / df


def mean_interval(stats: Stats) -> tuple[float, float] | None:
    """The t-based 95% confidence interval of the mean (runs taken as independent draws);
    None when it cannot be computed (fewer than 2 values, or a non-finite spread)."""
    if stats.n < 2 or not math.isfinite(stats.std) or not math.isfinite(stats.mean):
        return None
    half = t_quantile(stats.n - 1) * stats.std / math.sqrt(stats.n)
    return stats.mean - half, stats.mean + half


def interval_text(stats: Stats, digits: int = 6) -> str:
    """The runs behind a spread and the t-based 95% interval of their mean ("n=3, 95% CI of
    the mean 0.0123 .. 0.0456"), shown beside every spread: a std from 3 runs is itself very
    uncertain. "n=1" alone when there is no interval, and none for no spread at all.
    ``digits``: significant digits of the bounds."""
    interval = mean_interval(stats)
    if interval is None or stats.std == 0:
        return f"n={stats.n}"
    low, high = interval
    return f"n={stats.n}, 95% CI of the mean {low:.{digits}g} .. {high:.{digits}g}"


def _size(stats: Stats) -> str:
    """The spread in the value's own units: "std 1 over a range of 2 (1 .. 3)"."""
    bounds = f"{_g(stats.min)} .. {_g(stats.max)}"
    spread = f"std {_g(stats.std)} over a range of {_g(stats.range)}"
    return f"{spread} ({bounds}; {interval_text(stats, 3)})"


def _versus(stats: Stats, reference: Stats | None) -> str:
    """``stats``' std against the as-written condition's ("", or ", 50% of ...")."""
    if reference is None or not math.isfinite(reference.std) or reference.std <= 0:
        return ""
    ratio = stats.std / reference.std
    if not math.isfinite(ratio):
        return ""
    if 0.9 <= ratio <= 1.1:
        return ", about as much as the spread as written"
    if ratio < 1:
        return f", {ratio * 100:.2g}% of the spread as written"
    return f", {ratio:.2g} times the spread as written"


def _spread_phrase(condition: report.RunReport, reference: Stats | None = None) -> str:
    """A verb phrase: "moves the best value by std 0.01 over a range of 0.02 (0.5 .. 0.52)" or
    "leaves the best value unchanged". The spread is in the value's units (a relative figure
    means nothing when the mean is near 0), with how many runs it rests on and the mean's 95%
    interval, optionally against the as-written spread."""
    stats = condition.comparison.best_value
    if stats is None:
        return "gives no best value to compare"
    if stats.std == 0:
        return "leaves the best value unchanged"
    if not math.isfinite(stats.std):
        return f"moves the best value over {_g(stats.min)} .. {_g(stats.max)}"
    return f"moves the best value by {_size(stats)}{_versus(stats, reference)}"


def own_seeded_samplers(condition: report.RunReport) -> list[SamplerInfo]:
    """The samplers a script seeded itself in ``condition``'s runs: the check hands a seed only
    to samplers built without one, so a sweep never varies these."""
    return [
        study.sampler
        for run in condition.runs
        for study in run.studies
        if study.sampler.seed is not None and not study.sampler.seeded_by_check
    ]


def _unswept_samplers(sweep: report.RunReport) -> str:
    """``TPESampler(seed=1) at train.py:9``, each sampler the sweep did not reach, once."""
    kept = {
        f"{sampler.cls}(seed={sampler.seed})" + (f" at {sampler.at}" if sampler.at else "")
        for sampler in own_seeded_samplers(sweep)
    }
    return ", ".join(sorted(kept))


def summary_sentence(conditions: Mapping[str, report.RunReport]) -> str:
    """What the controls bought, in one sentence: each clause names its condition as
    ``LABELS`` does; the seed sweep is described, never judged."""
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
        clause = f"in the seed sweep, seed choice alone {_spread_phrase(sweep, loose_stats)}"
        kept = _unswept_samplers(sweep)
        if kept:  # the sweep never varied them: its spread says nothing of their seed
            clause += f", but it did not reach the sampler(s) the script seeds itself ({kept})"
        parts.append(clause)
    if loose is not None:
        divergence = loose.comparison.divergence
        where = f", parting at trial {divergence.trial}" if divergence else ""
        parts.append(f"as written, the study {_spread_phrase(loose)}{where}")
    return "; ".join(parts) + "."
