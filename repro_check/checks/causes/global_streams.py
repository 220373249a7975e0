"""``global_rng`` and ``trial_reseed``: the global ``random``/NumPy/torch streams, found by
switching their seeding off; where the user's code (or a library it calls) draws from them."""

from __future__ import annotations

from repro_check.checks.causes.model import (
    Ablation,
    Finding,
    KnownCause,
    StudyFacts,
    ablation_evidence,
)
from repro_check.vocab import CauseId

# -- global_rng, trial_reseed


def _streams_used(facts: StudyFacts) -> bool:
    """An objective that never touches a global stream cannot depend on its seeding."""
    return facts.script or facts.global_streams_used


def _global_rng_fix(finding: Finding) -> str:
    ctx = finding.context
    modules = "random, numpy as np" + (", torch" if ctx.torch_used else "")
    calls = f"random.seed({ctx.seed}); np.random.seed({ctx.seed})"
    calls += f"; torch.manual_seed({ctx.seed})" if ctx.torch_used else ""
    return f"import {modules}\n{calls}  # before the study starts"


GLOBAL_RNG = KnownCause(
    CauseId.GLOBAL_RNG,
    "no_global_rng",
    ablation_evidence,
    _global_rng_fix,
    ablations=(
        Ablation(
            "no_global_rng",
            ("global_rng", "trial_reseed"),
            "global RNG seeding",
            wanted=_streams_used,
        ),
    ),
)


def _trial_reseed_fix(finding: Finding) -> str:
    ctx = finding.context
    torch_call = "; torch.manual_seed(seed)" if ctx.torch_used else ""
    return (
        "def objective(trial):\n"
        f"    seed = {ctx.seed} * 100_003 + trial.number  # depends on the trial only\n"
        f"    random.seed(seed); np.random.seed(seed){torch_call}\n"
        "    ..."
    )


TRIAL_RESEED = KnownCause(
    CauseId.TRIAL_RESEED,
    "no_trial_reseed",
    ablation_evidence,
    _trial_reseed_fix,
    ablations=(
        # without per-trial reseeding a run draws other numbers than full control's
        Ablation(
            "no_trial_reseed",
            ("trial_reseed",),
            "per-trial reseeding",
            fresh_runs=True,
            wanted=_streams_used,
        ),
    ),
)

CAUSES = (GLOBAL_RNG, TRIAL_RESEED)
