"""``-v``'s per-run detail names a run's own notes; a note every run has is already in the
report's notes, once (it used to repeat on every run, crashed ones included: issue 21)."""

from __future__ import annotations

import dataclasses
import io

from factories import run, trial
from rich.console import Console

from repro_check.plan.settings import CheckPlan, StudySettings
from repro_check.render import detail
from repro_check.results import report


def _verbose(built: report.RunReport) -> str:
    buf = io.StringIO()
    detail.render(built, Console(file=buf, width=200, no_color=True, highlight=False))
    return buf.getvalue()


def test_a_note_every_run_has_is_not_repeated_per_run() -> None:
    shared = "train.py also defines `objective`: the check runs the script, not that function"
    runs = [
        dataclasses.replace(run(0, [trial(0, 1.0)]), notes=(shared,)),
        dataclasses.replace(run(1, [trial(0, 1.0)]), notes=(shared, "run 1 only")),
        dataclasses.replace(run(2, [], status="crashed"), notes=(shared,)),
    ]
    plan = CheckPlan(target="t.py:f", study=StudySettings(trials=1), runs=3)
    built = report.build("run", plan, "cpu", runs)
    assert built.notes.count(shared) == 1
    shown = _verbose(built)
    assert shared not in shown
    assert shown.count("note: run 1 only") == 1


def test_a_lone_runs_notes_are_shown() -> None:
    runs = [dataclasses.replace(run(0, [trial(0, 1.0)]), notes=("only run",))]
    plan = CheckPlan(target="t.py:f", study=StudySettings(trials=1), runs=2)
    assert "note: only run" in _verbose(report.build("run", plan, "cpu", runs))
