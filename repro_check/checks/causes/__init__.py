"""The registry of the causes ``diagnose`` can name: one ``KnownCause`` per ``vocab.CauseId``,
each declaring once, for objectives and scripts alike, the experiment that detects it, its
evidence wording, its fix and its location rule. The diagnoses (``checks.diagnose``,
``checks.diagnose_script``) run the ablations listed here and word every cause through its
entry, so a new cause is its entry in a family module, not an edit of the flow.

Families: ``sampler``, ``global_streams`` and ``controls`` (found by switching a control
off), ``noise`` (found with every control on), ``state`` (state a process or a storage keeps).
"""

from __future__ import annotations

from types import MappingProxyType

from repro_check.checks.causes import controls, global_streams, noise, sampler, state
from repro_check.checks.causes.model import (
    Ablation,
    Finding,
    FixContext,
    KnownCause,
    StudyFacts,
    ToleranceCheck,
)
from repro_check.plan.settings import Controls
from repro_check.results.diagnosis import Experiment
from repro_check.vocab import CauseId

__all__ = [
    "ABLATIONS",
    "CAUSES",
    "CAUSE_IDS",
    "Ablation",
    "Finding",
    "FixContext",
    "KnownCause",
    "StudyFacts",
    "ToleranceCheck",
    "ablations",
    "fix_for",
    "known",
]

CAUSES: tuple[KnownCause, ...] = (
    *sampler.CAUSES,
    *global_streams.CAUSES,
    *controls.CAUSES,
    *noise.CAUSES,
    *state.CAUSES,
)
"""Every cause, once. Their ablations run in this order (a script's; an objective screens
hash_seed and threads beside full control and runs them last, only if that screen parts)."""

CAUSE_IDS = tuple(CauseId)
"""Also the tie-break order when two causes part the runs at the same trial (``CauseId``'s)."""

_BY_ID = MappingProxyType({cause.id: cause for cause in CAUSES})

ABLATIONS: MappingProxyType[str, tuple[KnownCause, Ablation]] = MappingProxyType(
    {ablation.id: (cause, ablation) for cause in CAUSES for ablation in cause.ablations}
)
"""Each ablation's id (an experiment id in the report) with the cause it detects."""


def known(cause_id: str) -> KnownCause:
    """The registry entry of a cause id."""
    return _BY_ID[CauseId(cause_id)]


def ablations(facts: StudyFacts) -> list[Ablation]:
    """The ablations worth running for this study, in the registry's order."""
    return [a for cause in CAUSES for a in cause.ablations if a.wanted(facts)]


def fix_for(cause_id: str, ctx: FixContext) -> str:
    """A cause's generic fix, in the user's own terms (their sampler, their seed): what its
    entry says when no experiment told more (the ablation's wording for a control's cause)."""
    cause = known(cause_id)
    ablation = cause.ablations[0] if cause.ablations else None
    return cause.fix(_bare_finding(ctx, ablation))


def _bare_finding(ctx: FixContext, ablation: Ablation | None) -> Finding:
    nothing = Experiment("", "", Controls(), "", None, ())
    return Finding(nothing, ctx, None, ablation=ablation)
