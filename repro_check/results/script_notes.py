"""The notes of a script-mode report: what the check saw the script do to its studies (samplers
built without a seed, capped loops, timeouts, threads), each at the script's own line."""

from __future__ import annotations

from collections.abc import Sequence

from repro_check.results.records import RunRecord, SamplerInfo, StudyRecord
from repro_check.results.studies import ScriptComparison

WRITTEN_PREFIX = "the script wrote in its working folder: "
"""How a run's note names the files its script wrote (the worker writes it, the parent reads
it back). Here, not in ``execution.script``, so that the parent's start-up does not import the
script runner for a constant."""

SEEDABLE = frozenset(
    {
        "TPESampler",
        "RandomSampler",
        "CmaEsSampler",
        "GPSampler",
        "QMCSampler",
        "NSGAIISampler",
        "NSGAIIISampler",
        "BruteForceSampler",
    }
)
"""Optuna's samplers that draw random numbers from their ``seed`` (brute force its order;
a grid without one shuffles its points with seed 0)."""


def seed_keyword(sampler: SamplerInfo) -> str | None:
    """The keyword that seeds ``sampler`` where the script built it (``seed``, or the
    ``optuna_seed`` of the library call that built it); None: nothing the script can set."""
    if sampler.seed_param is not None or sampler.via is not None:
        return sampler.seed_param
    return "seed" if sampler.cls in SEEDABLE else None


def unseeded(sampler: SamplerInfo) -> bool:
    """Built without a seed it could have taken: every run samples differently (as written;
    under ``sampler_seed`` the check seeded it, ``seeded_by_check``)."""
    if sampler.seed is not None:
        return False
    # a library's sampler it gives no seed parameter for: still unseeded, if Optuna's is
    return seed_keyword(sampler) is not None or sampler.cls in SEEDABLE


def _where(at: str | None) -> str:
    return f"{at}: " if at else ""


def _built(sampler: SamplerInfo) -> str:
    """``train.py:30 builds TPESampler() without seed``, or for a sampler a library call
    built, ``train.py:30 builds LightGBMTunerCV() without optuna_seed (its TPESampler)``."""
    where = f"{sampler.at} " if sampler.at else ""
    if sampler.via is None:
        return f"{where}builds {sampler.cls}() without seed"
    if sampler.seed_param is None:
        return f"{where}{sampler.via}() builds {sampler.cls}() without seed"
    verb = "builds" if sampler.via[:1].isupper() else "calls"  # a class, or a function
    return f"{where}{verb} {sampler.via}() without {sampler.seed_param} (its {sampler.cls})"


def sampler_note(study: StudyRecord, seed: int) -> str | None:
    """The control the check added to this study's sampler, or the missing seed as written."""
    sampler = study.sampler
    default = sampler.at is None
    if sampler.seeded_by_check:
        if default:
            return (
                f"{_where(study.at)}create_study() without a sampler: Optuna's default "
                f"{sampler.cls} seeded with {seed} (--controls sampler_seed)"
            )
        return f"{_built(sampler)}: seeded with {seed}"
    if not unseeded(sampler):
        return None
    keyword = seed_keyword(sampler)
    if default:
        return (
            f"{_where(study.at)}create_study() without a sampler: Optuna's default "
            f"{sampler.cls} has no seed, so every run samples differently; pass "
            f"sampler=optuna.samplers.{sampler.cls}(seed=0)"
        )
    advice = f"pass {keyword}=0" if keyword else f"{sampler.via}() takes no seed parameter"
    return f"{_built(sampler)}: every run samples differently; {advice}"


def study_notes(study: StudyRecord, seed: int, cap: int | None) -> list[str]:
    label = f"study {study.name!r}" if study.name else "the unnamed study"
    notes = []
    sampler = sampler_note(study, seed)
    if sampler is not None:
        notes.append(sampler)
    if study.capped and cap is not None:
        asked = f" (the script asked for {study.n_trials})" if study.n_trials else ""
        notes.append(f"--trials {cap} capped {label} at {cap} trials{asked}")
    if study.timeout is not None and study.timeout != float("inf"):
        notes.append(
            f"{label}: optimize(timeout={study.timeout:g}) makes its trial count depend on "
            "the machine's speed: runs may differ only in how many trials they ran"
        )
    if study.n_jobs != 1:
        notes.append(
            f"{label}: optimize(n_jobs={study.n_jobs}): trials run in threads and race each "
            "other, so this study cannot be reproducible; use n_jobs=1"
        )
    if study.loaded:
        notes.append(
            f"{label} already held trials when the script opened it: every run resumed its "
            "own private copy of the storage as it was when the check started"
        )
    return notes


def _reference(runs: Sequence[RunRecord]) -> RunRecord | None:
    return next((r for r in runs if r.finished and r.studies), None) or next(
        (r for r in runs if r.studies), None
    )


def script_notes(
    studies: ScriptComparison, runs: Sequence[RunRecord], cap: int | None
) -> list[str]:
    """Notes in study order; the structural difference first (it decides the verdict)."""
    notes: list[str] = []
    if studies.structure is not None:
        notes.append(f"the runs created different studies: {studies.structure}")
    ref = _reference(runs)
    if ref is not None:
        for study in ref.studies:
            notes.extend(study_notes(study, ref.seed, cap))
    for compared in studies.studies[1:]:  # the first study's divergence is the report's own
        divergence = compared.comparison.divergence
        if divergence is not None:
            notes.append(
                f"{compared.label}: the runs part at trial {divergence.trial} "
                f"({divergence.field}): {divergence.detail}"
            )
    return notes
