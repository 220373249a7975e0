"""JSON round trips of ``TrialRecord`` and ``RunRecord`` are bit-exact and strict-JSON safe."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest
from factories import trial

from repro_check.json_values import decode_float, encode_float
from repro_check.plan.settings import CheckPlan
from repro_check.results import report
from repro_check.results.records import RunRecord
from repro_check.results.trial_record import TrialRecord

SPECIAL = [-0.0, 0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 0.1, 1e308, math.nan, math.inf]
SPECIAL += [-math.inf, math.nextafter(1.0, 2.0)]


def bits(value: float) -> bytes:
    return struct.pack(">d", value)


def same(a: Any, b: Any) -> bool:
    """Bit-exact, type-exact equality for floats (NaN == NaN, -0.0 != 0.0), recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or bits(a) == bits(b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def through_json(data: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(data, allow_nan=False))
    return loaded


def assert_trials_same(a: TrialRecord, b: TrialRecord) -> None:
    assert a.number == b.number
    assert a.state == b.state
    assert same(dict(a.params), dict(b.params))
    assert same(a.values, b.values)
    assert same(dict(a.intermediate_values), dict(b.intermediate_values))
    assert a.error == b.error
    assert a.duration_s == b.duration_s


def test_same_helper_is_bit_exact() -> None:
    assert same(math.nan, math.nan)
    assert not same(-0.0, 0.0)
    assert not same(1, 1.0)
    assert not same((1.0,), (math.nextafter(1.0, 2.0),))


@pytest.mark.parametrize("value", SPECIAL)
def test_float_encoding_round_trips_bit_exact(value: float) -> None:
    restored = decode_float(json.loads(json.dumps(encode_float(value), allow_nan=False)))
    assert same(restored, value)


def test_nonfinite_floats_travel_as_strings() -> None:
    assert encode_float(math.nan) == "NaN"
    assert encode_float(math.inf) == "Infinity"
    assert encode_float(-math.inf) == "-Infinity"
    assert same(encode_float(-0.0), -0.0)


@pytest.mark.parametrize("bad", ["nan", "inf", "1.0", "", True, None, [1.0]])
def test_decode_float_rejects_non_numbers(bad: Any) -> None:
    with pytest.raises(ValueError, match="not a number"):
        decode_float(bad)


def test_decode_float_accepts_ints() -> None:
    assert same(decode_float(3), 3.0)


def rich_trial() -> TrialRecord:
    return TrialRecord(
        number=7,
        state="COMPLETE",
        params={
            "neg_zero": -0.0,
            "tiny": 5e-324,
            "third": 1 / 3,
            "nan": math.nan,
            "inf": math.inf,
            "ninf": -math.inf,
            "n": 3,
            "big": 2**53 + 1,
            "opt": "adam",
            "flag": False,
            "none": None,
        },
        values=(-0.0, 5e-324, math.nan, math.inf, -math.inf, 0.1),
        intermediate_values={10: -0.0, 2: 5e-324, 0: math.nan, 1: math.inf, 3: -math.inf},
        user_attrs={"note": "hi", "k": 2},
        error=None,
        duration_s=0.25,
    )


def test_trial_round_trip_is_bit_exact() -> None:
    original = rich_trial()
    data = original.to_dict()
    restored = TrialRecord.from_dict(through_json(data))
    assert_trials_same(restored, original)
    assert isinstance(restored.values, tuple)
    assert dict(restored.user_attrs) == {"note": "hi", "k": 2}


def test_trial_to_dict_is_strict_json() -> None:
    data = rich_trial().to_dict()
    text = json.dumps(data, allow_nan=False)
    loaded = json.loads(text)
    assert loaded["values"][2:5] == ["NaN", "Infinity", "-Infinity"]
    assert loaded["params"]["nan"] == {"$float": "NaN"}
    assert loaded["params"]["ninf"] == {"$float": "-Infinity"}
    assert loaded["intermediate_values"]["1"] == "Infinity"


def test_intermediate_steps_come_back_as_ints_in_step_order() -> None:
    original = rich_trial()
    data = through_json(original.to_dict())
    assert list(data["intermediate_values"]) == ["0", "1", "2", "3", "10"]
    restored = TrialRecord.from_dict(data)
    assert all(type(step) is int for step in restored.intermediate_values)
    assert sorted(restored.intermediate_values) == [0, 1, 2, 3, 10]
    assert same(restored.intermediate_values[10], -0.0)
    assert same(restored.intermediate_values[2], 5e-324)


def test_failed_trial_round_trip() -> None:
    original = TrialRecord(number=0, state="FAIL", params={}, values=None, error="ValueError: boom")
    restored = TrialRecord.from_dict(through_json(original.to_dict()))
    assert_trials_same(restored, original)
    assert restored.values is None
    assert dict(restored.intermediate_values) == {}


def test_string_param_that_looks_like_a_nonfinite_float_round_trips() -> None:
    original = TrialRecord(0, "COMPLETE", {"fill": "NaN", "pad": "-Infinity"}, (1.0,))
    restored = TrialRecord.from_dict(through_json(original.to_dict()))
    assert same(dict(restored.params), {"fill": "NaN", "pad": "-Infinity"})


def rich_run(directions: tuple[str, ...] = ("minimize",)) -> RunRecord:
    n_obj = len(directions)
    trials = (
        TrialRecord(0, "COMPLETE", {"x": -0.0}, (-0.0,) * n_obj, {0: -0.0}),
        TrialRecord(1, "COMPLETE", {"x": 5e-324}, (5e-324,) * n_obj, {0: math.nan}),
        TrialRecord(2, "PRUNED", {"x": 0.5}, None, {0: math.inf, 1: -math.inf}),
        TrialRecord(3, "FAIL", {"x": 0.75}, None, error="RuntimeError: nope"),
    )
    return RunRecord(
        index=2,
        seed=123,
        status="ok",
        trials=trials,
        directions=directions,
        error=None,
        wall_s=1.5,
        environment={"python": "3.11"},
        notes=("torch not installed",),
    )


@pytest.mark.parametrize("directions", [("minimize",), ("maximize",), ("minimize", "maximize")])
def test_run_round_trip_is_bit_exact(directions: tuple[str, ...]) -> None:
    original = rich_run(directions)
    environment = {"host": "x"}
    restored = RunRecord.from_dict(through_json(original.to_dict()), environment)
    assert (restored.index, restored.seed, restored.status) == (2, 123, "ok")
    assert restored.directions == directions
    assert restored.error is None
    assert restored.wall_s == 1.5
    assert restored.notes == ("torch not installed",)
    assert restored.environment == environment
    assert len(restored.trials) == len(original.trials)
    for a, b in zip(restored.trials, original.trials, strict=True):
        assert_trials_same(a, b)


def test_run_to_dict_best_fields_single_objective() -> None:
    data = through_json(rich_run().to_dict())
    # -0.0 < 5e-324, so trial 0 is the best, and its sign survives
    assert same(data["best_value"], -0.0)
    assert same(data["best_params"], {"x": -0.0})
    assert "pareto_trials" not in data


def test_run_to_dict_best_value_nonfinite() -> None:
    record = RunRecord(0, 0, "ok", (TrialRecord(0, "COMPLETE", {"x": math.inf}, (-math.inf,)),))
    data = record.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["best_value"] == "-Infinity"
    assert data["best_params"] == {"x": {"$float": "Infinity"}}


def test_run_to_dict_without_best() -> None:
    record = RunRecord(1, 0, "crashed", (), error="worker died")
    data = through_json(record.to_dict())
    assert data["best_value"] is None
    assert data["best_params"] is None
    restored = RunRecord.from_dict(data, {})
    assert restored.trials == ()
    assert restored.error == "worker died"
    assert not restored.finished


def test_run_to_dict_multi_objective_pareto() -> None:
    trials = (
        TrialRecord(0, "COMPLETE", {"x": 0.0}, (1.0, math.inf)),
        TrialRecord(1, "COMPLETE", {"x": 1.0}, (2.0, 0.0)),
    )
    record = RunRecord(0, 0, "ok", trials, directions=("minimize", "maximize"))
    data = through_json(record.to_dict())
    assert data["pareto_trials"] == [0]
    assert data["best_values"] == [[1.0, "Infinity"]]
    assert data["best_params"] == [{"x": 0.0}]
    assert "best_value" not in data
    both_min = through_json(RunRecord(0, 0, "ok", trials, ("minimize", "minimize")).to_dict())
    assert both_min["pareto_trials"] == [0, 1]


def test_failure_kinds_ignore_memory_addresses() -> None:
    a = TrialRecord(1, "FAIL", {}, None, error="objective returned <Loss object at 0x7f31aa>")
    b = TrialRecord(1, "FAIL", {}, None, error="objective returned <Loss object at 0x7f64bb>")
    assert a.fail_kind == b.fail_kind and a.digest == b.digest


def test_an_interrupted_report_stays_interrupted_when_reloaded() -> None:
    runs = [RunRecord(i, 0, "ok", (trial(0, 1.0),)) for i in range(3)]
    built = report.build("run", CheckPlan(target="m:f"), "cpu", runs)
    import dataclasses

    stopped = dataclasses.replace(built, interrupted=True)
    again = report.RunReport.from_dict(json.loads(json.dumps(stopped.to_dict())))
    assert again.verdict == "interrupted" and again.exit_code == 130
