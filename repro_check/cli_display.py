"""What the command line shows while and after a check runs: progress bars, -q/-v, the
files written, a closed stdout pipe, Ctrl-C. Shared by every command in ``cli.py``."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from repro_check.errors import EXIT_INTERRUPTED

if TYPE_CHECKING:
    from rich.console import Console

    from repro_check.results.report import RunReport

T = TypeVar("T")


def draw(render: Callable[[], None]) -> None:
    """Print a report; if the reader closed stdout (``repro-check run ... | head``), carry on
    quietly so the exit code is still the verdict's."""
    try:
        render()
    except (BrokenPipeError, SystemExit):  # rich turns a broken pipe into SystemExit(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail


def annotate(obj: Any) -> None:
    """Under GitHub Actions, the report's causes and notes that have a file and line as
    workflow annotations on stdout, after the report (GitHub reads them from any line), so
    they show on the pull request's diff. Elsewhere nothing."""
    if os.environ.get("GITHUB_ACTIONS") != "true":  # github.under_actions, without its imports
        return
    from repro_check.render import github

    lines = github.annotation_lines(obj, os.environ.get(github.WORKSPACE_ENV))
    if lines:
        draw(lambda: typer.echo("\n".join(lines)))


def console() -> Console:
    from repro_check.render.console import make_console

    return make_console()


OutputFlags = dict[str, Any]


@dataclasses.dataclass
class Display:
    """How much the console shows (-q, -v) and what it collected while the check ran."""

    quiet: bool = False
    verbose: bool = False
    outputs: dict[tuple[str, int], str] | None = None
    """The objective's captured output per (group, job index) (``RunRecord.job``), for
    --verbose."""
    written: list[Path] = dataclasses.field(default_factory=list)

    def show(self, obj: Any, render: Callable[[Console], None]) -> None:
        """The report (or its verdict line alone), then per-run detail, then the files."""
        from repro_check.render import detail
        from repro_check.render.files import wrote_line

        if self.quiet:
            draw(lambda: typer.echo(detail.verdict_line(obj)))
            annotate(obj)
            return
        draw(lambda: render(console()))
        if self.verbose:
            draw(lambda: detail.render(obj, console(), self.outputs))
        annotate(obj)
        line = wrote_line(self.written)
        if line is not None:  # on stderr: stdout stays the report alone (`report` redraws it)
            typer.echo(line, err=True)


def output_paths(
    json_path: Path | None,
    markdown: Path | None = None,
    junit: Path | None = None,
    plot: Path | None = None,
) -> OutputFlags:
    from repro_check.render.files import check_output_paths, check_plot_path

    check_plot_path(plot)
    check_output_paths(json=json_path, markdown=markdown, junit=junit, plot=plot)
    return {
        "json_path": json_path,
        "markdown_path": markdown,
        "junit_path": junit,
        "plot_path": plot,
    }


def show_run(
    report: RunReport, outputs: OutputFlags, display: Display, step_summary: bool = False
) -> None:
    from repro_check.render import console as console_render
    from repro_check.render.files import write_outputs

    # files first: a closed stdout pipe must not lose the report
    display.written += write_outputs(report, **outputs, step_summary=step_summary)
    display.show(report, lambda console: console_render.render(report, console))


def warm_renderers() -> None:
    """Import the renderers (rich, the section model) in a thread while the workers run: the
    parent only waits on their pipes then, and the report prints as soon as the last run ends."""
    import threading

    def warm() -> None:
        with contextlib.suppress(Exception):
            import repro_check.render.console
            import repro_check.render.files  # noqa: F401

    threading.Thread(target=warm, name="repro-check-warm-renderers", daemon=True).start()


def with_progress(work: Callable[[Any], T], display: Display | None = None) -> T:
    """Run ``work(on_progress)``: progress bars when stderr is a terminal (not with --quiet),
    and with --verbose the objective's output of every run, kept for the report."""
    warm_renderers()
    bars = None
    if sys.stderr.isatty() and not (display is not None and display.quiet):
        from repro_check.render.progress import ReplicateProgress

        bars = ReplicateProgress()
    keep = display is not None and display.verbose and not display.quiet
    if keep:
        assert display is not None
        display.outputs = {}
    if bars is None and not keep:
        return work(None)

    def on_progress(event: Any) -> None:
        if bars is not None:
            bars.update(event)
        if keep and display is not None and display.outputs is not None and event.output:
            display.outputs[(event.group, event.job)] = event.output

    if bars is None:
        return work(on_progress)
    with bars:
        return work(on_progress)


def interruptible(work: Callable[[Any], T], display: Display | None = None) -> T:
    """Like ``with_progress``; Ctrl-C stops the workers and exits 130."""
    from repro_check.execution.runner import Interrupted

    try:
        return with_progress(work, display)
    except Interrupted:
        typer.echo("interrupted: stopped the workers", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
