"""One trial as Optuna saw it (``TrialRecord``), with the fingerprint the comparison reads.

A module of its own because the record is the hot spot of the tool: a check streams one per
trial and a saved report may hold a million, so its fingerprint is computed once, at
construction, and a saved report's trials are built straight from their typed records
(``from_saved``, ``saved_trials``).
"""

from __future__ import annotations

import hashlib
import json
import operator
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from repro_check.json_values import (
    ADDRESS,
    EMPTY,
    bounded,
    decode_float,
    decode_params,
    distribution_json,
    encode_float,
    encode_params,
    optional_float,
    saved_attrs,
    to_json_safe,
)
from repro_check.results.trial_attrs import (
    FIXED_PARAMS_KEY,
    canonical_float,
    constraints_of,
    recorded_system_attr,
    skeleton,
)

if TYPE_CHECKING:
    from repro_check.results import saved


def _safe_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``value`` JSON-safe (keys strings, non-finite floats as strings, objects by stable
    names), so a record built in the worker and one read back from JSON hold the same."""
    if value is None:
        return None
    if not value:
        return EMPTY
    safe: dict[str, Any] = to_json_safe(dict(value))
    return safe


_PLAIN = frozenset({float, str, int, bool, type(None)})
"""The param types JSON holds as they are; any other param value becomes one of them."""


def _plain_param(value: Any) -> Any:
    """A param value of a type JSON holds, as it reads back from a saved report: a float or
    int subclass (numpy's) as the plain number, anything else by ``to_json_safe``."""
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return to_json_safe(value)


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """One trial, as Optuna saw it (everything but ``NOT_COMPARED``).

    Besides the recorded fields, each record carries its comparison fingerprint, computed once
    at construction (trials stream in one by one, so the cost is spread over the study):
    ``shape_digest`` (a BLAKE2b-128 hash of everything compared exactly: state, params,
    distributions, the attributes' structure), ``float_bytes`` (every float a tolerance may
    loosen, in a fixed order, as float64 bytes: values, intermediate values, then the floats of
    the user and system attributes, constraints among them) and ``digest`` (a hash of both, bit
    for bit: equal digests mean equal trials under exact comparison). Comparing 100 runs ×
    10,000 trials then needs no per-trial Python work (see ``comparison``).
    """

    number: int
    state: str
    """COMPLETE, PRUNED or FAIL (RUNNING or WAITING: a script's unfinished trial)."""
    params: Mapping[str, Any]
    """Compared exactly, whatever the tolerance; objects (a categorical choice that is a
    function or class) by their stable names (``stable_name``)."""
    values: tuple[float, ...] | None
    """The objective value(s); None when the trial did not complete."""
    intermediate_values: Mapping[int, float] = field(default_factory=lambda: EMPTY)
    user_attrs: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    error: str | None = None
    """Why a FAIL trial failed (exception text, or the bad value returned)."""
    duration_s: float | None = None
    """Recorded for the report, never compared."""
    distributions: Mapping[str, Any] | None = None
    """Each param's distribution (``distribution_json``); None: not recorded (a report saved
    before repro-check recorded them, or a record built by hand)."""
    system_attrs: Mapping[str, Any] | None = None
    """Optuna's system attributes (constraints, ``fixed_params``, the sampler's notes), less
    repro-check's own; None: not recorded, as ``distributions``."""
    constraints: Mapping[str, float] = field(init=False, repr=False, compare=False)
    """From ``system_attrs`` (``constraints_of``); empty for an unconstrained trial."""
    shape_digest: bytes = field(init=False, repr=False, compare=False)
    float_bytes: bytes = field(init=False, repr=False, compare=False)
    digest: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        floats: list[float] = []
        params: list[Any] = []
        stable: dict[str, Any] | None = None
        param_floats: list[float] = []
        for name in sorted(self.params):
            value = self.params[name]
            kind = type(value)
            if kind not in _PLAIN:  # an object choice (a function, a class), numpy's numbers
                if stable is None:
                    stable = dict(self.params)
                value = stable[name] = _plain_param(value)
                kind = type(value)
            if kind is float:
                # a bare name: a float, compared exactly (the sampler chose it) in the shape,
                # never through ``floats`` (which a tolerance loosens)
                param_floats.append(value)
                params.append(name)
            else:
                params.append((name, kind.__name__, value))
        if stable is not None:
            object.__setattr__(self, "params", stable)
        n_values = -1
        if self.values is not None:
            n_values = len(self.values)
            floats.extend(self.values)
        steps: tuple[int, ...] = ()
        if self.intermediate_values:
            steps = tuple(sorted(self.intermediate_values))
            floats.extend(map(self.intermediate_values.__getitem__, steps))
        attrs: tuple[Any, ...] = ()
        if self.user_attrs or self.system_attrs or self.distributions:
            attrs = self._attr_shapes(floats)
        else:
            object.__setattr__(self, "constraints", EMPTY)
        state = self.state_text if self.state == "FAIL" else self.state
        # repr is injective here: floats print with round-trip precision, strings quoted
        # (repr tells -0.0 from 0.0, and prints every NaN "nan": NaN equals NaN)
        key = (state, tuple(params), tuple(param_floats), n_values, steps, *attrs)
        shape = repr(key).encode()
        ordered = tuple(floats)
        # no zero (its sign) and no NaN (x == x fails): the floats' repr is their identity
        plain = 0.0 not in ordered and all(map(operator.eq, ordered, ordered))
        exact = repr(ordered if plain else tuple(canonical_float(x) for x in ordered)).encode()
        shape_hash = hashlib.blake2b(shape, digest_size=16)
        object.__setattr__(self, "shape_digest", shape_hash.digest())
        object.__setattr__(self, "float_bytes", array("d", ordered).tobytes())
        shape_hash.update(b"|")
        shape_hash.update(exact)
        object.__setattr__(self, "digest", shape_hash.digest())

    def _attr_shapes(self, floats: list[float]) -> tuple[Any, ...]:
        """Normalize the attributes and distributions (JSON-safe) and return their exact
        skeletons, their floats appended to ``floats``. Only records that have any pay this."""
        user = _safe_mapping(self.user_attrs) or EMPTY
        system = _safe_mapping(self.system_attrs)
        distributions = _safe_mapping(self.distributions)
        object.__setattr__(self, "user_attrs", user)
        object.__setattr__(self, "system_attrs", system)
        object.__setattr__(self, "distributions", distributions)
        object.__setattr__(self, "constraints", constraints_of(system))
        # not recorded (None) reads as empty here; ``comparable_runs`` handles old reports
        held = system or EMPTY
        system_shape = {
            key: skeleton(held[key], None if key == FIXED_PARAMS_KEY else floats)
            for key in sorted(held)
        }
        return (
            ("user", skeleton(dict(user), floats)),
            ("system", system_shape),
            ("distributions", skeleton(dict(distributions or {}), None)),
        )

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
        system = saved_attrs(
            {k: v for k, v in dict(frozen.system_attrs).items() if recorded_system_attr(str(k))}
        )
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
            distributions={
                str(name): bounded(distribution_json(d), 1)
                for name, d in frozen.distributions.items()
            },
            system_attrs=system,
        )

    @property
    def fail_kind(self) -> str | None:
        """What kind of failure a FAIL trial had (the exception type, or "objective returned
        ..."): a ValueError in one run and a TypeError in another is not the same history.
        The rest of the message (addresses, timings) is not compared."""
        if self.state != "FAIL" or not self.error:
            return None
        return ADDRESS.sub("", self.error.split(":", 1)[0]).strip()

    @property
    def state_text(self) -> str:
        kind = self.fail_kind
        return f"{self.state} ({kind})" if kind else self.state

    @property
    def feasible(self) -> bool:
        """Every constraint at most 0 (Optuna's rule; an unconstrained trial is feasible)."""
        return all(c <= 0.0 for c in self.constraints.values())

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
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
        if self.distributions is not None:
            data["distributions"] = to_json_safe(dict(self.distributions))
        if self.system_attrs is not None:
            data["system_attrs"] = to_json_safe(dict(self.system_attrs))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRecord:
        """``distributions``/``system_attrs`` missing (a report saved before they were
        recorded): None, not recorded (``comparable_runs`` compares such runs without them)."""
        values = data.get("values")
        distributions = data.get("distributions")
        system_attrs = data.get("system_attrs")
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
            duration_s=optional_float(data.get("duration_s")),
            distributions=None if distributions is None else dict(distributions),
            system_attrs=None
            if system_attrs is None
            else {k: v for k, v in dict(system_attrs).items() if recorded_system_attr(str(k))},
        )

    @classmethod
    def from_saved(cls, data: saved.Trial) -> TrialRecord:
        """From a saved report's trial, decoded and checked (``results.saved``): as
        ``from_dict``, without its look-ups (a report may hold a million trials)."""
        params = data.params
        if not _PLAIN.issuperset(map(type, params.values())):
            params = _saved_params(params)
        values: tuple[Any, ...] | None = data.values  # a tuple: the record shares it
        if values is not None and str in map(type, values):  # "NaN", "Infinity", "-Infinity"
            values = tuple(map(decode_float, values))
        steps = data.intermediate_values
        system = data.system_attrs
        distributions = data.distributions
        return cls(
            data.number,
            data.state,
            params,
            values,
            {int(k): decode_float(v) for k, v in steps.items()} if steps else EMPTY,
            data.user_attrs or EMPTY,
            data.error,
            _saved_float(data.duration_s),
            distributions if isinstance(distributions, dict) else None,
            {k: v for k, v in system.items() if recorded_system_attr(k)}
            if isinstance(system, dict)
            else None,
        )

    def compared(self) -> dict[str, Any]:
        """What the comparison sees, as canonical JSON-ready data (``to_dict`` less
        ``NOT_COMPARED`` and the error's text past its kind)."""
        data = self.to_dict()
        data.pop("duration_s")
        data["error"] = self.fail_kind
        return data


