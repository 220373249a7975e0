"""What a ``diagnose`` report says, as plain frozen sections (see ``sections``): the headline,
each cause found with its fix, the objective's noise, the ops without a deterministic kernel,
the experiments and the warnings. The console, Markdown and JUnit renderers only draw them.

Nothing here imports rich.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

from repro_check.render import fmt
from repro_check.results.report import VERDICT_NOT_REPRODUCIBLE

if TYPE_CHECKING:
    from repro_check.results.diagnosis import Diagnosis, Experiment

Tone = Literal["incomplete", "clean", "unexplained", "causes"]


@dataclass(frozen=True)
class DiagnoseHeadline:
    """``tone``: "incomplete" (the controlled runs could not finish), "clean" (no cause, and
    everything reproduced), "unexplained" (no cause, yet some runs parted) or "causes"."""

    text: str
    tone: Tone
    unexplained: str | None = None
    """No cause named, yet not everything reproduced (full control, or an experiment whose
    runs parted, such as the PYTHONHASHSEED-and-threads screen): what did not. Such a
    diagnosis is never a pass (Markdown's tick, a passing JUnit case); None otherwise."""


@dataclass(frozen=True)
class FoundCause:
    """One cause, by rank (1 first): what shows it, where it enters the code, its fix (code to
    paste: never folded)."""

    rank: int
    id: str
    evidence: str
    location: str | None
    """``train.py:12: sampler = TPESampler()``; None when the audit did not see where."""
    fix: str


@dataclass(frozen=True)
class ObjectiveNoise:
    """The objective evaluated at fixed params: the params and the spread of its values."""

    text: str


@dataclass(frozen=True)
class NondeterministicOps:
    ops: tuple[str, ...]


@dataclass(frozen=True)
class ExperimentRow:
    id: str
    description: str
    verdict: str
    first_divergence: str
    """``trial 3 (values)``, ``-`` when the runs agree; ``, stopped early`` when they were."""


@dataclass(frozen=True)
class Experiments:
    rows: tuple[ExperimentRow, ...]


@dataclass(frozen=True)
class Warnings:
    warnings: tuple[str, ...]


DiagnoseSection: TypeAlias = (
    DiagnoseHeadline | FoundCause | ObjectiveNoise | NondeterministicOps | Experiments | Warnings
)


def diagnose_headline(diagnosis: Diagnosis) -> DiagnoseHeadline:
    if diagnosis.incomplete:
        text = "INCOMPLETE: the fully controlled runs could not finish"
        return DiagnoseHeadline(text, "incomplete")
    ids = [c.id for c in diagnosis.causes]
    if not ids:
        unexplained = _unexplained(diagnosis)
        if unexplained is not None:  # never worded as a pass: some runs did part
            text = "No single cause found, yet runs parted: see the experiments"
            return DiagnoseHeadline(text, "unexplained", unexplained)
        text = "No cause found: the study reproduces even with each control off"
        return DiagnoseHeadline(text, "clean")
    control = (
        "reproducible under full control"
        if diagnosis.reproducible_under_full_control
        else "NOT reproducible even under full control"
    )
    return DiagnoseHeadline(f"{len(ids)} cause(s): {', '.join(ids)} — {control}", "causes")


def _unexplained(diagnosis: Diagnosis) -> str | None:
    """What did not reproduce in a diagnosis that names no cause (None: everything did)."""
    if not diagnosis.reproducible_under_full_control:
        return "no cause named, yet full control did not reproduce"
    parted = next((e for e in diagnosis.experiments if e.verdict == VERDICT_NOT_REPRODUCIBLE), None)
    if parted is None:
        return None
    return f"no cause named, yet {parted.id} did not reproduce ({parted.description})"


def _experiment_row(exp: Experiment) -> ExperimentRow:
    where = f"trial {exp.divergence.trial} ({exp.divergence.field})" if exp.divergence else "-"
    if exp.stopped_early:
        where += ", stopped early"
    return ExperimentRow(exp.id, exp.description, exp.verdict, where)


def diagnose_sections(diagnosis: Diagnosis) -> tuple[DiagnoseSection, ...]:
    """The diagnosis's sections, in the order every renderer shows them."""
    parts: list[DiagnoseSection] = [diagnose_headline(diagnosis)]
    for rank, cause in enumerate(diagnosis.causes, start=1):
        where = cause.location
        located = None if where is None else f"{where}: {where.source}"
        parts.append(FoundCause(rank, cause.id, cause.evidence, located, cause.fix))
    noise = diagnosis.objective_noise
    if noise is not None:
        parts.append(ObjectiveNoise(f"{dict(noise.params)} → {fmt.stats_line(noise.stats)}"))
    if diagnosis.nondeterministic_ops:
        parts.append(NondeterministicOps(tuple(diagnosis.nondeterministic_ops)))
    parts.append(Experiments(tuple(_experiment_row(exp) for exp in diagnosis.experiments)))
    if diagnosis.warnings:
        parts.append(Warnings(tuple(diagnosis.warnings)))
    return tuple(parts)
