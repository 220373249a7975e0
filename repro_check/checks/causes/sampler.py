"""``sampler_seed``: a sampler built without a seed, found by switching the sampler seed off;
its fix is written for the line where the script built the sampler."""

from __future__ import annotations

import linecache
from collections.abc import Sequence

from repro_check.checks.causes.model import (
    Ablation,
    Finding,
    KnownCause,
    ablation_evidence,
    where_runs_part,
)
from repro_check.results.diagnosis import Location
from repro_check.results.records import RunRecord
from repro_check.results.script_notes import SEEDABLE
from repro_check.vocab import CauseId, sampler_spec

# -- sampler_seed


def _first_with_studies(runs: Sequence[RunRecord]) -> RunRecord | None:
    return next((r for r in runs if r.studies), None)


def sampler_fix(runs: Sequence[RunRecord], seed: int) -> str | None:
    """The fix at each line where a script built a sampler without a seed."""
    ref = _first_with_studies(runs)
    if ref is None:
        return None
    lines = []
    for study in ref.studies:
        sampler = study.sampler
        if sampler.seed is not None or sampler.cls not in SEEDABLE:
            continue
        if sampler.at is None:
            where = f"{study.at}: " if study.at else ""
            lines.append(
                f"{where}create_study() has no sampler (Optuna's default {sampler.cls} is "
                f"unseeded): create_study(..., sampler=optuna.samplers.{sampler.cls}(seed={seed}))"
            )
        else:
            lines.append(
                f"{sampler.at}: {sampler.cls}() has no seed: "
                f"optuna.samplers.{sampler.cls}(seed={seed}, ...)"
            )
    return "\n".join(dict.fromkeys(lines)) or None


def sampler_location(runs: Sequence[RunRecord]) -> Location | None:
    """The first line where a script built a seedable sampler without a seed (or created a
    study with Optuna's default one)."""
    ref = _first_with_studies(runs)
    for study in ref.studies if ref is not None else ():
        sampler = study.sampler
        at = sampler.at or study.at
        if sampler.seed is not None or sampler.cls not in SEEDABLE or at is None:
            continue
        file, _, line = at.rpartition(":")
        if file and line.isdigit():
            return Location(file, int(line), linecache.getline(file, int(line)).strip())
    return None


def _sampler_seed_evidence(finding: Finding) -> str:
    if finding.ablation is not None:
        return ablation_evidence(finding)
    # every control on, yet the params differ: the sampler ignores the seed it was given
    return (
        "with every control on, the sampler still proposes different params: "
        f"{where_runs_part(finding.experiment)}"
    )


def _sampler_seed_fix(finding: Finding) -> str:
    ctx = finding.context
    at_lines = sampler_fix(finding.runs_as_written, ctx.seed) if ctx.script else None
    if at_lines is not None:
        return at_lines
    spec = sampler_spec(ctx.study.sampler)
    if spec is None:
        return (
            "# make your sampler factory honour its seed argument\n"
            f"sampler = {ctx.study.sampler.split(':')[-1]}(seed={ctx.seed})"
        )
    return f"sampler = optuna.samplers.{spec.optuna_class}(seed={ctx.seed})"


def _sampler_seed_location(finding: Finding) -> Location | None:
    return sampler_location(finding.runs_as_written) if finding.context.script else None


SAMPLER_SEED = KnownCause(
    CauseId.SAMPLER_SEED,
    "no_sampler_seed (and full control, when its runs get different params)",
    _sampler_seed_evidence,
    _sampler_seed_fix,
    _sampler_seed_location,
    ablations=(Ablation("no_sampler_seed", ("sampler_seed",), "the sampler seed"),),
)

CAUSES = (SAMPLER_SEED,)
