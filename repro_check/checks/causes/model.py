"""The shapes of the cause registry: a ``KnownCause`` (one per ``CauseId``) declares how it is
found, how its evidence is worded, its fix and where it enters the user's code; a ``Finding``
is what one experiment showed, handed to those rules to make the ``Cause`` the report lists.

Kept apart from the cause families so that each family module imports only this one (and the
registry in ``__init__`` imports the families): no cycle, and a new cause never edits the flow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repro_check.execution.linetrace import Split
from repro_check.plan.settings import Controls, StudySettings
from repro_check.results.comparison import Divergence
from repro_check.results.diagnosis import Cause, Edit, Experiment, Location, NoiseProbe
from repro_check.results.records import RunRecord
from repro_check.results.resume import ResumeCheck
from repro_check.vocab import CauseId


@dataclass(frozen=True)
class ToleranceCheck:
    """A candidate ``--atol`` tried on the study, so that advice never names a tolerance that
    would not make the check pass."""

    atol: float
    runs: int
    """How many fully controlled runs were compared under it."""
    trials: int
    """How many trials each run had (the study's length when the check passed)."""
    divergence: Divergence | None
    """Where the runs still part under ``atol``; None: they agreed on every trial."""
    steered_at: int | None = None
    """The first trial at which the runs got different params (bit for bit): from there the
    noise steers the sampler, and agreeing within ``atol`` is luck that more runs or trials
    would not repeat. None: the same params in every run."""

    reorder: tuple[float, float] | None = None
    """(noise, smallest gap between two trials' values) when the noise could swap two trials'
    order (the gap within ``REORDER_MARGIN`` times the noise) and the sampler uses the values:
    that steers the sampler, even if these runs happened to keep the same order."""
    startup: int | None = None
    """The sampler's start-up trials (suggested without looking at values), when known."""
    command: str = ""
    """The user's check as a ``repro-check run`` command, without ``--trials`` and ``--atol``
    (``tolerance_advice.run_command``): what the advice says to paste."""

    @property
    def passed(self) -> bool:
        return self.divergence is None and self.steered_at is None and self.reorder is None

    @property
    def agree_until(self) -> int:
        """How many first trials agree within the tolerance with the same params."""
        split = self.divergence.trial if self.divergence is not None else None
        return min((t for t in (self.steered_at, split) if t is not None), default=0)

    @property
    def startup_prefix(self) -> int | None:
        """The trials a check may compare when the whole study cannot pass: the sampler's
        start-up trials, which it suggests without looking at the values, so the noise cannot
        steer them in any run; only when they are fewer than the study's and these runs
        agreed on them within ``atol``. Never the trials before where these runs happened to
        fork: another run may fork sooner (that advice failed one check in three)."""
        if not self.startup or self.startup >= self.trials:
            return None
        split = self.divergence.trial if self.divergence is not None else None
        forks = [t for t in (self.steered_at, split) if t is not None]
        return self.startup if not forks or min(forks) >= self.startup else None

    @property
    def atol_text(self) -> str:
        return f"{self.atol:g}"


@dataclass(frozen=True)
class FixContext:
    """What a fix can be tailored to: the user's sampler, seed, script and libraries."""

    study: StudySettings
    seed: int
    target: str
    torch_used: bool = False
    noise: float | None = None
    """The spread the objective showed at fixed params, for a tolerance that would absorb it."""
    tolerance: ToleranceCheck | None = None
    """That tolerance, tried: a fix suggests ``--atol`` only when the check passed with it."""
    script: bool = False
    """The target is a script: its own code, not repro-check, builds the study (so a fix
    cannot name the study's trial count, and names the script's own lines instead)."""


@dataclass(frozen=True)
class StudyFacts:
    """What decides whether an ablation is worth running, known once full control ran."""

    script: bool
    torch_used: bool
    device: str
    global_streams_used: bool
    """The objective consumed the global random, NumPy or torch streams (or the audit could
    not tell; always True for a script, whose own body the audit does not see)."""


def always(_facts: StudyFacts) -> bool:
    return True


@dataclass(frozen=True)
class Ablation:
    """An experiment that switches controls off, every other control on: if its runs part,
    those controls are needed, and the cause that declares this ablation is found."""

    id: str
    """The experiment's id in the report (``no_threads``)."""
    off: tuple[str, ...]
    """The ``Controls`` fields it switches off."""
    what: str
    """What is off, in words: the evidence reads "with {what} off, runs part at ..."."""
    fresh_runs: bool = False
    """Compared between fresh runs of its own (``replicates`` of them), not with the fully
    controlled run 0: without the control a run computes other numbers than full control,
    deterministically (other kernels, another thread count), so only two such runs parting
    shows the control is needed."""
    wanted: Callable[[StudyFacts], bool] = always
    """Whether the ablation can show anything for this study (torch's only where torch ran)."""

    @property
    def controls(self) -> Controls:
        """Every control on but those this ablation switches off."""
        controls = Controls()
        for name in self.off:
            controls = controls.without(name)
        return controls


@dataclass(frozen=True)
class AuditSite:
    """A line of the user's code the entropy audit saw call a source of variation."""

    location: Location
    source: str
    """What it called (``np.random.default_rng() without a seed``, ``time.time``)."""
    kind: str
    """``random`` (differs in every process), ``clock`` or ``parallel`` (suspects)."""
    trials: tuple[int, ...]
    """The trials it was called in (empty: at import)."""


@dataclass(frozen=True)
class Finding:
    """What one experiment showed that names a cause: the material its evidence, fix and
    location rules work from. Only the fields a cause's rules read need be set."""

    experiment: Experiment
    """The experiment that showed it (its divergence is where the runs part)."""
    context: FixContext
    trial: int | None
    """Where the cause parts the runs (the report ranks by it)."""
    blocking: bool = False
    """Found with every control on: no control makes up for it."""
    ablation: Ablation | None = None
    """The ablation whose runs parted (causes found by switching a control off)."""
    runs_as_written: tuple[RunRecord, ...] = ()
    """A script's runs without controls: where it built its samplers, for their fix."""
    n_jobs: int = 1
    """The ``n_jobs`` the trials raced under (``parallel_trials``)."""
    probe: NoiseProbe | None = None
    """The objective at fixed params in fresh processes, when it varied (``objective_noise``)."""
    traced: Split | None = None
    """The first line where two traced processes part (``objective_noise``)."""
    trace_stopped: str | None = None
    """Why the line tracer stopped before it found that line."""
    site: AuditSite | None = None
    """The audited line the cause enters at (``objective_noise``)."""
    ops: tuple[str, ...] = ()
    """Torch ops without a deterministic kernel (``torch_determinism``)."""
    refused: str = ""
    """The error torch stopped the study with under deterministic algorithms."""
    resume: ResumeCheck | None = None
    """The resume comparison (the resume causes)."""
    audits: tuple[Mapping[str, Any], ...] = ()
    """The fully controlled runs' entropy audits, for a cause found by an ablation: the lines
    that drew from the global streams, or left a library's seed unset (``global_rng``)."""


def nowhere(_finding: Finding) -> Location | None:
    """The location rule of a cause that no line of the user's code can be blamed for."""
    return None


def no_edit(_finding: Finding) -> Edit | None:
    """The edit rule of a cause whose fix is not code for one of the user's lines."""
    return None


@dataclass(frozen=True)
class KnownCause:
    """One cause ``diagnose`` can name, declared once for objectives and scripts alike."""

    id: CauseId
    detected_by: str
    """The experiment that finds it, in words (the docs, the report's reader, the tests)."""
    evidence: Callable[[Finding], str]
    """What showed it, as the report says it."""
    fix: Callable[[Finding], str]
    """The fix, as code the user can paste, in their terms (their sampler, seed, lines)."""
    location: Callable[[Finding], Location | None] = nowhere
    """The line of the user's code it enters at, when one can be named."""
    edit: Callable[[Finding], Edit | None] = no_edit
    """The fix as an edit of the user's file (``causes.edits``), when it is code for one of
    their lines: the printed fix must show the same code, so that it pastes."""
    ablations: tuple[Ablation, ...] = ()
    """The ablations that detect it, for causes a control removes: the diagnosis runs each
    (in the registry's order) and names this cause when one parts."""
    edits: Callable[[Finding], tuple[Edit, ...]] | None = None
    """Instead of ``edit``, for a fix that may change several lines (each call that left
    its seed unset): every edit, the first one the cause's ``edit``."""

    def found(self, finding: Finding) -> Cause:
        """The cause as this study showed it."""
        edits = self.edits(finding) if self.edits is not None else ()
        return Cause(
            self.id,
            self.evidence(finding),
            self.fix(finding),
            finding.trial,
            blocking=finding.blocking,
            location=self.location(finding),
            edit=edits[0] if edits else self.edit(finding),
            edits=edits,
        )


def where_runs_part(experiment: Experiment) -> str:
    """Where an experiment's runs first part, for evidence: trial, field and the difference."""
    d = experiment.divergence
    if d is None:
        return "the runs differ"
    return f"runs part at trial {d.trial} ({d.field}: {d.detail})"


def ablation_evidence(finding: Finding) -> str:
    """The evidence of a cause found by an ablation: what was off, and where its runs part."""
    assert finding.ablation is not None
    return f"with {finding.ablation.what} off, {where_runs_part(finding.experiment)}"


def script_path(target: str) -> str:
    """The script to name in a shell command: the target's file, else a placeholder."""
    location = target.rpartition(":")[0] if ":" in target else target
    return location if location.endswith(".py") else "your_script.py"


def divergence_trial(experiment: Experiment, default: int | None = None) -> int | None:
    d = experiment.divergence
    return d.trial if d is not None else default


def trial_list(trials: Sequence[int]) -> str:
    shown = ", ".join(map(str, trials[:5]))
    return shown + (f" and {len(trials) - 5} more" if len(trials) > 5 else "")
