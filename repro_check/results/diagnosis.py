"""What ``diagnose`` returns: the ranked causes it found, each with its evidence, fix and
location, and the experiments behind them. Report types live in ``results/`` (as ``RunReport``
does), so the renderers and saved outputs never import the checks that build them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repro_check.__about__ import __version__
from repro_check.errors import EXIT_INCOMPLETE, EXIT_REPRODUCIBLE
from repro_check.json_values import encode_float, encode_params
from repro_check.plan.settings import CheckPlan, Controls
from repro_check.results import report
from repro_check.results.comparison import Divergence, Stats
from repro_check.results.records import STATUS_CANCELLED, RunRecord
from repro_check.results.resume import ResumeCheck
from repro_check.results.trial_fields import diff_magnitude


@dataclass(frozen=True)
class Location:
    """The line of the user's code a cause enters at."""

    file: str
    line: int
    source: str
    """The line's text."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "source": self.source}


@dataclass(frozen=True)
class Edit:
    """A code fix as an edit of the user's file: ``code`` replaces lines ``line`` to
    ``end_line`` (a whole statement), or goes before ``line`` when ``insert``. The printed fix
    shows the same code; this form lets a tool (and the test suite) apply it. ``code`` is
    dedented: it takes the indentation of the line it replaces or goes before."""

    file: str
    line: int
    end_line: int
    code: str
    insert: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "end_line": self.end_line,
            "code": self.code,
            "insert": self.insert,
        }


@dataclass(frozen=True)
class Cause:
    """One reason the study is not reproducible, as found in this study: what showed it and
    what fixes it (the rules that word them are ``checks.causes``' registry)."""

    id: str
    evidence: str
    fix: str
    trial: int | None = None
    """Where it parts the runs (earlier ranks higher); None when not trial-specific."""
    blocking: bool = False
    """Found with every control on: no control can make up for it, so it ranks first."""
    location: Location | None = None
    """Where it enters the user's code, when the audit saw it (None: not found)."""
    edit: Edit | None = None
    """The fix as an edit of the user's file, when it is code for one line (None: a command,
    advice, or a fix for a file repro-check cannot see)."""
    edits: tuple[Edit, ...] = ()
    """Every edit the fix makes, ``edit`` first: a fix for several lines (two calls that
    each need a seed) has one per line, and only all of them together fix the cause. Given
    ``edit`` alone, it is ``(edit,)``."""

    def __post_init__(self) -> None:
        if self.edit is not None and not self.edits:
            object.__setattr__(self, "edits", (self.edit,))

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "evidence": self.evidence,
            "fix": self.fix,
            "trial": self.trial,
            "location": self.location.to_dict() if self.location is not None else None,
            "edit": self.edit.to_dict() if self.edit is not None else None,
            "edits": [edit.to_dict() for edit in self.edits],
        }


@dataclass(frozen=True)
class Experiment:
    """One set of replicates under one set of controls, and what it showed."""

    id: str
    description: str
    controls: Controls
    verdict: str
    """reproducible, not reproducible or incomplete."""
    divergence: Divergence | None
    runs: tuple[RunRecord, ...]
    n_jobs: int = 1
    threads: int | None = None
    audits: tuple[Mapping[str, Any], ...] = ()
    """What the entropy audit saw in each run (full control only; not saved)."""
    reference: str | None = None
    """The experiment whose run 0 is this one's run 0, reused, not rerun (an ablation
    compared with the fully controlled run); None: every run is this experiment's own."""
    resume: ResumeCheck | None = None
    """The resume experiment's comparison (its runs are the resumed replicates; the
    straight-through ones are the fully controlled runs)."""
    resume_chosen: bool = False
    """The resume point was picked by diagnose (a storage, no ``--resume-at``)."""
    straight_through: str | None = None
    """The experiment whose runs are the resume's straight-through replicates (reused)."""
    witness: str | None = None
    """The experiment whose runs replicated this one: they ran with fewer controls, in fresh
    processes, and agreed with this one's run 0 trial for trial, so they also show that these
    controls reproduce, and they stand in for this experiment's other replicates (full control,
    replicated by the ``PYTHONHASHSEED`` and threads ablation: one study saved). None: every
    replicate is this experiment's own. (The name is the saved JSON's key.)"""

    @property
    def stopped_early(self) -> bool:
        return any(run.status == STATUS_CANCELLED for run in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.description,
            "controls": self.controls.to_dict(),
            "n_jobs": self.n_jobs,
            "threads": self.threads,
            "reference": self.reference,
            "witness": self.witness,
            "verdict": self.verdict,
            "stopped_early": self.stopped_early,
            "divergence": Divergence.to_optional_dict(self.divergence),
            **({"resume": self._resume_dict()} if self.resume is not None else {}),
            "runs": [
                {"index": r.index, "status": r.status, "error": r.error, "trials": len(r.trials)}
                for r in self.runs
            ],
        }

    def _resume_dict(self) -> dict[str, Any]:
        assert self.resume is not None
        data = self.resume.to_dict()
        data.pop("runs")  # the experiment's runs are the resumed ones
        return {
            **data,
            "chosen_by_diagnose": self.resume_chosen,
            "straight_through": self.straight_through,
        }


@dataclass(frozen=True)
class NoiseProbe:
    """The objective evaluated at fixed params, several times in fresh processes."""

    params: Mapping[str, Any]
    trial: int
    values: tuple[float, ...]
    processes: int

    @property
    def stats(self) -> Stats | None:
        return Stats.of(self.values)

    @property
    def max_abs_diff(self) -> float:
        pairs = [(self.values[0], v) for v in self.values[1:]]
        return diff_magnitude(pairs)[0] or 0.0

    @property
    def noisy(self) -> bool:
        return self.max_abs_diff > 0 or len(set(map(repr, self.values))) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": encode_params(self.params),
            "from_trial": self.trial,
            "processes": self.processes,
            "values": [encode_float(v) for v in self.values],
            "spread": Stats.to_optional_dict(self.stats),
            "max_abs_diff": encode_float(self.max_abs_diff),
        }


@dataclass(frozen=True)
class Diagnosis:
    """Everything diagnose found: the ranked causes and the experiments behind them."""

    plan: CheckPlan
    device: str
    reproducible_under_full_control: bool
    causes: tuple[Cause, ...]
    experiments: tuple[Experiment, ...]
    objective_noise: NoiseProbe | None = None
    warnings: tuple[str, ...] = ()
    nondeterministic_ops: tuple[str, ...] = ()
    incomplete: bool = False
    tool_version: str = __version__

    @property
    def exit_code(self) -> int:
        """0 once the diagnosis completed, whatever it found (``run`` is the gate)."""
        return EXIT_INCOMPLETE if self.incomplete else EXIT_REPRODUCIBLE

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": report.SCHEMA_VERSION,
            "tool_version": self.tool_version,
            "command": "diagnose",
            "target": self.plan.target,
            "exit_code": self.exit_code,
            "settings": self.plan.to_dict(self.device),
            "reproducible_under_full_control": self.reproducible_under_full_control,
            "causes": [c.to_dict() for c in self.causes],
            "objective_noise": self.objective_noise.to_dict() if self.objective_noise else None,
            "nondeterministic_ops": list(self.nondeterministic_ops),
            "experiments": [e.to_dict() for e in self.experiments],
            "warnings": list(self.warnings),
        }
