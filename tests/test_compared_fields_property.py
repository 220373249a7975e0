"""Property: the comparison notices a change to any recorded field of any trial, and never one
to the fields named as timing or identity (``trial_attrs.NOT_COMPARED``), on every path (digest
fast path, trial-by-trial scan, history count, a JSON round trip)."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repro_check.plan.settings import Tolerance
from repro_check.results.comparison import distinct_histories, first_divergence
from repro_check.results.records import RunRecord
from repro_check.results.trial_record import TrialRecord

EXACT = Tolerance()

names = st.sampled_from(["x", "lr", "act", "n", "constraints:c", "a b"])
floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), floats, st.text(max_size=4))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
param_values = st.one_of(st.booleans(), st.integers(-5, 5), floats, st.text(max_size=4))
distribution = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["FloatDistribution", "CategoricalDistribution"]),
        "attributes": st.dictionaries(st.sampled_from(["low", "high", "log"]), json_values),
    }
)
system_attrs = st.dictionaries(
    st.sampled_from(["constraints", "constraints:c", "fixed_params", "grid_id", "tpe:x"]),
    json_values,
    max_size=3,
)


@st.composite
def trials(draw: Any, number: int) -> TrialRecord:
    state = draw(st.sampled_from(["COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"]))
    values = draw(st.one_of(st.none(), st.lists(floats, min_size=1, max_size=2).map(tuple)))
    return TrialRecord(
        number=number,
        state=state,
        params=draw(st.dictionaries(names, param_values, max_size=3)),
        values=values,
        intermediate_values=draw(st.dictionaries(st.integers(0, 5), floats, max_size=3)),
        user_attrs=draw(st.dictionaries(st.text(max_size=3), json_values, max_size=3)),
        error=draw(st.sampled_from([None, "ValueError: boom at 0x7f00"])),
        duration_s=draw(st.one_of(st.none(), st.floats(0, 10))),
        distributions=draw(st.dictionaries(names, distribution, max_size=2)),
        system_attrs=draw(system_attrs),
    )


@st.composite
def studies(draw: Any) -> list[TrialRecord]:
    n = draw(st.integers(1, 4))
    return [draw(trials(i)) for i in range(n)]


def _other_float(x: float) -> float:
    if math.isnan(x):
        return 0.5
    if math.isinf(x):
        return -x
    return -0.0 if x == 0.0 and math.copysign(1.0, x) > 0 else (x + 1.0 if x != 0 else 0.0) * 3


def _changed(value: Any) -> Any:
    """A JSON-safe value that differs from ``value`` (type or content)."""
    kind = type(value)
    if kind is float:
        return _other_float(value)
    if kind is bool:
        return not value
    if kind is int:
        return value + 1
    if kind is str:
        return value + "~"
    if value is None:
        return 0
    if kind is list:
        return [*value, None]
    return {**value, "~": None}


def _mutate(record: TrialRecord, data: Any) -> TrialRecord:
    """``record`` with one compared field changed."""
    safe = TrialRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    choices = ["state", "params+", "values", "iv+", "user+", "system+", "dist+"]
    if safe.params:
        choices.append("params")
    if safe.intermediate_values:
        choices.append("iv")
    if safe.user_attrs:
        choices.append("user")
    if safe.system_attrs:
        choices.append("system")
    if safe.distributions:
        choices.append("dist")
    what = data.draw(st.sampled_from(choices))
    if what == "state":
        other = "PRUNED" if record.state != "PRUNED" else "COMPLETE"
        return dataclasses.replace(record, state=other)
    if what == "values":
        if record.values is None:
            return dataclasses.replace(record, values=(1.0,))
        first = _other_float(record.values[0])
        return dataclasses.replace(record, values=(first, *record.values[1:]))
    if what in ("iv", "iv+"):
        iv = dict(record.intermediate_values)
        step = data.draw(st.sampled_from(sorted(iv))) if what == "iv" else 99
        iv[step] = _other_float(iv[step]) if step in iv else 0.0
        return dataclasses.replace(record, intermediate_values=iv)
    field_name = {"params": "params", "user": "user_attrs", "system": "system_attrs"}.get(
        what.rstrip("+"), "distributions"
    )
    mapping = dict(getattr(safe, field_name) or {})
    if what.endswith("+"):
        mapping["added~"] = 1
    else:
        key = data.draw(st.sampled_from(sorted(mapping)))
        mapping[key] = _changed(mapping[key])
    changes: dict[str, Any] = {field_name: mapping}
    return dataclasses.replace(record, **changes)


def _runs(a: list[TrialRecord], b: list[TrialRecord]) -> list[RunRecord]:
    return [RunRecord(0, 0, "ok", tuple(a)), RunRecord(1, 0, "ok", tuple(b))]


def _through_json(records: list[TrialRecord]) -> list[TrialRecord]:
    return [TrialRecord.from_dict(json.loads(json.dumps(t.to_dict()))) for t in records]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(study=studies(), data=st.data())
def test_any_recorded_field_changed_is_noticed(study: list[TrialRecord], data: Any) -> None:
    position = data.draw(st.integers(0, len(study) - 1))
    changed = list(study)
    changed[position] = _mutate(study[position], data)
    for runs in (_runs(study, changed), _runs(_through_json(study), _through_json(changed))):
        div = first_divergence(runs, EXACT)
        assert div is not None, (study[position], changed[position])
        assert div.trial == position
        assert distinct_histories(runs, EXACT) == 2
    # the same study, read back from JSON, is the same study
    assert first_divergence(_runs(study, _through_json(study)), EXACT) is None


@settings(max_examples=200, deadline=None)
@given(study=studies(), data=st.data())
def test_excluded_fields_never_matter(study: list[TrialRecord], data: Any) -> None:
    changed = []
    for record in study:
        error = record.error
        if error is not None:  # the message past its kind: addresses, timings
            error = error + data.draw(st.sampled_from([" at 0x7f11", " after 3.2 s"]))
        system = dict(record.system_attrs or {})
        changed.append(
            dataclasses.replace(
                record,
                duration_s=data.draw(st.one_of(st.none(), st.floats(0, 1e6))),
                error=error,
                system_attrs=system,
            )
        )
    for runs in (_runs(study, changed), _runs(_through_json(study), changed)):
        assert first_divergence(runs, EXACT) is None
        assert distinct_histories(runs, EXACT) == 1
