"""Write one report object in every file format the user asked for (CLI outputs).

All formats render the same object, so console, JSON, Markdown, JUnit and plots agree.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from repro_check.errors import ConfigError

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


def _write(path: Path, text: str, flag: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot write {path}: {exc.strerror}") from None


def write_outputs(
    obj: Any,
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
    written: list[Path] = []
    if json_path is not None:
        from repro_check.render import json_report

        json_report.write(obj.to_dict(), json_path)
        written.append(json_path)
    summary_file = os.environ.get(STEP_SUMMARY_ENV) if step_summary else None
    if markdown_path is not None or summary_file:
        from repro_check.render import markdown

        text = markdown.render(obj)
        if markdown_path is not None:
            _write(markdown_path, text, "--markdown")
            written.append(markdown_path)
        if summary_file:
            try:
                with open(summary_file, "a", encoding="utf-8") as handle:
                    handle.write(text + "\n")
            except OSError as exc:  # a CI nicety: never turn the check's verdict into exit 2
                print(
                    f"warning: ${STEP_SUMMARY_ENV}: cannot append to {summary_file}: "
                    f"{exc.strerror}",
                    file=sys.stderr,
                )
    if junit_path is not None:
        from repro_check.render import junit

        _write(junit_path, junit.render(obj), "--junit")
        written.append(junit_path)
    if plot_path is not None:
        from repro_check.render import plot

        plot.plot(obj, plot_path)
        written.append(plot_path)
    return written


def wrote_line(paths: list[Path]) -> str | None:
    """``wrote repro.json, repro.md``: one line naming every file written, as pytest and ruff
    say where their reports went; None when nothing was written."""
    if not paths:
        return None
    return "wrote " + ", ".join(str(path) for path in paths)
