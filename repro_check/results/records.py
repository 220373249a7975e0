"""What a replicate produced: one ``TrialRecord`` per trial and one ``RunRecord`` per study.

Records are frozen and convert to/from JSON-ready dicts. JSON has no NaN or infinity, so
non-finite floats travel as the strings "NaN", "Infinity" and "-Infinity"; every other float is
written with ``repr`` precision and so round-trips bit for bit (``-0.0`` included).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from repro_check.vocab import RunStatus

STATUS_OK = RunStatus.OK
STATUS_CRASHED = RunStatus.CRASHED
STATUS_TIMEOUT = RunStatus.TIMEOUT
STATUS_ERROR = RunStatus.ERROR
STATUS_CANCELLED = RunStatus.CANCELLED

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def decode_float(value: Any) -> float:
    if isinstance(value, str):
        if value not in _NONFINITE:
            raise ValueError(f"not a number: {value!r}")
        return _NONFINITE[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else decode_float(value)


def to_json_safe(value: Any) -> Any:
    """Recursively make ``value`` strict-JSON safe (non-finite floats become strings)."""
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return repr(value)


FLOAT_TAG = "$float"
"""Non-finite float *params* travel as {"$float": "NaN"}: a bare "NaN" could be a string choice."""


def encode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            encoded[str(key)] = {FLOAT_TAG: encode_float(value)}
        else:
            encoded[str(key)] = to_json_safe(value)
    return encoded


def decode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping) and set(value) == {FLOAT_TAG}:
            decoded[str(key)] = decode_float(value[FLOAT_TAG])
        else:
            decoded[str(key)] = value
    return decoded


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
"""``<Loss object at 0x7f31...>``: a memory address, different in every process."""

_EMPTY: Mapping[Any, Any] = MappingProxyType({})
"""Shared by every record without intermediate values or user attributes (saves memory)."""


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


def _canonical(x: float) -> float | str:
    """Exact identity of a float for keys: NaN equals NaN, -0.0 differs from 0.0."""
    if x != x:
        return "nan"
    if x == 0.0 and math.copysign(1.0, x) < 0:
        return "-0.0"
    return x


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """One finished trial, as Optuna saw it.

    Besides the recorded fields, each record carries its comparison fingerprint, computed once
    at construction (trials stream in one by one, so the cost is spread over the study):
    ``shape_digest`` (a BLAKE2b-128 hash of everything but the floats), ``float_bytes``
    (every float in a fixed order, as float64 bytes) and ``digest`` (a hash of both, bit for
    bit: equal digests mean equal trials under exact comparison). Comparing 100 runs × 10,000
    trials then needs no per-trial Python work (see ``comparison``).
    """

    number: int
    state: str
    """COMPLETE, PRUNED or FAIL."""
    params: Mapping[str, Any]
    values: tuple[float, ...] | None
    """The objective value(s); None when the trial did not complete."""
    intermediate_values: Mapping[int, float] = field(default_factory=lambda: _EMPTY)
    user_attrs: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    error: str | None = None
    """Why a FAIL trial failed (exception text, or the bad value returned)."""
    duration_s: float | None = None
    """Recorded for the report, never compared."""
    shape_digest: bytes = field(init=False, repr=False, compare=False)
    float_bytes: bytes = field(init=False, repr=False, compare=False)
    digest: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        floats: list[float] = []
        params: list[Any] = []
        for name in sorted(self.params):
            value = self.params[name]
            if type(value) is float:
                floats.append(value)
                params.append(name)  # a bare name: a float, compared through ``floats``
            else:
                params.append((name, type(value).__name__, value))
        n_values = -1
        if self.values is not None:
            n_values = len(self.values)
            floats.extend(self.values)
        steps = tuple(sorted(self.intermediate_values))
        floats.extend(self.intermediate_values[step] for step in steps)
        # repr is injective here: floats print with round-trip precision, strings quoted
        shape = repr((self.state_text, tuple(params), n_values, steps)).encode()
        ordered = tuple(floats)
        plain = all(x == x and x != 0.0 for x in ordered)
        exact = repr(ordered if plain else tuple(_canonical(x) for x in ordered)).encode()
        shape_hash = hashlib.blake2b(shape, digest_size=16)
        object.__setattr__(self, "shape_digest", shape_hash.digest())
        object.__setattr__(self, "float_bytes", array("d", ordered).tobytes())
        shape_hash.update(b"|")
        shape_hash.update(exact)
        object.__setattr__(self, "digest", shape_hash.digest())

    @classmethod
    def from_frozen(
        cls,
        frozen: Any,
        *,
        values: tuple[float, ...] | None = None,
        intermediate_values: Mapping[int, float] | None = None,
        error: str | None = None,
    ) -> TrialRecord:
        """From Optuna's FrozenTrial; ``values``/``intermediate_values`` override what the
        storage kept when the exact floats are known."""
        stored = tuple(frozen.values) if frozen.values is not None else None
        return cls(
            number=frozen.number,
            state=frozen.state.name,
            params=dict(frozen.params),
            values=values if values is not None else stored,
            intermediate_values=dict(
                intermediate_values
                if intermediate_values is not None
                else frozen.intermediate_values
            ),
            user_attrs=dict(frozen.user_attrs),
            error=error,
            duration_s=frozen.duration.total_seconds() if frozen.duration else None,
        )

    @property
    def fail_kind(self) -> str | None:
        """What kind of failure a FAIL trial had (the exception type, or "objective returned
        ..."): a ValueError in one run and a TypeError in another is not the same history.
        The rest of the message (addresses, timings) is not compared."""
        if self.state != "FAIL" or not self.error:
            return None
        return _ADDRESS.sub("", self.error.split(":", 1)[0]).strip()

    @property
    def state_text(self) -> str:
        kind = self.fail_kind
        return f"{self.state} ({kind})" if kind else self.state

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": self.state,
            "params": encode_params(self.params),
            "values": None if self.values is None else [encode_float(v) for v in self.values],
            "intermediate_values": {
                str(step): encode_float(v) for step, v in sorted(self.intermediate_values.items())
            },
            "user_attrs": to_json_safe(dict(self.user_attrs)),
            "error": self.error,
            "duration_s": self.duration_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRecord:
        values = data.get("values")
        return cls(
            number=int(data["number"]),
            state=str(data["state"]),
            params=decode_params(dict(data.get("params", {}))),
            values=None if values is None else tuple(decode_float(v) for v in values),
            intermediate_values={
                int(step): decode_float(v)
                for step, v in dict(data.get("intermediate_values", {})).items()
            },
            user_attrs=dict(data.get("user_attrs", {})),
            error=data.get("error"),
            duration_s=_optional_float(data.get("duration_s")),
        )


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.cls,
            "seed": self.seed,
            "at": self.at,
            "seeded_by_check": self.seeded_by_check,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SamplerInfo:
        seed = data.get("seed")
        return cls(
            cls=str(data.get("class", "?")),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            at=data.get("at"),
            seeded_by_check=data.get("seeded_by_check") is True,
        )


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
    never run), each as canonical JSON of its number, state and params: compared, not shown."""

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
            timeout=_optional_float(data.get("timeout")),
            n_jobs=int(data.get("n_jobs") or 1),
            capped=data.get("capped") is True,
            loaded=data.get("loaded") is True,
            pending=tuple(str(p) for p in data.get("pending") or ()),
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
        complete = [t for t in self.trials if t.state == "COMPLETE" and t.values is not None]
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
            wall_s=_optional_float(data.get("wall_s")),
            environment=environment,
            notes=tuple(data.get("notes", [])),
            studies=studies,
        )
