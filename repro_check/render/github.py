"""GitHub Actions workflow annotations: each cause and note that has a file and line, as a
``::error file=PATH,line=N,title=...::message`` line, so it shows on the pull request's diff.

GitHub reads these commands from any line of a step's stdout; ``cli_display`` prints them
after the report when ``GITHUB_ACTIONS=true`` (as ruff's ``--output-format github`` does). What
is annotated: a diagnosis's causes at their locations; a script's samplers built without a
seed, its studies that race trials in threads or stop on a timeout, each at the script's line;
and where a script's runs first part, at the line that created the study that parts (the
closest line known: trial values carry no line of their own). The seed sweep of ``compare``
varies by design and is never annotated.

Escaping follows GitHub's runner (``toolkit/packages/core/src/command.ts``): in the message
``%``, ``\\r`` and ``\\n``; in a property also ``:`` and ``,``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from repro_check.plan.notebooks import notebook_of, shown_locations
from repro_check.results.compare_report import DESCRIBED, CompareReport, label
from repro_check.results.diagnosis import Diagnosis
from repro_check.results.records import RunRecord, StudyRecord
from repro_check.results.report import VERDICT_NOT_REPRODUCIBLE, RunReport
from repro_check.results.script_notes import sampler_note, unseeded
from repro_check.vocab import GATE

ACTIONS_ENV = "GITHUB_ACTIONS"
"""Set to ``true`` by GitHub Actions in every step: the annotations are printed then only."""
WORKSPACE_ENV = "GITHUB_WORKSPACE"
"""The checkout's root: annotation paths are made relative to it (GitHub matches them to the
diff by repository path)."""

Level = Literal["error", "warning", "notice"]


@dataclass(frozen=True)
class Annotation:
    """One workflow annotation: a message at a file's line."""

    level: Level
    file: str
    line: int
    title: str
    message: str


