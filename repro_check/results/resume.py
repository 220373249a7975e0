"""The resume comparison as a value object: replicates stopped after K trials and resumed in a
fresh process (``load_study``) against each other and against straight-through replicates
(``checks.resume`` runs them; the run report carries this).

Everything here is recomputed from the trials (``compare_resumed``), also when a saved report
is read back: the ``resume`` block's derived fields are never trusted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repro_check.plan.settings import StudySettings, Tolerance
from repro_check.results.comparison import Divergence, compare_runs, first_divergence
from repro_check.results.records import RunRecord, SamplerInfo
from repro_check.results.studies import compare_studies
from repro_check.vocab import Sampler, sampler_spec

OPTUNA_ISSUE = "https://github.com/optuna/optuna/issues/3255"
RESUMES_IDENTICALLY = "TPESampler, GPSampler and QMCSampler with a seed"
"""Samplers reported (issue 13) to resume identically in Optuna 5.0.0. Measured here: TPE only
when resumed exactly after its ``n_startup_trials`` random trials (its random stream restarts
on resume too); GP and QMC not measured (no SciPy on the development machine)."""
TPE_STARTUP = 10
"""TPESampler's default ``n_startup_trials``."""
RESTARTED = "so the restart started it over: nothing of it was resumed"
"""How a script's resuming process notes each study that did not load the trials the first
process ran in it (the parent counts them: a restart that resumed nothing is no resume)."""


@dataclass(frozen=True)
class ResumeCheck:
    """Replicates resumed at trial ``at`` against each other and the straight-through ones."""

    at: int
    runs: tuple[RunRecord, ...]
    """The resumed replicates: each the study's full trial list 0..N-1 (the first process's
    K trials, then the resuming process's)."""
    straight_reproducible: bool
    resumed_reproducible: bool
    """The resumed replicates all finished and agree with each other."""
    first_difference: Divergence | None
    """The lowest trial where any replicate, straight-through or resumed, differs from the
    reference (the first finished straight-through run); ``runs`` holds the labels' indices
    (straight-through runs as they are, resumed ones after them: ``runs + k``)."""
    between: str
    """Which replicates part there: "straight-through", "resumed" or "straight-through and
    resumed"; "" when none."""
    reason: str | None
    fix: str | None

    @property
    def matches(self) -> bool:
        """The resumed replicates agree with each other and with the straight-through ones."""
        return self.first_difference is None and self.resumed_reproducible

    @property
    def started_over(self) -> list[str]:
        """A script's studies that some restart started over (kept in memory), by label."""
        labels = (n.partition(":")[0] for r in self.runs for n in r.notes if n.endswith(RESTARTED))
        return list(dict.fromkeys(labels))

    def summary(self) -> str:
        over = self.started_over
        if over:  # a script's studies kept in memory: they were not resumed at all
            return f"{self._summary()} ({', '.join(over)}: not resumed, the restart started over)"
        return self._summary()

    def _summary(self) -> str:
        straight = "agree" if self.straight_reproducible else "differ"
        resumed = "agree" if self.resumed_reproducible else "do not agree"
        text = (
            f"resumed at trial {self.at} in a fresh process: the straight-through runs "
            f"{straight}, the resumed runs {resumed} with each other"
        )
        d = self.first_difference
        if d is None:
            return text + (", and resumed = straight-through" if self.matches else "")
        return f"{text}; {self.between} runs part at trial {d.trial} ({d.field}): {d.detail}"

    def to_dict(self) -> dict[str, Any]:
        d = self.first_difference
        return {
            "at": self.at,
            "straight_reproducible": self.straight_reproducible,
            "resumed_reproducible": self.resumed_reproducible,
            "matches": self.matches,
            "first_difference": None
            if d is None
            else {"trial": d.trial, "field": d.field, "between": self.between, "detail": d.detail},
            "reason": self.reason,
            "fix": self.fix,
            "runs": [run.to_dict() for run in self.runs],
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        straight: Sequence[RunRecord],
        study: StudySettings,
        seed: int,
        tol: Tolerance,
        environment: Mapping[str, Any],
    ) -> ResumeCheck:
        """Recomputed from the saved resumed runs: only ``at`` and the runs are read."""
        script = any(r.studies for r in straight) or any("studies" in r for r in data["runs"])
        runs = tuple(RunRecord.from_dict(run, environment, script) for run in data["runs"])
        return compare_resumed(straight, runs, int(data["at"]), study, seed, tol)


def _labelled(
    straight: Sequence[RunRecord], resumed: Sequence[RunRecord]
) -> tuple[list[RunRecord], list[str]]:
    shift = len(straight)
    runs = [*straight, *(dataclasses.replace(r, index=shift + k) for k, r in enumerate(resumed))]
    names = [f"run {r.index}" for r in straight] + [f"resumed run {r.index}" for r in resumed]
    return runs, names


