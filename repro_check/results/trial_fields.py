"""How two trials are told equal, field by field, and what their first difference reads as.

The rules (pure, no I/O, no optuna):
- everything a trial records is compared (``trial_record.TrialRecord``), less
  ``trial_attrs.NOT_COMPARED`` (timing and identity: timestamps, durations, storage ids);
- exact (bit-for-bit) by default: ``-0.0 != 0.0``; a tolerance makes them equal;
- NaN equals NaN (a NaN loss that reproduces is reproducible);
- tolerances loosen only floats the objective computed: values, intermediate values,
  constraints, and floats in user and system attributes; params (and an enqueued trial's
  ``fixed_params``), distributions, ints, strings, bools and states always compare exactly.
``comparison.py`` applies them to whole runs.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from repro_check.plan.settings import Tolerance
from repro_check.results.trial_attrs import FIXED_PARAMS_KEY, is_constraint_key
from repro_check.results.trial_record import TrialRecord

FIELDS = (
    "state",
    "params",
    "distributions",
    "values",
    "intermediate_values",
    "constraints",
    "user_attrs",
    "system_attrs",
)
"""Compared per trial, in this order; ``trial_count`` is checked after them. Together with the
trial's number they are everything recorded but ``trial_attrs.NOT_COMPARED``."""

EXACT = Tolerance()
"""Bit for bit: what params, distributions and a study's attributes are compared with."""
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlevel = 2


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def floats_equal(a: float, b: float, tol: Tolerance) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if tol.exact:
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return math.isclose(a, b, rel_tol=tol.rtol, abs_tol=tol.atol)


def param_equal(a: Any, b: Any) -> bool:
    """Two param values: exactly, whatever the tolerance (the sampler chose them; a tolerance
    only forgives the objective's arithmetic). Floats bit for bit (NaN equals NaN), an int
    never equals a float."""
    if type(a) is float and type(b) is float:
        return floats_equal(a, b, EXACT)
    return type(a) is type(b) and a == b


