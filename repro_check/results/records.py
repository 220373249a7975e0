"""What a replicate produced: one ``TrialRecord`` per trial and one ``RunRecord`` per study.

Records are frozen and convert to/from JSON-ready dicts. JSON has no NaN or infinity, so
non-finite floats travel as the strings "NaN", "Infinity" and "-Infinity"; every other float is
written with ``repr`` precision and so round-trips bit for bit (``-0.0`` included).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import operator
import re
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any

from repro_check.results.bounds import MAX_DEPTH, MAX_TEXT
from repro_check.vocab import RunStatus

if TYPE_CHECKING:
    from repro_check.results import saved

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
    """Recursively make ``value`` strict-JSON safe (non-finite floats become strings). Arrays
    and tensors become their numbers (``array_data``), sets a sorted list, other objects a
    stable name: never a printed form that rounds or elides what differs."""
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, set | frozenset):  # iteration order follows the hash seed
        return sorted((to_json_safe(v) for v in value), key=lambda v: (type(v).__name__, repr(v)))
    data = array_data(value)
    if data is not None and type(data) is not type(value):  # longdouble.item() is itself
        return to_json_safe(data)
    return stable_name(value)


ARRAY_ITEMS = 10_000
"""An array (or tensor) of at most this many items is recorded item by item (a tolerance
loosens its floats); a larger one by dtype, shape and a hash of its bytes (exact)."""

_ARRAY_LIBRARIES = frozenset({"numpy", "torch", "pandas", "jax", "jaxlib", "cupy"})


def array_data(value: Any) -> Any:
    """The numbers of a NumPy array or scalar, a torch tensor or a pandas object (None for
    anything else, or what cannot be read: it is then named by ``stable_name``): their
    ``repr`` shows 4-8 digits and elides long arrays, so two that differ would print alike. A
    pandas object keeps its labels (index, columns) beside its values. Nothing is imported for
    it: a value of those types means its library is loaded already."""
    library = type(value).__module__.split(".")[0]
    if library not in _ARRAY_LIBRARIES:
        return None
    try:
        if library == "pandas":
            return _pandas_data(value)
        return _numbers(value)
    except Exception:  # a sparse, meta or quantized tensor, an exotic dtype: named instead
        return None


def _numbers(value: Any) -> Any:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, on the CPU
        value = value.detach().cpu()
        wide = str(value.dtype) == "torch.bfloat16"  # NumPy has no bfloat16
        value = (value.double() if wide else value).numpy()
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.generic):
        return value.item()
    if np is not None and isinstance(value, np.ndarray):
        if np.ma.isMaskedArray(value):
            value = {"data": value.filled(0), "mask": np.ma.getmaskarray(value)}
            return {key: _numbers(part) for key, part in value.items()}
        if value.size <= ARRAY_ITEMS:
            return value.tolist()  # objects in it are made JSON-safe by the caller
        if value.dtype.hasobject:
            raw = repr(to_json_safe(value.tolist())).encode()
        else:
            raw = np.ascontiguousarray(value).tobytes()
        digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
        return {"array": {"dtype": str(value.dtype), "shape": list(value.shape), "blake2b": digest}}
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else None


def _pandas_data(value: Any) -> Any:
    """A Series, DataFrame, Index or Categorical: its kind, labels (in order) and values."""
    data: dict[str, Any] = {"pandas": type(value).__name__}
    for part in ("index", "columns"):
        labels = getattr(value, part, None)
        if labels is not None and hasattr(labels, "to_numpy"):
            data[part] = _numbers(labels.to_numpy())
    data["values"] = _numbers(value.to_numpy())
    return data


def stable_name(value: Any) -> str:
    """A value JSON cannot hold, named the same in every process: a function, class, method or
    module by its module-qualified name (``mypkg.nets.relu``; a lambda or local function also
    by its line), anything else by its repr less memory addresses (``<mypkg.Loss object>``).
    Never an address: a categorical choice ``suggest_categorical("act", [relu, tanh])`` must
    read the same in every run."""
    name = getattr(value, "__qualname__", None)
    if isinstance(name, str) and not isinstance(value, str):
        module = getattr(value, "__module__", None)
        named = f"{module}.{name}" if isinstance(module, str) and module else name
        code = getattr(value, "__code__", None)
        if "<" in name and code is not None:  # <lambda>, <locals>: one name, many functions
            named += f"@{code.co_firstlineno}"
        return named
    if isinstance(value, ModuleType):
        return value.__name__
    return _ADDRESS.sub("", repr(value))


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


NOT_COMPARED = (
    "datetime_start",
    "datetime_complete",
    "duration",
    "trial_id",
    "system_attrs['repro_check_*']",
    "system_attrs['artifacts:*']",
    "system_attrs['lightgbm_tuner:elapsed_secs']",
    "system_attrs['lightgbm_tuner:average_iteration_time']",
)
"""What Optuna (or repro-check) records about a trial and the comparison leaves out: timing
and identity, different in every process by nature. ``datetime_start``/``datetime_complete``
and ``duration`` (kept as ``duration_s``, shown, never compared) say when the trial ran;
``trial_id`` is the storage's row id (replicates sharing one storage get different ones; the
trial ``number`` is compared); ``repro_check_*`` system attributes are repro-check's own
bookkeeping in a shared storage (the trial's number and error in its script's study);
``artifacts:<uuid4>`` are the ids ``optuna.artifacts.upload_artifact`` draws for a trial's
files, and optuna-integration's LightGBM tuner writes its wall-clock timings. A FAIL
trial's error message is compared by its kind only (``fail_kind``): its text holds addresses
and timings.

