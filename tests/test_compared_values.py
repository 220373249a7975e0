"""Values the objective stores as objects are compared by their numbers, never a printed form
that rounds or elides them; timing and identity attributes Optuna or its integrations write are
not compared (issue 19, item 2; the review's false passes)."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from conftest import FIXTURES, cli

from repro_check.json_values import stable_name, to_json_safe
from repro_check.results.records import SamplerInfo, StudyRecord
from repro_check.results.studies import study_difference
from repro_check.results.trial_record import TrialRecord


def _record(**user_attrs: object) -> TrialRecord:
    return TrialRecord(0, "COMPLETE", {"x": 0.5}, (1.0,), user_attrs=user_attrs)


def test_arrays_in_user_attrs_are_compared_by_their_numbers() -> None:
    # was: repr() printed 8 digits: two arrays 1e-12 apart were one attribute, "reproducible"
    a = _record(losses=np.array([0.5488135, 1.09762701]))
    b = _record(losses=np.array([0.5488135, 1.09762701]) + 1e-12)
    assert a.digest != b.digest
    assert _record(t=torch.tensor([1.0, 2.0])).digest != _record(t=torch.tensor([1.0, 2.5])).digest
    big = np.zeros(20_000)
    changed = big.copy()
    changed[-1] = 1e-300  # past the part numpy prints
    assert _record(big=big).digest != _record(big=changed).digest


def test_a_set_attribute_reads_the_same_in_any_hash_order() -> None:
    assert to_json_safe({"gamma", "alpha", "beta"}) == ["alpha", "beta", "gamma"]


def test_lambdas_are_told_apart_by_their_line() -> None:
    first = lambda x: x  # noqa: E731
    second = lambda x: x  # noqa: E731
    assert stable_name(first) != stable_name(second)
    assert "0x" not in stable_name(first)


def test_artifact_ids_and_tuner_timings_are_not_compared() -> None:
    def frozen(uuid: str, elapsed: float) -> optuna.trial.FrozenTrial:
        now = datetime.datetime.now()
        return optuna.trial.FrozenTrial(
            number=0,
            state=optuna.trial.TrialState.COMPLETE,
            value=1.0,
            datetime_start=now,
            datetime_complete=now,
            params={},
            distributions={},
            user_attrs={},
            system_attrs={
                f"artifacts:{uuid}": {"artifact_id": uuid},
                "lightgbm_tuner:elapsed_secs": elapsed,
                "kept": 1,
            },
            intermediate_values={},
            trial_id=0,
        )

    a = TrialRecord.from_frozen(frozen("1f2e", 0.5))
    b = TrialRecord.from_frozen(frozen("9c3a", 0.7))
    assert a.digest == b.digest and a.system_attrs == {"kept": 1}


@pytest.mark.e2e
def test_a_study_attribute_that_differs_makes_the_run_not_reproducible(tmp_path: Path) -> None:
    # was: study.set_user_attr was never recorded: every trial agreed, "reproducible"
    result = cli(
        "run", str(FIXTURES / "scripts" / "study_attr_noise.py"), "--runs", "2", cwd=tmp_path
    )  # fmt: skip
    assert result.code == 1, result.out + result.err
    assert "split_seed" in result.out


def test_a_pandas_attribute_keeps_its_labels() -> None:
    # was: to_numpy() dropped the index: the same numbers under other labels compared equal
    a = _record(w=pd.Series([1.0, 2.0], index=["alpha", "beta"]))
    b = _record(w=pd.Series([1.0, 2.0], index=["beta", "alpha"]))
    assert a.digest != b.digest
    frame = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    assert _record(f=frame).digest != _record(f=frame.rename(columns={"x": "z"})).digest


def test_values_numpy_or_torch_cannot_read_are_named_not_a_crash() -> None:
    # was: longdouble.item() is a longdouble (endless recursion), a meta tensor's tolist raised
    assert "0.1" in str(to_json_safe(np.longdouble("0.1")))
    assert _record(m=torch.empty(3, device="meta")).digest is not None
    masked = np.ma.masked_array([1.0, 2.0], mask=[False, True])
    assert _record(m=masked).digest != _record(m=np.ma.masked_array([1.0, 2.0])).digest


def test_study_attributes_compare_exactly_by_type() -> None:
    def study(value: object) -> StudyRecord:
        return StudyRecord("s", ("minimize",), SamplerInfo("TPESampler"), user_attrs={"k": value})

    assert study_difference(0, study(1), study(1.0), "run 0", "run 1") is not None
    assert study_difference(0, study(True), study(1), "run 0", "run 1") is not None
    assert study_difference(0, study(-0.0), study(0.0), "run 0", "run 1") is not None
    assert study_difference(0, study(2.5), study(2.5), "run 0", "run 1") is None
    old = StudyRecord("s", ("minimize",), SamplerInfo("TPESampler"))  # saved before: None
    assert study_difference(0, old, study(1), "baseline", "now") is None


def test_every_compared_field_has_one_equality_and_one_description() -> None:
    """``FIELDS`` is the list the comparison walks; each field's rules sit in two tables that
    must name exactly those fields (a new field without a rule would raise mid-check)."""
    from repro_check.results import trial_fields

    assert tuple(trial_fields._EQUAL) == trial_fields.FIELDS
    assert tuple(trial_fields._DESCRIBE) == trial_fields.FIELDS