def json_equal(a: Any, b: Any, tol: Tolerance) -> bool:
    """Two JSON-safe values (attributes): floats under ``tol``, everything else exactly and of
    the same type (1 is not 1.0, True is not 1)."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is float:
        return floats_equal(a, b, tol)
    if kind is dict:
        return a.keys() == b.keys() and all(json_equal(a[k], b[k], tol) for k in a)
    if kind is list:
        return len(a) == len(b) and all(json_equal(x, y, tol) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _json_pairs(a: Any, b: Any, out: list[tuple[float, float]]) -> None:
    """The float pairs at the same places of two JSON-safe values."""
    if type(a) is float and type(b) is float:
        out.append((a, b))
    elif type(a) is dict and type(b) is dict:
        for key in sorted(a.keys() & b.keys()):
            _json_pairs(a[key], b[key], out)
    elif type(a) is list and type(b) is list:
        for x, y in zip(a, b, strict=False):
            _json_pairs(x, y, out)


def _constraint_attrs(trial: TrialRecord) -> dict[str, Any]:
    return {k: v for k, v in (trial.system_attrs or {}).items() if is_constraint_key(k)}


def _other_attrs(trial: TrialRecord) -> dict[str, Any]:
    return {k: v for k, v in (trial.system_attrs or {}).items() if not is_constraint_key(k)}


def _attrs_equal(a: Mapping[str, Any], b: Mapping[str, Any], tol: Tolerance) -> bool:
    """System attributes: floats under ``tol``, but ``fixed_params`` (params) exactly."""
    return a.keys() == b.keys() and all(
        json_equal(a[k], b[k], EXACT if k == FIXED_PARAMS_KEY else tol) for k in a
    )


def diff_magnitude(pairs: Sequence[tuple[float, float]]) -> tuple[float | None, float | None]:
    """Max absolute and relative difference over float pairs (None when there are none)."""
    if not pairs:
        return None, None
    max_abs = max_rel = 0.0
    for a, b in pairs:
        if math.isnan(a) and math.isnan(b):
            continue
        if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
            if a != b:
                max_abs = max_rel = math.inf
            continue
        delta = abs(a - b)
        scale = max(abs(a), abs(b))
        max_abs = max(max_abs, delta)
        max_rel = max(max_rel, delta / scale if scale else 0.0)
    return max_abs, max_rel


def _state_equal(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> bool:
    return a.state == b.state and a.fail_kind == b.fail_kind


def _params_equal(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> bool:
    return a.params.keys() == b.params.keys() and all(
        param_equal(a.params[k], b.params[k]) for k in a.params
    )


def _distributions_equal(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> bool:
    # not recorded (None) reads as none, as in the digest
    return json_equal(dict(a.distributions or {}), dict(b.distributions or {}), EXACT)


def _values_equal(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> bool:
    if a.values is None or b.values is None:
        return a.values is None and b.values is None
    return len(a.values) == len(b.values) and all(
        floats_equal(x, y, tol) for x, y in zip(a.values, b.values, strict=True)
    )


def _intermediate_equal(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> bool:
    iv_a, iv_b = a.intermediate_values, b.intermediate_values
    return iv_a.keys() == iv_b.keys() and all(floats_equal(iv_a[s], iv_b[s], tol) for s in iv_a)


def _constraints_equal(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> bool:
    return json_equal(_constraint_attrs(a), _constraint_attrs(b), tol)


def _user_attrs_equal(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> bool:
    return json_equal(dict(a.user_attrs), dict(b.user_attrs), tol)


def _system_attrs_equal(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> bool:
    return _attrs_equal(_other_attrs(a), _other_attrs(b), tol)


_FieldRule = Callable[[TrialRecord, TrialRecord, Tolerance], Any]

_EQUAL: dict[str, _FieldRule] = {
    "state": _state_equal,
    "params": _params_equal,
    "distributions": _distributions_equal,
    "values": _values_equal,
    "intermediate_values": _intermediate_equal,
    "constraints": _constraints_equal,
    "user_attrs": _user_attrs_equal,
    "system_attrs": _system_attrs_equal,
}
"""How each compared field is told equal: one rule per field of ``FIELDS``."""


def field_equal(name: str, a: TrialRecord, b: TrialRecord, tol: Tolerance) -> bool:
    try:
        rule = _EQUAL[name]
    except KeyError:
        raise ValueError(f"not a compared field: {name!r}") from None
    return bool(rule(a, b, tol))


def field_pairs(name: str, a: TrialRecord, b: TrialRecord) -> list[tuple[float, float]]:
    """The float pairs behind a differing field a tolerance may loosen, for the size of the
    difference (none for params: they compare exactly)."""
    if name == "values" and a.values is not None and b.values is not None:
        return list(zip(a.values, b.values, strict=False))
    if name == "intermediate_values":
        steps = a.intermediate_values.keys() & b.intermediate_values.keys()
        return [(a.intermediate_values[s], b.intermediate_values[s]) for s in sorted(steps)]
    pairs: list[tuple[float, float]] = []
    if name == "constraints":
        ca, cb = a.constraints, b.constraints
        pairs = [(ca[k], cb[k]) for k in sorted(ca.keys() & cb.keys())]
    elif name == "user_attrs":
        _json_pairs(dict(a.user_attrs), dict(b.user_attrs), pairs)
    elif name == "system_attrs":
        other_a, other_b = _other_attrs(a), _other_attrs(b)
        other_a.pop(FIXED_PARAMS_KEY, None)
        _json_pairs(other_a, other_b, pairs)
    return pairs


def _show(value: Any) -> str:
    return _SHORT.repr(value)


def first_differing_key(
    a: Mapping[str, Any], b: Mapping[str, Any], same: Any
) -> tuple[str, str] | None:
    """The first key (sorted) two mappings hold differently, ``same(key, x, y)`` deciding:
    (key, what differs, in a few words)."""
    for key in sorted(a.keys() | b.keys()):
        if key not in a or key not in b:
            return key, f"{key!r} present in only one run"
        if not same(key, a[key], b[key]):
            return key, f"{key} = {_show(a[key])} vs {_show(b[key])}"
    return None


def _describe_params(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> str:
    found = first_differing_key(a.params, b.params, lambda _k, x, y: param_equal(x, y))
    return f"param {found[1]}" if found else "params differ"


def _describe_distributions(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> str:
    found = first_differing_key(
        dict(a.distributions or {}),
        dict(b.distributions or {}),
        lambda _k, x, y: json_equal(x, y, EXACT),
    )
    return f"distribution of param {found[1]}" if found else "distributions differ"


def _describe_intermediate(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> str:
    steps_a, steps_b = a.intermediate_values, b.intermediate_values
    for step in sorted(steps_a.keys() | steps_b.keys()):
        if step not in steps_a or step not in steps_b:
            return f"intermediate value at step {step} reported in only one run"
        if not floats_equal(steps_a[step], steps_b[step], tol):
            return f"intermediate value at step {step}: {steps_a[step]!r} vs {steps_b[step]!r}"
    return "intermediate values differ"


def _describe_constraints(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> str:
    found = first_differing_key(
        a.constraints, b.constraints, lambda _k, x, y: floats_equal(x, y, tol)
    )
    return f"constraint {found[1]}" if found else "constraints differ"


def _describe_user_attrs(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> str:
    found = first_differing_key(a.user_attrs, b.user_attrs, lambda _k, x, y: json_equal(x, y, tol))
    return f"user attr {found[1]}" if found else "user attrs differ"


def _describe_system_attrs(a: TrialRecord, b: TrialRecord, tol: Tolerance) -> str:
    found = first_differing_key(
        _other_attrs(a),
        _other_attrs(b),
        lambda k, x, y: json_equal(x, y, EXACT if k == FIXED_PARAMS_KEY else tol),
    )
    if found is not None and found[0] == FIXED_PARAMS_KEY:
        return f"enqueued params (system attr {found[1]})"
    return f"system attr {found[1]}" if found else "system attrs differ"


_DESCRIBE: dict[str, _FieldRule] = {
    "state": lambda a, b, _tol: f"state {a.state_text} vs {b.state_text}",
    "params": _describe_params,
    "distributions": _describe_distributions,
    "values": lambda a, b, _tol: f"value {_fmt(a.values)} vs {_fmt(b.values)}",
    "intermediate_values": _describe_intermediate,
    "constraints": _describe_constraints,
    "user_attrs": _describe_user_attrs,
    "system_attrs": _describe_system_attrs,
}
"""What each compared field's first difference reads as, in a few words."""


def describe(name: str, a: TrialRecord, b: TrialRecord, tol: Tolerance) -> str:
    """One line saying what differs between two trials' ``name`` field."""
    return str(_DESCRIBE.get(name, _describe_system_attrs)(a, b, tol))


def _fmt(values: Sequence[float] | None) -> str:
    if values is None:
        return "none"
    return repr(values[0]) if len(values) == 1 else repr(list(values))
