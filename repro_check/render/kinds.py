"""The one place that tells the report types apart: which command made a report, and which of
a renderer's views draws it.

Light on purpose: the report types are imported when a report is classified, never when this
module is, so the format registry (``formats``) and ``repro-check --help`` pay for none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

if TYPE_CHECKING:
    from repro_check.results.compare_report import CompareReport
    from repro_check.results.diagnosis import Diagnosis
    from repro_check.results.report import RunReport
    from repro_check.results.report_diff import ReportDiff

Report: TypeAlias = "RunReport | CompareReport | Diagnosis | ReportDiff"
"""Every report object a command returns."""

Kind = Literal["run", "compare", "diagnose", "diff"]

View = TypeVar("View")


def kind(report: object) -> Kind:
    """Which command's report ``report`` is (``run`` and ``report`` make the same kind)."""
    from repro_check.results.compare_report import CompareReport
    from repro_check.results.diagnosis import Diagnosis
    from repro_check.results.report import RunReport
    from repro_check.results.report_diff import ReportDiff

    if isinstance(report, RunReport):
        return "run"
    if isinstance(report, CompareReport):
        return "compare"
    if isinstance(report, Diagnosis):
        return "diagnose"
    if isinstance(report, ReportDiff):
        return "diff"
    raise TypeError(f"not a report: {type(report).__name__}")


def by_kind(obj: object, views: Mapping[Kind, Callable[[Any], View]], title: str) -> View:
    """``obj`` drawn by the view of its kind in ``views``, else ``TypeError`` naming the format
    (``no Markdown view of str``): how each text renderer's ``render`` picks its view."""
    try:
        view = views.get(kind(obj))
    except TypeError:
        view = None
    if view is None:
        raise TypeError(f"no {title} view of {type(obj).__name__}")
    return view(obj)
