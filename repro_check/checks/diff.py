"""``diff``: two saved run reports side by side (machines, commits, package versions).

Results first (each side's own verdict, then every finished run of both compared as one set:
do they agree, where do they part), then the environments with what differs on top, packages
first: when a GPU runner disagrees with a laptop, that is where to look.

Two script reports are compared study by study (every study the script made, in order: the
runs must have made the same studies, each alike trial for trial); a script report and an
objective report are not the same check and are refused. What it returns, ``ReportDiff``, is a
report type: it lives in ``results.report_diff``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from repro_check.checks.baseline import script_divergence
from repro_check.errors import ConfigError
from repro_check.plan.settings import Tolerance, settings_mismatches
from repro_check.results.baseline import finished_reference
from repro_check.results.comparison import distinct_histories, first_divergence, histories_equal
from repro_check.results.records import RunRecord, comparable_runs
from repro_check.results.report import RunReport
from repro_check.results.report_diff import EnvRow, ReportDiff
from repro_check.results.studies import studies_difference


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str | None]:
    """``{"torch": {"cuda": "12.4"}}`` → ``{"torch.cuda": "12.4"}``; lists joined; a null
    (``"torch": null``: not imported) stays None, as a key the other side lacks is."""
    flat: dict[str, str | None] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list):
            flat[name] = ", ".join(map(str, value))
        else:
            flat[name] = None if value is None else str(value)
    return flat


def environment_rows(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[EnvRow]:
    """Every environment key; differing packages first, then other differences, then the rest.
    A key absent (or null) on both sides is no difference: ``torch`` null in A (the run never
    imported it) and ``torch.version`` in B differ by ``torch.version`` alone."""
    flat_a, flat_b = flatten(a), flatten(b)
    keys = sorted(
        k for k in flat_a.keys() | flat_b.keys() if (flat_a.get(k), flat_b.get(k)) != (None, None)
    )
    rows = [EnvRow(k, flat_a.get(k), flat_b.get(k)) for k in keys]
    return sorted(rows, key=lambda r: (not r.differs, not r.key.startswith("packages."), r.key))


def _settings_changed(a: RunReport, b: RunReport) -> list[str]:
    changed = settings_mismatches(a.plan, b.plan, before="in A", after="in B")
    if a.target != b.target:
        changed.insert(0, f"target: {a.target!r} in A, {b.target!r} in B")
    return changed


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