Everything else a trial holds is compared: ``number``, ``state``, ``params`` exactly (what the
sampler or the user chose, whatever ``--atol``/``--rtol``), their ``distributions``,
``values``, ``intermediate_values``, ``user_attrs`` and ``system_attrs`` (constraints,
``fixed_params`` of an enqueued trial, the sampler's own notes). Tolerances loosen only floats
the objective computed: values, intermediate values, constraints and the floats inside user
and system attributes (``fixed_params`` aside: params, compared exactly).
"""

OWN_ATTR_PREFIX = "repro_check_"
"""System attributes repro-check itself writes into a shared storage's trials: not the user's
study, never recorded (see ``NOT_COMPARED``)."""

_UNCOMPARED_PREFIXES = (OWN_ATTR_PREFIX, "artifacts:")
_UNCOMPARED_KEYS = frozenset(
    {"lightgbm_tuner:elapsed_secs", "lightgbm_tuner:average_iteration_time"}
)


def recorded_system_attr(key: str) -> bool:
    """Whether a trial's system attribute is recorded and compared: all but the timing and
    identity ones ``NOT_COMPARED`` names."""
    return not key.startswith(_UNCOMPARED_PREFIXES) and key not in _UNCOMPARED_KEYS


CONSTRAINTS_KEY = "constraints"
"""Optuna's system attribute for constraints: a list (a sampler's ``constraints_func``) and,
since Optuna 5, one ``constraints:<name>`` attribute per ``trial.set_constraint``."""
_CONSTRAINT_PREFIX = CONSTRAINTS_KEY + ":"
FIXED_PARAMS_KEY = "fixed_params"
"""Optuna's system attribute holding an enqueued trial's params (``Study.enqueue_trial``)."""


def is_constraint_key(key: str) -> bool:
    return key == CONSTRAINTS_KEY or key.startswith(_CONSTRAINT_PREFIX)


def constraints_of(system_attrs: Mapping[str, Any] | None) -> Mapping[str, float]:
    """A trial's constraints by name as Optuna reads them (``_get_constraints_from_system_attrs``:
    the list as "0", "1", ..., then each ``constraints:<name>``); values that are not numbers
    (a hand-edited report) are left out here and still compared as attributes."""
    if not system_attrs:
        return _EMPTY
    found: dict[str, float] = {}
    listed = system_attrs.get(CONSTRAINTS_KEY)
    if isinstance(listed, list | tuple):
        for i, value in enumerate(listed):
            with contextlib.suppress(ValueError):
                found[str(i)] = decode_float(value)
    for key, value in system_attrs.items():
        if key.startswith(_CONSTRAINT_PREFIX):
            with contextlib.suppress(ValueError):
                found[key[len(_CONSTRAINT_PREFIX) :]] = decode_float(value)
    return found or _EMPTY


def distribution_json(distribution: Any) -> dict[str, Any]:
    """An Optuna distribution as Optuna writes it (``distribution_to_json``: its class name and
    attributes), JSON-safe: categorical choices that are objects by their stable names."""
    asdict = getattr(distribution, "_asdict", None)
    attributes = asdict() if callable(asdict) else dict(getattr(distribution, "__dict__", {}))
    return {"name": type(distribution).__name__, "attributes": to_json_safe(attributes)}


def _skeleton(value: Any, floats: list[float] | None) -> Any:
    """A JSON-safe value with sorted keys, for an exact ``repr`` fingerprint. With ``floats``,
    each float moves there (in order) and ``...`` takes its place: the tolerance check compares
    them apart (JSON-safe data never holds ``...``, and dicts and lists ``repr`` apart)."""
    kind = type(value)
    if kind is float:
        if floats is None:
            return ("float", _canonical(value))
        floats.append(value)
        return ...
    if kind is dict:
        return {k: _skeleton(value[k], floats) for k in sorted(value)}
    if kind is list:
        return [_skeleton(v, floats) for v in value]
    return value


def bounded(value: Any, depth: int = 0) -> Any:
    """A JSON-safe ``value`` as a saved report may hold it (``results.bounds``), still compared
    whole: a string over ``MAX_TEXT`` characters keeps its start and a hash of the whole, one
    with lone surrogates is escaped, containers nested deeper than ``MAX_DEPTH`` become their
    repr (so bounded too). The worker bounds what it streams with it."""
    if isinstance(value, str):
        if not value.isascii():
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        if len(value) <= MAX_TEXT:
            return value
        digest = hashlib.blake2b(value.encode(), digest_size=16).hexdigest()
        tail = f"... ({len(value)} characters, blake2b {digest})"
        return value[: MAX_TEXT - len(tail)] + tail
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return bounded(repr(value), depth)
    if isinstance(value, dict):
        return {bounded(k, depth): bounded(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [bounded(v, depth + 1) for v in value]
    return value


def saved_attrs(attrs: Mapping[Any, Any]) -> dict[str, Any]:
    """Attributes (a trial's system ones, a study's user ones) as a report holds them:
    string keys, JSON-safe values, bounded (``bounded``) yet compared whole."""
    return {bounded(str(k)): bounded(to_json_safe(v), 1) for k, v in attrs.items()}


def _safe_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``value`` JSON-safe (keys strings, non-finite floats as strings, objects by stable
    names), so a record built in the worker and one read back from JSON hold the same."""
    if value is None:
        return None
    if not value:
        return _EMPTY
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
    intermediate_values: Mapping[int, float] = field(default_factory=lambda: _EMPTY)
    user_attrs: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
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
            object.__setattr__(self, "constraints", _EMPTY)
        state = self.state_text if self.state == "FAIL" else self.state
        # repr is injective here: floats print with round-trip precision, strings quoted
        # (repr tells -0.0 from 0.0, and prints every NaN "nan": NaN equals NaN)
        key = (state, tuple(params), tuple(param_floats), n_values, steps, *attrs)
        shape = repr(key).encode()
        ordered = tuple(floats)
        # no zero (its sign) and no NaN (x == x fails): the floats' repr is their identity
        plain = 0.0 not in ordered and all(map(operator.eq, ordered, ordered))
        exact = repr(ordered if plain else tuple(_canonical(x) for x in ordered)).encode()
        shape_hash = hashlib.blake2b(shape, digest_size=16)
        object.__setattr__(self, "shape_digest", shape_hash.digest())
        object.__setattr__(self, "float_bytes", array("d", ordered).tobytes())
        shape_hash.update(b"|")
        shape_hash.update(exact)
        object.__setattr__(self, "digest", shape_hash.digest())

    def _attr_shapes(self, floats: list[float]) -> tuple[Any, ...]:
        """Normalize the attributes and distributions (JSON-safe) and return their exact
        skeletons, their floats appended to ``floats``. Only records that have any pay this."""
        user = _safe_mapping(self.user_attrs) or _EMPTY
        system = _safe_mapping(self.system_attrs)
        distributions = _safe_mapping(self.distributions)
        object.__setattr__(self, "user_attrs", user)
        object.__setattr__(self, "system_attrs", system)
        object.__setattr__(self, "distributions", distributions)
        object.__setattr__(self, "constraints", constraints_of(system))
        # not recorded (None) reads as empty here; ``comparable_runs`` handles old reports
        held = system or _EMPTY
        system_shape = {
            key: _skeleton(held[key], None if key == FIXED_PARAMS_KEY else floats)
            for key in sorted(held)
        }
        return (
            ("user", _skeleton(dict(user), floats)),
            ("system", system_shape),
            ("distributions", _skeleton(dict(distributions or {}), None)),
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
        return _ADDRESS.sub("", self.error.split(":", 1)[0]).strip()

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
            duration_s=_optional_float(data.get("duration_s")),
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
        values = data.values
        steps = data.intermediate_values
        system = data.system_attrs
        distributions = data.distributions
        return cls(
            data.number,
            data.state,
            params,
            None if values is None else tuple(_saved_floats(values)),
            {int(k): decode_float(v) for k, v in steps.items()} if steps else _EMPTY,
            data.user_attrs or _EMPTY,
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


def _saved_floats(values: Sequence[float | str]) -> Iterator[float]:
    for value in values:
        yield value if type(value) is float else decode_float(value)


def _saved_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A saved trial's params, each ``{"$float": ...}`` (``saved.FloatTag``) as its float."""
    from repro_check.results.saved import FloatTag

    return {
        key: decode_float(value.value) if isinstance(value, FloatTag) else value
        for key, value in params.items()
    }


_UNRECORDED = {
    "distributions": operator.attrgetter("distributions"),
    "system_attrs": operator.attrgetter("system_attrs"),
}


def comparable_runs(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """``runs`` compared on what all of them recorded: when one comes from a report saved
    before ``distributions`` or ``system_attrs`` were recorded (None), every run is compared
    without that field (a new baseline records it). Unchanged, and free, otherwise."""
    missing = [
        name
        for name, get in _UNRECORDED.items()
        if any(get(t) is None for run in runs for t in run.all_trials())
        and any(get(t) is not None for run in runs for t in run.all_trials())
    ]
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


def pending_key(frozen: Any) -> str:
    """An unfinished trial (asked and never told, or enqueued and never run: its params are then
    only in ``system_attrs['fixed_params']``) as canonical JSON of all that is compared about it
    (``TrialRecord.compared``), at most ``MAX_TEXT`` characters (a longer one ends with a hash
    of the whole, so it is still compared whole)."""
    text: str = bounded(json.dumps(TrialRecord.from_frozen(frozen).compared(), sort_keys=True), 0)
    return text


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

    @classmethod
    def from_saved(cls, data: saved.Sampler) -> SamplerInfo:
        seed = data.seed
        return cls(data.cls, seed, data.at, data.seeded_by_check)


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
            timeout=_optional_float(data.get("timeout")),
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
            wall_s=_optional_float(data.get("wall_s")),
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