def under_actions(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process runs as a GitHub Actions step."""
    return (os.environ if environ is None else environ).get(ACTIONS_ENV) == "true"


def escape_data(text: str) -> str:
    """A command's message: ``%``, CR and LF percent-encoded (``%`` first)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A command's property value (file, title): the message's escapes, and ``:`` and ``,``,
    which would otherwise end the value."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def repository_path(file: str, workspace: str | None) -> str:
    """``file`` relative to ``workspace`` when it lies under it (a relative ``file`` is taken
    from the working folder), else as it was; always with forward slashes."""
    if workspace:
        path = Path(file)
        absolute = path if path.is_absolute() else Path.cwd() / path
        try:
            return absolute.resolve().relative_to(Path(workspace).resolve()).as_posix()
        except (OSError, ValueError):
            pass
    return Path(file).as_posix()


def format_annotation(annotation: Annotation, workspace: str | None = None) -> str:
    """The workflow command line for ``annotation``."""
    path = repository_path(annotation.file, workspace)
    properties = (
        f"file={escape_property(path)},line={annotation.line},"
        f"title={escape_property(annotation.title)}"
    )
    message = escape_data(shown_locations(annotation.message))
    return f"::{annotation.level} {properties}::{message}"


def split_at(at: str | None) -> tuple[str, int] | None:
    """``"train.py:29"`` as ("train.py", 29); None when there is no line to point at. A
    notebook cell's line is no line of the notebook's JSON: the notebook is annotated at its
    first line (the message names the cell and its line)."""
    if not at:
        return None
    file, _, line = at.rpartition(":")
    if not file or not line.isdigit() or int(line) < 1:
        return None
    notebook = notebook_of(file)
    return (file, int(line)) if notebook is None else (notebook, 1)


def _at(level: Level, at: str | None, title: str, message: str) -> list[Annotation]:
    where = split_at(at)
    return [] if where is None else [Annotation(level, where[0], where[1], title, message)]


def _reference(runs: Iterable[RunRecord]) -> RunRecord | None:
    """The run whose study records are annotated (the first finished one with studies)."""
    with_studies = [run for run in runs if run.studies]
    return next((run for run in with_studies if run.finished), None) or next(
        iter(with_studies), None
    )


def _study(study: StudyRecord, seed: int, level: Level, title: str) -> list[Annotation]:
    found: list[Annotation] = []
    note = sampler_note(study, seed)
    if note is not None and not study.sampler.seeded_by_check and unseeded(study.sampler):
        found += _at(level, study.sampler.at or study.at, f"{title}: unseeded sampler", note)
    name = repr(study.name) if study.name else "the unnamed study"
    if study.n_jobs != 1:
        message = (
            f"study {name}: optimize(n_jobs={study.n_jobs}): trials run in threads and race "
            "each other, so this study cannot be reproducible; use n_jobs=1"
        )
        found += _at(level, study.at, f"{title}: trials in threads", message)
    if study.timeout is not None and study.timeout != float("inf"):
        message = (
            f"study {name}: optimize(timeout={study.timeout:g}) makes its trial count depend "
            "on the machine's speed"
        )
        found += _at("warning", study.at, f"{title}: timeout", message)
    return found


def run_annotations(report: RunReport, title: str = "repro-check") -> list[Annotation]:
    """A run report's: its script's studies at their lines (an error when the runs are not
    reproducible, else a warning), and where the runs first part."""
    if report.studies is None:
        return []  # an objective's trials carry no line of the user's code
    level: Level = "error" if report.verdict == VERDICT_NOT_REPRODUCIBLE else "warning"
    found: list[Annotation] = []
    reference = _reference(report.runs)
    if reference is not None:
        for study in reference.studies:
            found += _study(study, reference.seed, level, title)
    first = report.studies.first_differing
    divergence = first.comparison.divergence if first is not None else None
    if first is not None and divergence is not None:
        message = (
            f"{first.label}, created here: the runs part at trial {divergence.trial} "
            f"({divergence.field}): {divergence.detail}"
        )
        found += _at(level, first.study.at, f"{title}: first divergence", message)
    return found


def compare_annotations(report: CompareReport) -> list[Annotation]:
    """Each judged condition's, titled with its label; only the gate's can be errors."""
    found: list[Annotation] = []
    for name, condition in report.conditions.items():
        if name in DESCRIBED:
            continue
        for annotation in run_annotations(condition, f"repro-check ({label(name)})"):
            if name != GATE and annotation.level == "error":
                annotation = Annotation("warning", *_fields(annotation))
            found.append(annotation)
    return found


def _fields(annotation: Annotation) -> tuple[str, int, str, str]:
    return annotation.file, annotation.line, annotation.title, annotation.message


def diagnosis_annotations(diagnosis: Diagnosis) -> list[Annotation]:
    """Every cause that has a location: its evidence and its fix, at the line it enters."""
    found = []
    for cause in diagnosis.causes:
        if cause.location is None or cause.location.line < 1:
            continue
        message = f"{cause.evidence}\nFix: {cause.fix}"
        title = f"repro-check: {cause.id}"
        found.append(Annotation("error", cause.location.file, cause.location.line, title, message))
    return found


def report_annotations(obj: object) -> list[Annotation]:
    """The annotations of any report (none for a diff or an objective's run)."""
    if isinstance(obj, Diagnosis):
        return diagnosis_annotations(obj)
    if isinstance(obj, CompareReport):
        return compare_annotations(obj)
    if isinstance(obj, RunReport):
        return run_annotations(obj)
    return []


def annotation_lines(obj: object, workspace: str | None = None) -> list[str]:
    """The workflow command lines for ``obj``, in the order found; a message already given at
    a line is not repeated (``compare``'s conditions share their script's lines: the gate's,
    found first, stands)."""
    seen: set[tuple[str, int, str]] = set()
    lines = []
    for annotation in report_annotations(obj):
        key = (annotation.file, annotation.line, annotation.message)
        if key not in seen:
            seen.add(key)
            lines.append(format_annotation(annotation, workspace))
    return lines
