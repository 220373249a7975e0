"""What ``diff`` returns: two saved run reports, every finished run of both compared as one set,
and their environments side by side. A value object only: ``checks.diff`` computes it, ``render``
draws it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from repro_check.__about__ import __version__
from repro_check.errors import EXIT_INCOMPLETE, EXIT_NOT_REPRODUCIBLE, EXIT_REPRODUCIBLE
from repro_check.json_values import encode_float, encode_params, to_json_safe
from repro_check.plan.settings import Tolerance
from repro_check.results.baseline import reference
from repro_check.results.comparison import Divergence
from repro_check.results.report import (
    SCHEMA_VERSION,
    VERDICT_AWAITING,
    VERDICT_INCOMPLETE,
    VERDICT_INTERRUPTED,
    RunReport,
)


@dataclass(frozen=True)
class EnvRow:
    """One environment key (``torch.cuda``, ``packages.numpy``) as each report has it."""

    key: str
    a: str | None
    b: str | None

    @property
    def differs(self) -> bool:
        return self.a != self.b


RESULT_SAME = "same results"
RESULT_DIFFERENT = "different results"
RESULT_INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class ReportDiff:
    """Every finished run of A and of B, compared trial by trial as one set of replicates.

    "Same results" means both reports are reproducible on their own (the command's tolerance)
    and every finished run of one agrees with every finished run of the other: comparing only
    each side's first run would call a non-reproducible report the same as itself.
    """

    path_a: str
    path_b: str
    a: RunReport
    b: RunReport
    divergence: Divergence | None
    """The first trial where any two of the compared runs differ (within A, within B or
    across); its ``runs`` are positions in ``labels``."""
    distinct_histories: int
    settings_changed: tuple[str, ...]
    environment: tuple[EnvRow, ...]
    tolerance: Tolerance = field(default_factory=Tolerance)
    labels: tuple[str, ...] = ()
    """The compared runs, in order: "A run 0", ..., "B run 0", ..."""
    study: int | None = None
    """Script reports: the study (by creation order) the divergence is in; None when the runs
    made different studies, or in objective mode."""

    @property
    def mode(self) -> str:
        """``script`` or ``objective`` (both sides have the same: ``diff_reports`` checks)."""
        return self.a.mode

    @property
    def same_results(self) -> bool:
        return self.divergence is None and self.a.reproducible and self.b.reproducible

    @property
    def result(self) -> str:
        if self.same_results:
            return RESULT_SAME
        if self.divergence is None and (_unfinished(self.a) or _unfinished(self.b)):
            return RESULT_INCOMPLETE
        return RESULT_DIFFERENT

    @property
    def exit_code(self) -> int:
        return {RESULT_SAME: EXIT_REPRODUCIBLE, RESULT_INCOMPLETE: EXIT_INCOMPLETE}.get(
            self.result, EXIT_NOT_REPRODUCIBLE
        )

    @property
    def divergence_runs(self) -> list[str]:
        if self.divergence is None:
            return []
        return [self.labels[i] for i in self.divergence.runs if 0 <= i < len(self.labels)]

    @property
    def across(self) -> bool:
        """The first divergence's leading pair (the reference and the first run that differs
        from it) are runs of both reports, not one report's own runs."""
        return len({label[0] for label in self.divergence_runs[:2]}) > 1

    @property
    def compared(self) -> str:
        """What was compared, in words."""
        tol = self.tolerance
        how = "bit for bit" if tol.exact else f"within atol={tol.atol:g}, rtol={tol.rtol:g}"
        by = "trial by trial"
        if self.mode == "script":
            by = f"every study the script made, {by}"
        return (
            f"every finished run of both reports, {by}, {how}: "
            f"A {_runs_phrase(self.a)}; B {_runs_phrase(self.b)}"
        )

    def to_dict(self) -> dict[str, Any]:
        def side(path: str, report: RunReport) -> dict[str, Any]:
            ref = reference(report.runs)
            value = ref.best_value
            return {
                "path": path,
                "verdict": report.verdict,
                "reproducible": report.reproducible,
                "runs_compared": [r.index for r in report.runs if r.finished],
                "runs_not_finished": [r.index for r in report.runs if not r.finished],
                "awaiting": report.awaiting,
                "reference_run": ref.index,
                "best_value": None if value is None else encode_float(value),
                "best_params": None if ref.best_params is None else encode_params(ref.best_params),
                "distinct_histories": report.comparison.distinct_histories,
                "divergence": Divergence.to_optional_dict(report.comparison.divergence),
                "tolerance_in_file": None
                if report.saved_tolerance is None
                else {"atol": report.saved_tolerance.atol, "rtol": report.saved_tolerance.rtol},
            }

        divergence = Divergence.to_optional_dict(self.divergence)
        if divergence is not None:
            divergence["runs"] = self.divergence_runs
            divergence["study"] = self.study
        return {
            "schema_version": SCHEMA_VERSION,
            "tool_version": __version__,
            "command": "diff",
            "mode": self.mode,
            "compared": self.compared,
            "tolerance": {"atol": self.tolerance.atol, "rtol": self.tolerance.rtol},
            "a": side(self.path_a, self.a),
            "b": side(self.path_b, self.b),
            "result": self.result,
            "same_results": self.same_results,
            "exit_code": self.exit_code,
            "divergence": divergence,
            "distinct_histories": self.distinct_histories,
            "settings_changed": list(self.settings_changed),
            "environment": [
                to_json_safe({"key": r.key, "a": r.a, "b": r.b, "differs": r.differs})
                for r in self.environment
            ],
        }


def _unfinished(report: RunReport) -> bool:
    return report.verdict in (VERDICT_INCOMPLETE, VERDICT_AWAITING, VERDICT_INTERRUPTED)


def _runs_phrase(report: RunReport) -> str:
    done = [str(r.index) for r in report.runs if r.finished]
    text = f"run{'s' if len(done) != 1 else ''} {', '.join(done)}"
    left = [f"{r.index} ({r.status})" for r in report.runs if not r.finished]
    if left:
        text += f" (not compared: {', '.join(left)})"
    if report.awaiting:
        text += f" ({report.awaiting} awaited)"
    return text
