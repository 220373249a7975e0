"""The output formats, one small class each behind one interface (``kinds`` tells the report
types apart).

``FORMATS`` maps a format's name to it; each says which kinds of report it can draw
(``kinds``), renders one to text (``render``) or writes it to a file (``write``). A format that
cannot draw a report refuses it with ``TypeError`` (a programming error: the CLI offers a flag
only where its format applies). Renderer modules are imported when a format is used, never
when this module is: ``repro-check --help`` pays for none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from repro_check.errors import ConfigError
from repro_check.render.kinds import Kind, Report, kind

__all__ = ["FORMATS", "Format", "Kind", "Report", "kind", "write_text"]


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
    kinds = ("run", "compare", "diagnose", "diff")

    def _view(self, kind: Kind) -> Callable[[Any], str]:
        from repro_check.render import markdown

        return markdown.VIEWS[kind]


class JunitFormat(Format):
    name = "junit"
    title = "JUnit"
    flag = "--junit"
    kinds = ("run", "compare", "diagnose", "diff")

    def _view(self, kind: Kind) -> Callable[[Any], str]:
        from repro_check.render import junit

        return junit.VIEWS[kind]


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
