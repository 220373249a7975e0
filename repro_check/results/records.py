"""What a replicate produced: one ``TrialRecord`` per trial and one ``RunRecord`` per study.

Records are frozen and convert to/from JSON-ready dicts (their values through
``results.json_values``; what is compared of their attributes in ``results.trial_attrs``), and
are built from a saved report's typed records (``results.saved``) by ``from_saved``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from repro_check.json_values import (
    decode_float,
    encode_float,
    encode_params,
    optional_float,
)
from repro_check.results.trial_record import TrialRecord, saved_trials
from repro_check.vocab import RunStatus

if TYPE_CHECKING:
    from repro_check.results import saved

__all__ = [  # what this module defines (helpers live in json_values, trial_attrs, trial_record)
    "STATUS_CANCELLED",
    "STATUS_CRASHED",
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_TIMEOUT",
    "RunRecord",
    "SamplerInfo",
    "StudyRecord",
    "comparable_runs",
    "stopped_note",
    "trials_digest",
]

STATUS_OK = RunStatus.OK
STATUS_CRASHED = RunStatus.CRASHED
STATUS_TIMEOUT = RunStatus.TIMEOUT
STATUS_ERROR = RunStatus.ERROR
STATUS_CANCELLED = RunStatus.CANCELLED


def stopped_note(ran: int, asked: int) -> str:
    """The note of a run whose study was stopped (``Study.stop``) after ``ran`` of ``asked``
    trials: the only finished run that may hold fewer than its trials (saved reports too)."""
    return (
        f"the study was stopped after {ran} of {asked} trials (Study.stop: by the objective, a "
        "callback or the sampler)"
    )


def trials_digest(pairs: Iterable[tuple[int, str]]) -> str:
    """BLAKE2b of sorted (number, state) pairs: the worker sends it for the study's own view of
    its trials, and the parent computes it on the trials it received."""
    text = ";".join(f"{number}:{state}" for number, state in sorted(pairs))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


_UNRECORDED = {
    "distributions": operator.attrgetter("distributions"),
    "system_attrs": operator.attrgetter("system_attrs"),
}


def _recorded_by_some(runs: Sequence[RunRecord], get: Callable[[Any], Any]) -> bool:
    """Some trials hold the field and others do not (None): C-level passes, since a saved
    report's runs hold a million trials."""
    held = [list(map(get, run.all_trials())) for run in runs]
    return any(None in fields for fields in held) and any(
        any(map(operator.is_not, fields, itertools.repeat(None))) for fields in held
    )


