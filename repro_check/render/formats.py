"""The output formats, one small class each behind one interface, and the one place that tells
the report types apart.

``FORMATS`` maps a format's name to it; each says which kinds of report it can draw
(``kinds``), renders one to text (``render``) or writes it to a file (``write``). A format that
cannot draw a report refuses it with ``TypeError`` (a programming error: the CLI offers a flag
only where its format applies). Renderer modules are imported when a format is used, never
when this module is: ``repro-check --help`` pays for none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

from repro_check.errors import ConfigError

if TYPE_CHECKING:
    from repro_check.checks.diagnose import Diagnosis
    from repro_check.results.compare_report import CompareReport
    from repro_check.results.report import RunReport
    from repro_check.results.report_diff import ReportDiff

Report: TypeAlias = "RunReport | CompareReport | Diagnosis | ReportDiff"
"""Every report object a command returns."""

Kind = Literal["run", "compare", "diagnose", "diff"]


def kind(report: object) -> Kind:
    """Which command's report ``report`` is (``run`` and ``report`` make the same kind)."""
    from repro_check.checks.diagnose import Diagnosis
    from repro_check.results.compare_report import CompareReport
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


def write_text(path: Path, text: str, flag: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot write {path}: {exc.strerror}") from None


class Format:
    """One output format. Subclasses name it, say which report kinds it draws and how."""

    name: ClassVar[str]
    title: ClassVar[str]
    """How errors name it: ``no Markdown view of Diagnosis``."""
    flag: ClassVar[str]
    kinds: ClassVar[tuple[Kind, ...]]

    def accepts(self, report: object) -> bool:
        try:
            return kind(report) in self.kinds
        except TypeError:
            return False

    def check(self, report: object) -> Kind:
        """``report``'s kind; ``TypeError`` when this format cannot draw it."""
        if not self.accepts(report):
            raise TypeError(f"no {self.title} view of {type(report).__name__}")
        return kind(report)

    def _view(self, kind: Kind) -> Callable[[Any], str]:
        raise NotImplementedError

    def render(self, report: Report) -> str:
        """``report`` in this format, as text."""
        return self._view(self.check(report))(report)

    def write(self, report: Report, path: Path) -> None:
        write_text(path, self.render(report), self.flag)


class JsonFormat(Format):
    name = "json"
    title = "JSON"
    flag = "--json"
    kinds = ("run", "compare", "diagnose", "diff")

    def _view(self, kind: Kind) -> Callable[[Any], str]:
        from repro_check.render import json_report

        return lambda report: json_report.dumps(report.to_dict())

    def write(self, report: Report, path: Path) -> None:
        from repro_check.render import json_report

        self.check(report)
        json_report.write(report.to_dict(), path)


class MarkdownFormat(Format):
    name = "markdown"
    title = "Markdown"
    flag = "--markdown"
    kinds = ("run", "compare")

    def _view(self, kind: Kind) -> Callable[[Any], str]:
        from repro_check.render import markdown

        views: dict[Kind, Callable[[Any], str]]
        views = {"run": markdown.render_run, "compare": markdown.render_compare}
        return views[kind]


class JunitFormat(Format):
    name = "junit"
    title = "JUnit"
    flag = "--junit"
    kinds = ("run", "compare")

    def _view(self, kind: Kind) -> Callable[[Any], str]:
        from repro_check.render import junit

        views: dict[Kind, Callable[[Any], str]]
        views = {"run": junit.render_run, "compare": junit.render_compare}
        return views[kind]


class PlotFormat(Format):
    """A picture (.png or .svg): written, never rendered to text."""

    name = "plot"
    title = "plot"
    flag = "--plot"
    kinds = ("run", "compare")

    def render(self, report: Report) -> str:
        raise TypeError("a plot is an image: write it to a file")

    def write(self, report: Report, path: Path) -> None:
        from repro_check.render import plot

        views: dict[Kind, Callable[[Any, Path], None]]
        views = {"run": plot.plot_run, "compare": plot.plot_compare}
        views[self.check(report)](report, path)


FORMATS: dict[str, Format] = {
    f.name: f for f in (JsonFormat(), MarkdownFormat(), JunitFormat(), PlotFormat())
}
"""Every file format, by name, in the order ``write_outputs`` writes them."""
