"""Script mode's comparison: the runs compared study by study.

A script may create several studies; two runs reproduce each other only when they created the
same studies in the same order (count, names, directions), every study agrees trial for
trial, and each was left with the same unfinished trials (asked and never told, or enqueued
and never run: what the script goes on to use, compared as ``trial_record.pending_key`` writes
them); ``studies_difference`` is that rule, for ``run``, ``--baseline`` and ``diff`` alike.
Each study is compared with the same pure functions as a one-study run
(``comparison.compare_runs``), on the runs seen through that study (``StudyRecord.as_run``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from repro_check.plan.settings import Tolerance
from repro_check.results.comparison import Comparison, compare_runs
from repro_check.results.records import RunRecord, StudyRecord
from repro_check.results.trial_fields import EXACT, first_differing_key, json_equal


@dataclass(frozen=True)
class StudyComparison:
    """One study (by creation order) across the runs that created it."""

    index: int
    name: str
    study: StudyRecord
    """The reference run's record of the study (its sampler, where it was built, ...)."""
    runs: tuple[RunRecord, ...]
    """Each run seen through this study alone."""
    comparison: Comparison

    @property
    def agrees(self) -> bool:
        """Every run holds this study's trials alike (threads racing aside)."""
        return self.comparison.divergence is None

    @property
    def label(self) -> str:
        return f"study {self.index} {self.name!r}" if self.name else f"study {self.index}"


@dataclass(frozen=True)
class ScriptComparison:
    """Every study of a script check, and whether the runs created the same ones."""

    studies: tuple[StudyComparison, ...]
    structure: str | None
    """Why the runs' lists of studies differ (count, names or directions), or None."""

    @property
    def reproducible(self) -> bool:
        """Same studies, each trial for trial alike, and no study running trials in threads
        (``n_jobs`` > 1 races: an agreement would be luck)."""
        return (
            self.structure is None
            and bool(self.studies)
            and all(s.agrees for s in self.studies)
            and all(s.study.n_jobs == 1 for s in self.studies)
        )

    @property
    def first_differing(self) -> StudyComparison | None:
        return next((s for s in self.studies if not s.agrees), None)


def study_difference(
    index: int, a: StudyRecord, b: StudyRecord, name_a: str, name_b: str
) -> str | None:
    """How two runs' study ``index`` differ as a whole, in one line, or None: their names or
    directions, or the unfinished trials they were left with (asked and never told, or
    enqueued and never run: what the script goes on to use). The one rule for ``run``,
    ``--baseline`` and ``diff``; their trials are compared apart, trial by trial."""
    if (a.name, a.directions) != (b.name, b.directions):
        return (
            f"study {index} is {a.name!r} ({', '.join(a.directions)}) in {name_a} "
            f"but {b.name!r} ({', '.join(b.directions)}) in {name_b}"
        )
    attrs_a, attrs_b = a.user_attrs, b.user_attrs
    found = None  # not recorded (a report saved before they were): not compared
    if attrs_a is not None and attrs_b is not None:
        found = first_differing_key(attrs_a, attrs_b, lambda _k, x, y: json_equal(x, y, EXACT))
    if found is not None:
        return (
            f"study {index} {a.name!r} holds other user attributes (study.set_user_attr) in "
            f"{name_b} than in {name_a}: {found[1]}"
        )
    if a.pending != b.pending:
        return (
            f"study {index} {a.name!r} was left with other unfinished trials (asked and "
            f"never told, or enqueued and never run) in {name_b} than in {name_a}: "
            f"{_pending_diff(a.pending, b.pending)}"
        )
    return None


def studies_difference(a: RunRecord, b: RunRecord, name_a: str, name_b: str) -> str | None:
    """How two runs' lists of studies differ (count, then each study as ``study_difference``),
    or None."""
    if len(a.studies) != len(b.studies):
        return f"{name_a} created {len(a.studies)} studies, {name_b} created {len(b.studies)}"
    for i, (x, y) in enumerate(zip(a.studies, b.studies, strict=True)):
        why = study_difference(i, x, y, name_a, name_b)
        if why is not None:
            return why
    return None


def _structure(runs: Sequence[RunRecord]) -> str | None:
    """How the runs' study lists differ, in one line, or None when they match."""
    if not runs:
        return None
    ref = runs[0]
    for run in runs[1:]:
        why = studies_difference(ref, run, f"run {ref.index}", f"run {run.index}")
        if why is not None:
            return why
    return None


def _pending_diff(a: Sequence[str], b: Sequence[str]) -> str:
    """The first unfinished trial two runs hold differently, in a few words."""
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)}"
    first = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
    return f"{_short(a[first])} vs {_short(b[first])}"


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compare_studies(runs: Sequence[RunRecord], tol: Tolerance) -> ScriptComparison:
    """Compare every run with studies, study by study, the finished ones first (the first is
    the reference). A run that did not finish (crashed, timed out, stopped by Ctrl-C or
    --fail-fast) is compared on the trials that arrived, as a one-study run is compared on
    the trials it finished; whether the runs made the same studies is judged on the finished
    runs only."""
    having = [run for run in runs if run.studies]
    counted = [run for run in having if run.finished] + [r for r in having if not r.finished]
    finished = [run for run in counted if run.finished]
    structure = _structure(finished)
    most = max((len(run.studies) for run in counted), default=0)
    studies = []
    for i in range(most):
        having = [run for run in counted if len(run.studies) > i]
        views = tuple(run.studies[i].as_run(run) for run in having)
        ref = having[0].studies[i]
        studies.append(StudyComparison(i, ref.name, ref, views, compare_runs(views, tol)))
    return ScriptComparison(tuple(studies), structure)