def comparable_runs(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """``runs`` compared on what all of them recorded: when one comes from a report saved
    before ``distributions`` or ``system_attrs`` were recorded (None), every run is compared
    without that field (a new baseline records it). Unchanged, and free, otherwise."""
    missing = [name for name, get in _UNRECORDED.items() if _recorded_by_some(runs, get)]
    if not missing:
        return list(runs)
    blank: dict[str, Any] = dict.fromkeys(missing)

    def strip(trials: tuple[TrialRecord, ...]) -> tuple[TrialRecord, ...]:
        return tuple(dataclasses.replace(t, **blank) for t in trials)

    stripped = []
    for run in runs:
        trials = strip(run.trials)
        studies = tuple(
            dataclasses.replace(s, trials=trials if s.trials is run.trials else strip(s.trials))
            for s in run.studies
        )
        stripped.append(dataclasses.replace(run, trials=trials, studies=studies))
    return stripped


_CONSTRAINTS = operator.attrgetter("constraints")


def _dominates(a: Sequence[float], b: Sequence[float], signs: Sequence[float]) -> bool:
    scaled_a = [s * x for s, x in zip(signs, a, strict=True)]
    scaled_b = [s * x for s, x in zip(signs, b, strict=True)]
    return all(x <= y for x, y in zip(scaled_a, scaled_b, strict=True)) and scaled_a != scaled_b


@dataclass(frozen=True)
class SamplerInfo:
    """The sampler a script built for one study, as the script wrote it."""

    cls: str
    """Its class name (``TPESampler``)."""
    seed: int | None = None
    """The seed the script gave it (None: none given, or not an int)."""
    at: str | None = None
    """``file:line`` where the script built it (None: Optuna's default sampler)."""
    seeded_by_check: bool = False
    """Built without a seed, it got the check's seed (``--controls`` with sampler_seed)."""
    seed_param: str | None = None
    """The keyword that seeds it at ``at`` where Optuna's rule does not say (``seed`` for a
    sampler class of the script's own; a library's own, such as ``optuna_seed``, where ``via``
    built it). None: Optuna's rule (``script_notes.SEEDABLE`` classes take ``seed``)."""
    via: str | None = None
    """The library class or function the script called that built this sampler
    (``LightGBMTunerCV``): ``at`` is then the line that called or built it."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "class": self.cls,
            "seed": self.seed,
            "at": self.at,
            "seeded_by_check": self.seeded_by_check,
        }
        if self.seed_param is not None:  # absent where Optuna's rule holds, as before
            data["seed_param"] = self.seed_param
        if self.via is not None:
            data["via"] = self.via
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SamplerInfo:
        seed = data.get("seed")
        return cls(
            cls=str(data.get("class", "?")),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            at=data.get("at"),
            seeded_by_check=data.get("seeded_by_check") is True,
            seed_param=_optional_text(data.get("seed_param")),
            via=_optional_text(data.get("via")),
        )

    @classmethod
    def from_saved(cls, data: saved.Sampler) -> SamplerInfo:
        seed = data.seed
        return cls(data.cls, seed, data.at, data.seeded_by_check, data.seed_param, data.via)


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _optional_mapping(value: Any) -> Mapping[str, Any] | None:
    return None if value is None else dict(value)


@dataclass(frozen=True)
class StudyRecord:
    """One Optuna study a script created or loaded in one replicate, with its trials."""

    name: str
    directions: tuple[str, ...]
    sampler: SamplerInfo
    trials: tuple[TrialRecord, ...] = ()
    pruner: str | None = None
    at: str | None = None
    """``file:line`` where the script created (or loaded) it."""
    n_trials: int | None = None
    """The trials the script's ``optimize`` calls asked for (None: no optimize, or no limit)."""
    timeout: float | None = None
    """The ``timeout=`` of its ``optimize`` calls: trial counts then depend on speed."""
    n_jobs: int = 1
    """The largest ``n_jobs`` its ``optimize`` calls used."""
    capped: bool = False
    """``--trials`` cut its optimize calls or ask/tell loop short."""
    loaded: bool = False
    """It already held trials when the script opened it (a resumed storage)."""
    pending: tuple[str, ...] = ()
    """Trials it held unfinished when the script ended (asked and never told, or enqueued and
    never run), each as ``pending_key`` (the whole trial, canonical): compared, not shown."""
    user_attrs: Mapping[str, Any] | None = None
    """``study.set_user_attr``: JSON-safe (``to_json_safe``), compared exactly; None: not
    recorded (a report saved before they were), then not compared."""

    def as_run(self, run: RunRecord) -> RunRecord:
        """``run`` as if this were its only study: what the comparison functions take."""
        return dataclasses.replace(run, trials=self.trials, directions=self.directions, studies=())

    def to_dict(self, with_trials: bool = True) -> dict[str, Any]:
        return {
            "name": self.name,
            "directions": list(self.directions),
            "sampler": self.sampler.to_dict(),
            "pruner": self.pruner,
            "at": self.at,
            "n_trials": self.n_trials,
            "timeout": None if self.timeout is None else encode_float(self.timeout),
            "n_jobs": self.n_jobs,
            "capped": self.capped,
            "loaded": self.loaded,
            "pending": list(self.pending),
            **({} if self.user_attrs is None else {"user_attrs": dict(self.user_attrs)}),
            "trials": [t.to_dict() for t in self.trials] if with_trials else None,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], trials: Sequence[TrialRecord] | None = None
    ) -> StudyRecord:
        """``trials`` given: the study's trials are those (a run's first study keeps its trials
        in the run's ``trials``; its ``trials`` here is null)."""
        if trials is None:
            trials = tuple(TrialRecord.from_dict(t) for t in data.get("trials") or [])
        n_trials = data.get("n_trials")
        return cls(
            name=str(data.get("name", "")),
            directions=tuple(data.get("directions") or ["minimize"]),
            sampler=SamplerInfo.from_dict(data.get("sampler") or {}),
            trials=tuple(trials),
            pruner=data.get("pruner"),
            at=data.get("at"),
            n_trials=n_trials if isinstance(n_trials, int) else None,
            timeout=optional_float(data.get("timeout")),
            n_jobs=int(data.get("n_jobs") or 1),
            capped=data.get("capped") is True,
            loaded=data.get("loaded") is True,
            pending=tuple(str(p) for p in data.get("pending") or ()),
            user_attrs=_optional_mapping(data.get("user_attrs")),
        )

    @classmethod
    def from_saved(cls, data: saved.Study, trials: Sequence[TrialRecord] | None) -> StudyRecord:
        """From a saved report's study (``results.saved``); ``trials`` as ``from_dict``."""
        if trials is None:
            trials = saved_trials(data.trials or [], None)
        user_attrs = data.user_attrs
        return cls(
            name=data.name,
            directions=tuple(data.directions),
            sampler=SamplerInfo.from_saved(data.sampler),
            trials=tuple(trials),
            pruner=data.pruner,
            at=data.at,
            n_trials=data.n_trials,
            timeout=None if data.timeout is None else decode_float(data.timeout),
            n_jobs=data.n_jobs or 1,
            capped=data.capped,
            loaded=data.loaded,
            pending=tuple(data.pending),
            user_attrs=dict(user_attrs) if isinstance(user_attrs, dict) else None,
        )


