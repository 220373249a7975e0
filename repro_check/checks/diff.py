"""``diff``: two saved run reports side by side (machines, commits, package versions).

Results first (each side's own verdict, then every finished run of both compared as one set:
do they agree, where do they part), then the environments with what differs on top, packages
first: when a GPU runner disagrees with a laptop, that is where to look.

Two script reports are compared study by study (every study the script made, in order: the
runs must have made the same studies, each alike trial for trial); a script report and an
objective report are not the same check and are refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from repro_check.__about__ import __version__
from repro_check.checks.baseline import script_divergence
from repro_check.errors import (
    EXIT_INCOMPLETE,
    EXIT_NOT_REPRODUCIBLE,
    EXIT_REPRODUCIBLE,
    ConfigError,
)
from repro_check.plan.settings import Tolerance, settings_mismatches
from repro_check.results.baseline import finished_reference, reference
from repro_check.results.comparison import (
    Divergence,
    distinct_histories,
    first_divergence,
    histories_equal,
)
from repro_check.results.records import (
    RunRecord,
    comparable_runs,
    encode_float,
    encode_params,
    to_json_safe,
)
from repro_check.results.report import (
    SCHEMA_VERSION,
    VERDICT_AWAITING,
    VERDICT_INCOMPLETE,
    VERDICT_INTERRUPTED,
    RunReport,
)
from repro_check.results.studies import studies_difference


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"torch": {"cuda": "12.4"}}`` → ``{"torch.cuda": "12.4"}``; lists joined."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list):
            flat[name] = ", ".join(map(str, value))
        else:
            flat[name] = "-" if value is None else str(value)
    return flat


@dataclass(frozen=True)
class EnvRow:
    key: str
    a: str | None
    b: str | None

    @property
    def differs(self) -> bool:
        return self.a != self.b


def environment_rows(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[EnvRow]:
    """Every environment key; differing packages first, then other differences, then the rest."""
    flat_a, flat_b = flatten(a), flatten(b)
    rows = [EnvRow(k, flat_a.get(k), flat_b.get(k)) for k in sorted(flat_a.keys() | flat_b.keys())]
    return sorted(rows, key=lambda r: (not r.differs, not r.key.startswith("packages."), r.key))


def _settings_changed(a: RunReport, b: RunReport) -> list[str]:
    changed = settings_mismatches(a.plan, b.plan, before="in A", after="in B")
    if a.target != b.target:
        changed.insert(0, f"target: {a.target!r} in A, {b.target!r} in B")
    return changed


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


def diff_reports(
    path_a: str, a: RunReport, path_b: str, b: RunReport, tolerance: Tolerance | None = None
) -> ReportDiff:
    """Compare two saved run reports with ``tolerance`` (the command's; exact when None, never
    a file's). Both reports should have been loaded with the same tolerance, so that each side's
    own verdict uses it too."""
    tol = tolerance or Tolerance()
    if a.mode != b.mode:
        raise ConfigError(
            f"cannot diff {path_a} ({a.mode} mode, {a.target}) with {path_b} ({b.mode} mode, "
            f"{b.target}): a script's own studies and the check's study of an objective are "
            "different checks"
        )
    finished_reference(a.runs, f"report {path_a}")
    finished_reference(b.runs, f"report {path_b}")
    labels: list[str] = []
    runs: list[RunRecord] = []
    for name, report in (("A", a), ("B", b)):
        for run in report.runs:
            if run.finished:
                labels.append(f"{name} run {run.index}")
                runs.append(dataclasses.replace(run, index=len(runs)))
    study: int | None = None
    runs = comparable_runs(runs)  # a report saved before some fields were recorded
    if a.mode == "script":
        divergence, study = script_divergence(runs, tol, labels)
        histories = script_histories(runs, tol)
    else:
        divergence = first_divergence(runs, tol, labels)
        histories = distinct_histories(runs, tol)
    return ReportDiff(
        path_a,
        path_b,
        a,
        b,
        divergence,
        histories,
        tuple(_settings_changed(a, b)),
        tuple(environment_rows(a.environment, b.environment)),
        tol,
        tuple(labels),
        study,
    )


def _same_script_history(a: RunRecord, b: RunRecord, tol: Tolerance) -> bool:
    """The same studies (``studies_difference``: names, directions, unfinished trials), each
    alike trial for trial."""
    return studies_difference(a, b, "", "") is None and all(
        histories_equal(x.as_run(a), y.as_run(b), tol)
        for x, y in zip(a.studies, b.studies, strict=True)
    )


def script_histories(runs: Sequence[RunRecord], tol: Tolerance) -> int:
    """How many different whole-script histories (every study) the runs produced."""
    representatives: list[RunRecord] = []
    for run in runs:
        if not any(_same_script_history(rep, run, tol) for rep in representatives):
            representatives.append(run)
    return len(representatives)
