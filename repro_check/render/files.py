"""Write one report object in every file format the user asked for (CLI outputs).

All formats render the same object, so console, JSON, Markdown, JUnit and plots agree; each
is one class in ``formats.FORMATS``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from repro_check.errors import ConfigError

if TYPE_CHECKING:
    from repro_check.render.formats import Report

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def check_plot_path(path: Path | None) -> None:
    """Refuse a bad ``--plot`` before any run starts (not after an hour of training)."""
    if path is None:
        return
    if path.suffix.lower() not in (".png", ".svg"):
        raise ConfigError(f"--plot: {path} must end in .png or .svg")
    if importlib.util.find_spec("matplotlib") is None:
        from repro_check.render.plot import MISSING_MATPLOTLIB

        raise ConfigError(MISSING_MATPLOTLIB)


def check_output_paths(**paths: Path | None) -> None:
    """Refuse an output file that cannot be written before the check runs, not after."""
    for flag, path in paths.items():
        if path is None:
            continue
        folder = path.parent if str(path.parent) else Path(".")
        if path.is_dir():
            raise ConfigError(f"--{flag}: {path} is a directory")
        if not folder.is_dir():
            raise ConfigError(f"--{flag}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise ConfigError(f"--{flag}: cannot write {path}")


def write_outputs(
    report: Report,
    *,
    json_path: Path | None = None,
    markdown_path: Path | None = None,
    junit_path: Path | None = None,
    plot_path: Path | None = None,
    step_summary: bool = False,
) -> list[Path]:
    """Write the requested files and return them, in the order written; with
    ``step_summary``, append the Markdown to ``$GITHUB_STEP_SUMMARY`` when GitHub Actions
    sets it."""
    from repro_check.render.formats import FORMATS

    paths = {"json": json_path, "markdown": markdown_path, "junit": junit_path, "plot": plot_path}
    summary_file = os.environ.get(STEP_SUMMARY_ENV) if step_summary else None
    wanted = [name for name, path in paths.items() if path is not None]
    wanted += ["markdown"] if summary_file else []
    for name in wanted:  # refuse a format that cannot draw the report before writing any file
        FORMATS[name].check(report)
    written: list[Path] = []
    for name, path in paths.items():
        if path is not None:
            FORMATS[name].write(report, path)
            written.append(path)
        if name == "markdown" and summary_file:
            _append_summary(summary_file, FORMATS["markdown"].render(report))
    return written


def _append_summary(summary_file: str, text: str) -> None:
    try:
        with open(summary_file, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    except OSError as exc:  # a CI nicety: never turn the check's verdict into exit 2
        print(
            f"warning: ${STEP_SUMMARY_ENV}: cannot append to {summary_file}: {exc.strerror}",
            file=sys.stderr,
        )


def wrote_line(paths: list[Path]) -> str | None:
    """``wrote repro.json, repro.md``: one line naming every file written, as pytest and ruff
    say where their reports went; None when nothing was written."""
    if not paths:
        return None
    return "wrote " + ", ".join(str(path) for path in paths)
