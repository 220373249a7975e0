"""``diff``: two saved run reports side by side (machines, commits, package versions).

Results first (do they agree, where do they part), then the environments with what differs on
top, packages first: when a GPU runner disagrees with a laptop, that is where to look.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repro_check import __version__
from repro_check.baseline import finished_reference, reference, settings_mismatches
from repro_check.compare import Divergence, distinct_histories, first_divergence
from repro_check.records import encode_float, encode_params, to_json_safe
from repro_check.report import SCHEMA_VERSION, RunReport, divergence_dict
from repro_check.settings import Tolerance


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


@dataclass(frozen=True)
class ReportDiff:
    path_a: str
    path_b: str
    a: RunReport
    b: RunReport
    divergence: Divergence | None
    distinct_histories: int
    settings_changed: tuple[str, ...]
    environment: tuple[EnvRow, ...]

    @property
    def same_results(self) -> bool:
        return self.divergence is None

    @property
    def exit_code(self) -> int:
        return 0 if self.same_results else 1

    def to_dict(self) -> dict[str, Any]:
        def best(report: RunReport) -> dict[str, Any]:
            ref = reference(report.runs)
            value = ref.best_value
            return {
                "best_value": None if value is None else encode_float(value),
                "best_params": None if ref.best_params is None else encode_params(ref.best_params),
                "reproducible": report.reproducible,
                "distinct_histories": report.comparison.distinct_histories,
            }

        return {
            "schema_version": SCHEMA_VERSION,
            "tool_version": __version__,
            "command": "diff",
            "a": {"path": self.path_a, **best(self.a)},
            "b": {"path": self.path_b, **best(self.b)},
            "same_results": self.same_results,
            "divergence": divergence_dict(self.divergence),
            "distinct_histories": self.distinct_histories,
            "settings_changed": list(self.settings_changed),
            "environment": [
                to_json_safe({"key": r.key, "a": r.a, "b": r.b, "differs": r.differs})
                for r in self.environment
            ],
        }


def diff_reports(
    path_a: str, a: RunReport, path_b: str, b: RunReport, tolerance: Tolerance | None = None
) -> ReportDiff:
    tol = tolerance or a.plan.tolerance
    ref_a = finished_reference(a.runs, f"report {path_a}")
    ref_b = finished_reference(b.runs, f"report {path_b}")
    divergence = first_divergence([ref_a, ref_b], tol, ["A", "B"])
    finished = [r for r in (*a.runs, *b.runs) if r.finished] or [ref_a, ref_b]
    return ReportDiff(
        path_a,
        path_b,
        a,
        b,
        divergence,
        distinct_histories(finished, tol),
        tuple(_settings_changed(a, b)),
        tuple(environment_rows(a.environment, b.environment)),
    )