def saved_trials(
    trials: Sequence[saved.Trial], interned: dict[bytes, TrialRecord] | None
) -> tuple[TrialRecord, ...]:
    """Records of a saved run's trials. With ``interned``, a trial whose exact JSON (msgspec
    writes floats bit for bit: -0.0, 1 and 1.0 differ) was met in another run of the report
    reuses that run's record: replicates hold the same trials, so a report of N runs builds
    about one run's records (records are immutable; equal JSON means equal records)."""
    if interned is None:
        return tuple(map(TrialRecord.from_saved, trials))
    import msgspec

    encode = msgspec.json.Encoder().encode
    made = []
    for trial in trials:
        key = encode(trial)
        record = interned.get(key)
        if record is None:
            record = interned[key] = TrialRecord.from_saved(trial)
        made.append(record)
    return tuple(made)


def _saved_float(value: float | str | None) -> float | None:
    return value if value is None or type(value) is float else decode_float(value)


def _saved_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A saved trial's params, each ``{"$float": ...}`` (``saved.FloatTag``) as its float."""
    from repro_check.results.saved import FloatTag

    return {
        key: decode_float(value.value) if isinstance(value, FloatTag) else value
        for key, value in params.items()
    }


def pending_key(frozen: Any) -> str:
    """An unfinished trial (asked and never told, or enqueued and never run: its params are then
    only in ``system_attrs['fixed_params']``) as canonical JSON of all that is compared about it
    (``TrialRecord.compared``), at most ``MAX_TEXT`` characters (a longer one ends with a hash
    of the whole, so it is still compared whole)."""
    text: str = bounded(json.dumps(TrialRecord.from_frozen(frozen).compared(), sort_keys=True), 0)
    return text