def _between(d: Divergence, straight: int) -> str:
    """Which kinds of replicate the divergence involves (its reference and differing runs)."""
    kinds = {"resumed" if i >= straight else "straight-through" for i in d.runs}
    return " and ".join(k for k in ("straight-through", "resumed") if k in kinds)


def compare_resumed(
    straight: Sequence[RunRecord],
    resumed: Sequence[RunRecord],
    at: int,
    study: StudySettings,
    seed: int,
    tol: Tolerance,
) -> ResumeCheck:
    """Compare the resumed replicates with each other and with the straight-through ones,
    and say why they part where they do (with the fix) when the cause is known. Script runs
    (their ``studies``) are compared study by study (``_compare_scripts``)."""
    if any(r.studies for r in (*straight, *resumed)):
        return _compare_scripts(straight, resumed, at, tol)
    straight_ok = all(r.finished for r in straight) and (
        compare_runs(straight, tol).divergence is None
    )
    resumed_ok = all(r.finished for r in resumed) and compare_runs(resumed, tol).divergence is None
    runs, names = _labelled(straight, resumed)
    d = first_divergence(runs, tol, names)
    between = "" if d is None else _between(d, len(straight))
    reason, fix = (None, None) if d is None else explain(d, at, study, seed, straight_ok)
    return ResumeCheck(at, tuple(resumed), straight_ok, resumed_ok, d, between, reason, fix)


def resumed_nothing(run: RunRecord) -> bool:
    """A script's restart loaded none of its first run's trials: each of its studies has the
    worker's note saying it started over (``RESTARTED``)."""
    started_over = sum(1 for note in run.notes if note.endswith(RESTARTED))
    return bool(run.studies) and started_over >= len(run.studies)


def _compare_scripts(
    straight: Sequence[RunRecord], resumed: Sequence[RunRecord], at: int, tol: Tolerance
) -> ResumeCheck:
    """``compare_resumed`` for a script: the same studies in the same order (names,
    directions, unfinished trials), then each study trial for trial; the first study whose
    runs part is the difference, named in its detail."""
    straight_ok = all(r.finished for r in straight) and compare_studies(straight, tol).reproducible
    resumed_ok = all(r.finished for r in resumed) and compare_studies(resumed, tol).reproducible
    runs, names = _labelled(straight, resumed)
    named = {r.index: name for r, name in zip(runs, names, strict=True)}
    both = compare_studies(runs, tol)
    d: Divergence | None = None
    sampler: SamplerInfo | None = None
    label = ""
    nothing = [r.index for r in resumed if r.finished and resumed_nothing(r)]
    if nothing and len(nothing) < sum(r.finished for r in resumed):
        detail = (
            f"resumed run {nothing[0]} loaded none of the trials its first process ran (it "
            "started over) while the other restarts resumed them"
        )
        d = Divergence(0, "studies", (), None, None, detail)
    elif both.structure is not None:
        d = Divergence(0, "studies", (), None, None, both.structure)
    for compared in both.studies:
        if d is not None:
            break
        views = list(compared.runs)
        found = first_divergence(views, tol, [named[r.index] for r in views])
        if found is not None:
            d = dataclasses.replace(found, detail=f"{compared.label}: {found.detail}")
            sampler, label = compared.study.sampler, compared.label
    between = "" if d is None else _between(d, len(straight)) or "straight-through and resumed"
    reason, fix = (None, None)
    if d is not None:
        reason, fix = _explain_script(d, at, sampler, label, straight_ok)
    return ResumeCheck(at, tuple(resumed), straight_ok, resumed_ok, d, between, reason, fix)


def _explain_script(
    d: Divergence, at: int, sampler: SamplerInfo | None, label: str, straight_ok: bool
) -> tuple[str, str]:
    """(reason, fix) for the first difference of a script resumed at trial ``at``."""
    if d.field == "studies":
        return (
            f"the restarted script's studies are not the straight-through ones: {d.detail}",
            "create or load the same studies, in the same order, when the script restarts",
        )
    if not straight_ok:
        return explain(d, at, StudySettings(), 0, straight_ok)
    if d.trial < at:
        return (
            f"{label}: the runs part before trial {at}, where nothing was resumed yet: the first "
            "process ran the same script from the same copy of its storage, so the script "
            "itself varies from run to run (the straight-through runs agreed by chance)",
            "make the script reproducible first (`repro-check diagnose`), then check the resume",
        )
    if d.field == "params" and sampler is not None:
        return _script_sampler_state(d, at, sampler, label)
    if d.field == "trial_count":
        return (
            f"{label}: the resumed script ran another number of trials than the straight-through "
            "one",
            "on restart, run only the trials left: study.optimize(..., n_trials=N - "
            "len(study.trials))",
        )
    return (
        f"{label}: same params, other {d.field} from trial {d.trial} after the resume at trial "
        f"{at}: state the script keeps in its own process (a cache, a model loaded once, a "
        "random generator it does not reseed per trial) starts afresh in the restarted script",
        "rebuild that state from the study (or from the seed and the trial number) on resume",
    )