@dataclass(frozen=True)
class RunRecord:
    """One replicate study: its trials, how it ended and where it ran."""

    index: int
    seed: int
    status: str
    """ok, crashed, timeout, error or cancelled."""
    trials: tuple[TrialRecord, ...]
    directions: tuple[str, ...] = ("minimize",)
    error: str | None = None
    wall_s: float | None = None
    environment: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    """What the worker noticed (e.g. torch not installed, so its controls were skipped)."""
    studies: tuple[StudyRecord, ...] = ()
    """Script mode: every study the script created, in order (the first one's trials are also
    ``trials``); empty in objective mode (the run is its one study)."""
    job: tuple[str, int] | None = field(default=None, compare=False)
    """(group, index) of the job whose worker produced this run, in this process (never
    saved): an experiment renumbers its runs and reuses another's, and ``--verbose`` finds
    each run's captured output by this, not by where the run sits in a report."""

    @property
    def finished(self) -> bool:
        return self.status == STATUS_OK

    def all_trials(self) -> Iterator[TrialRecord]:
        """Every trial of the run: each of a script's studies, else the run's one study."""
        for trials in [s.trials for s in self.studies] if self.studies else [self.trials]:
            yield from trials

    def state_counts(self) -> Mapping[str, int]:
        """How many of the run's trials (``trials``) ended in each state: counted once per
        (immutable) run, as ``best_trials``, since the notes ask for them often."""
        cached = self.__dict__.get("_states")
        if cached is None:
            cached = MappingProxyType(dict(Counter(t.state for t in self.trials)))
            object.__setattr__(self, "_states", cached)
        return cached

    @property
    def multi_objective(self) -> bool:
        return len(self.directions) > 1

    def _signs(self) -> list[float]:
        return [1.0 if d == "minimize" else -1.0 for d in self.directions]

    def best_trials(self) -> list[TrialRecord]:
        """The best trial (single objective; ties go to the lowest number) or the Pareto set.
        Computed once per (immutable) run: reports and comparisons ask for it often."""
        cached = self.__dict__.get("_best")
        if cached is None:
            cached = self._compute_best()
            object.__setattr__(self, "_best", cached)
        return list(cached)

    def _compute_best(self) -> list[TrialRecord]:
        """Optuna's rules: in a constrained study (any trial with constraints) only feasible
        trials (every constraint <= 0) can be best, and none feasible means no best."""
        complete = [t for t in self.trials if t.state == "COMPLETE" and t.values is not None]
        if any(map(_CONSTRAINTS, self.trials)):
            complete = [t for t in complete if t.feasible]
        if not complete:
            return []
        signs = self._signs()
        if not self.multi_objective:
            # trials are in number order and min/max keep the first of equals: ties go to the
            # lowest number. A C-level key (list.__getitem__) keeps this fast on long studies.
            firsts = [t.values[0] for t in complete]  # type: ignore[index]
            pick = min if signs[0] > 0 else max
            return [complete[pick(range(len(firsts)), key=firsts.__getitem__)]]
        return [
            t
            for t in complete
            if not any(_dominates(o.values, t.values, signs) for o in complete)  # type: ignore[arg-type]
        ]

    @property
    def best_value(self) -> float | None:
        best = self.best_trials()
        if self.multi_objective or not best or best[0].values is None:
            return None
        return best[0].values[0]

    @property
    def best_params(self) -> Mapping[str, Any] | None:
        best = self.best_trials()
        return None if self.multi_objective or not best else best[0].params

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": self.index,
            "seed": self.seed,
            "status": self.status,
            "error": self.error,
        }
        best = self.best_trials()
        if self.multi_objective:
            data["best_values"] = [[encode_float(v) for v in t.values or ()] for t in best]
            data["best_params"] = [encode_params(t.params) for t in best]
            data["pareto_trials"] = [t.number for t in best]
        else:
            value = self.best_value
            data["best_value"] = None if value is None else encode_float(value)
            params = self.best_params
            data["best_params"] = None if params is None else encode_params(params)
        data.update(
            {
                "directions": list(self.directions),
                "wall_s": self.wall_s,
                "notes": list(self.notes),
                "trials": [t.to_dict() for t in self.trials],
            }
        )
        if self.studies:
            data["studies"] = [s.to_dict(with_trials=i > 0) for i, s in enumerate(self.studies)]
        return data

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], environment: Mapping[str, Any], script: bool = False
    ) -> RunRecord:
        """``script``: read ``studies`` (in objective mode it only describes the one study)."""
        trials = tuple(TrialRecord.from_dict(t) for t in data.get("trials", []))
        studies: tuple[StudyRecord, ...] = ()
        if script:
            studies = tuple(
                StudyRecord.from_dict(s, trials if i == 0 else None)
                for i, s in enumerate(data.get("studies") or [])
            )
        return cls(
            index=int(data["index"]),
            seed=int(data["seed"]),
            status=str(data["status"]),
            error=data.get("error"),
            trials=trials,
            directions=tuple(data.get("directions", ["minimize"])),
            wall_s=optional_float(data.get("wall_s")),
            environment=environment,
            notes=tuple(data.get("notes", [])),
            studies=studies,
        )

    @classmethod
    def from_saved(
        cls,
        data: saved.Run,
        environment: Mapping[str, Any],
        script: bool = False,
        interned: dict[bytes, TrialRecord] | None = None,
    ) -> RunRecord:
        """From a saved report's run, decoded and checked (``results.saved``). ``interned``:
        records already made for this report's trials, by their exact JSON (see
        ``saved_trials``)."""
        trials = saved_trials(data.trials, interned)
        studies: tuple[StudyRecord, ...] = ()
        if script:
            studies = tuple(
                StudyRecord.from_saved(s, trials if i == 0 else None)
                for i, s in enumerate(data.studies or [])
            )
        return cls(
            index=data.index,
            seed=data.seed,
            status=data.status,
            error=data.error,
            trials=trials,
            directions=tuple(data.directions),
            wall_s=None if data.wall_s is None else decode_float(data.wall_s),
            environment=environment,
            notes=tuple(data.notes),
            studies=studies,
        )