def _script_sampler_state(
    d: Divergence, at: int, sampler: SamplerInfo, label: str
) -> tuple[str, str]:
    seed = "" if sampler.seed is None else f"seed={sampler.seed}"
    built = f"{sampler.cls}({seed})"
    where = f" at {sampler.at}" if sampler.at else " (Optuna's default)"
    reason = (
        f"{label}: the script's {built}{where} suggests other params from trial {d.trial}, "
        f"after the resume at trial {at}: its random state lives in the sampler object, not in "
        "the storage, so the sampler the restarted script builds afresh restarts its random "
        f"stream (Optuna issue #3255, {OPTUNA_ISSUE})"
    )
    base = str(sampler.seed) if sampler.seed is not None else "SEED"
    fix = (
        f"{sampler.at + ': ' if sampler.at else ''}reseed the sampler on resume from the seed and "
        f"the trials done: after loading the study, `study.sampler = optuna.samplers."
        f"{sampler.cls}(seed={base} + len(study.trials))` (a resumed study then stays "
        "deterministic and no longer replays the random stream from its start, though it still "
        "differs from a straight-through one)"
    )
    if sampler.cls == "TPESampler":
        return (
            f"{reason}; TPESampler resumes identically only when stopped exactly after its "
            f"n_startup_trials random start-up trials, not at trial {at}",
            f"stop and resume only after exactly n_startup_trials trials, or {fix}",
        )
    return reason, (
        f"{fix}; or use a sampler that this check shows resuming identically "
        f"({RESUMES_IDENTICALLY} are reported to, TPE only right after its start-up trials)"
    )


def explain(
    d: Divergence, at: int, study: StudySettings, seed: int, straight_ok: bool
) -> tuple[str, str]:
    """(reason, fix) for the first difference ``d`` of a check resumed at trial ``at``."""
    if not straight_ok:
        return (
            "the straight-through runs already differ: the study is not reproducible even "
            "without resuming, so the resume cannot be judged",
            "make the study reproducible first (`repro-check diagnose`), then check the resume",
        )
    if d.trial < at:
        return (
            f"the runs part before trial {at}, where nothing was resumed yet: the storage the "
            "resumed runs started in, not the resume, changes the study",
            "run the study in the same kind of storage throughout, or compare with --storage",
        )
    if d.field == "params":
        return _sampler_state(d, at, study, seed)
    if d.field == "trial_count":
        return (
            "the resumed study ran another number of trials than the straight-through one",
            f"resume with n_trials = {study.trials} - the trials already in the storage",
        )
    return (
        f"same params, other {d.field} from trial {d.trial} after the resume at trial {at}: "
        "state the objective keeps in its own process (a cache, a model loaded once, a random "
        "generator it does not reseed per trial) starts afresh in the resuming process",
        "rebuild that state from the study (or from the seed and the trial number) on resume",
    )


def _sampler_state(d: Divergence, at: int, study: StudySettings, seed: int) -> tuple[str, str]:
    sampler = study.sampler
    name = f"the {sampler} sampler"
    reason = (
        f"{name} suggests other params from trial {d.trial}, after the resume at trial {at}: "
        "its random state lives in the sampler object, not in the storage, so the sampler made "
        f"afresh with seed {seed} in the resuming process restarts its random stream "
        f"(Optuna issue #3255, {OPTUNA_ISSUE})"
    )
    spec = sampler_spec(sampler)
    made = f"optuna.samplers.{spec.optuna_class}" if spec is not None else sampler
    reseed = (
        "reseed the sampler on resume from the seed and the trials done: `study = "
        f"optuna.load_study(study_name=..., storage=...); study.sampler = {made}(seed={seed} + "
        "len(study.trials))` (a resumed study then stays deterministic and no longer replays "
        "the random stream from its start, though it still differs from a straight-through one)"
    )
    startup = int(study.sampler_kwargs.get("n_startup_trials", TPE_STARTUP) or 0)
    if sampler == Sampler.TPE and at != startup:
        # measured (Optuna 5.0.0): TPE's random stream restarts too; only a resume right at
        # the end of its random start-up trials comes out identical
        return (
            f"{reason}; TPESampler resumes identically only when stopped exactly after its "
            f"{startup} random start-up trials (n_startup_trials), not at trial {at}",
            f"stop and resume only after exactly n_startup_trials trials, or {reseed}",
        )
    return reason, (
        f"{reseed}; or use a sampler that this check shows resuming identically (rerun it with "
        f"--sampler; {RESUMES_IDENTICALLY} are reported to, TPE only right after its start-up "
        "trials)"
    )
