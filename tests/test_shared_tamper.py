"""Issue item 4.2: reading a shared check back, each replicate's stored result must be the
trials its own study holds. The result is one study attribute anyone with the storage can
overwrite; copied from another replicate, it made a non-reproducible check pass."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import cli, fixture
from factories import run, trial

from repro_check.checks.shared import _cross_checked, _mismatch
from repro_check.results.records import SamplerInfo, StudyRecord
from repro_check.storage.store import Loaded, script_study_name, study_name


def test_a_result_matches_its_study_as_the_storage_keeps_floats() -> None:
    recorded = [trial(0, -0.0), trial(1, None, state="FAIL"), trial(2, 2.0)]
    stored = [trial(0, 0.0), trial(1, None, state="FAIL"), trial(2, 2.0)]  # SQLite: -0.0 -> 0.0
    assert _mismatch(recorded, stored, complete=True) is None
    assert (
        _mismatch([trial(0, 1.0, iv={0: math.nan})], [trial(0, 1.0, iv={0: math.nan})], True)
        is None
    )


def test_each_way_a_result_can_part_from_its_study() -> None:
    ours = [trial(0, 1.0), trial(1, 2.0)]
    assert "trial 1's values" in (_mismatch(ours, [trial(0, 1.0), trial(1, 3.0)], True) or "")
    other = [trial(0, 1.0), trial(1, 2.0, params={"x": 0.7})]
    assert "trial 1's params" in (_mismatch(ours, other, True) or "")
    pruned = [trial(0, 1.0), trial(1, None, state="PRUNED")]
    assert "trial 1's state" in (_mismatch(ours, pruned, True) or "")
    steps = [trial(0, 1.0, iv={1: 0.5}), trial(1, 2.0)]
    assert "intermediate values" in (_mismatch(ours, steps, True) or "")
    assert "not in the study" in (_mismatch(ours, ours[:1], True) or "")
    assert "not in the result" in (_mismatch(ours[:1], ours, True) or "")
    # a replicate that stopped early may have told its study a trial it never reported, and
    # the study need not hold what it reported (a crash before the copy); never a different one
    assert _mismatch(ours[:1], ours, complete=False) is None
    assert _mismatch(ours, [], complete=False) is None
    assert _mismatch(ours, [trial(0, 5.0)], complete=False) is not None


def _storage_with(studies: dict[str, list[float]]) -> Any:
    import optuna

    storage = optuna.storages.InMemoryStorage()
    for name, values in studies.items():
        study = optuna.create_study(study_name=name, storage=storage)
        for value in values:
            study.add_trial(
                optuna.trial.create_trial(
                    params={"x": 0.5},
                    distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
                    value=value,
                )
            )
    return storage


def _store(storage: Any) -> Any:
    return SimpleNamespace(
        name="c", storage=storage, _guard=lambda what, exc: RuntimeError(what), url="mem"
    )


def test_a_replicate_whose_result_is_another_replicates_is_crashed() -> None:
    storage = _storage_with({study_name("c", 0): [1.0, 2.0], study_name("c", 1, 1): [1.0, 3.0]})
    honest = run(0, [trial(0, 1.0), trial(1, 2.0)])
    copied = run(1, [trial(0, 1.0), trial(1, 2.0)])  # replicate 0's result, in replicate 1
    loaded = Loaded([honest, copied], [], [], {0: {"attempt": 0}, 1: {"attempt": 1}})
    first, second = _cross_checked(_store(storage), loaded)
    assert first == honest
    assert second.status == "crashed"
    assert "does not match the trials stored in its own study" in (second.error or "")
    assert "c/run-1/attempt-1" in (second.error or "")
    assert [t.values for t in second.trials] == [(1.0,), (3.0,)]  # its own study's


def test_a_script_replicate_is_checked_study_by_study() -> None:
    claimed = study_name("c", 0)
    storage = _storage_with(
        {claimed: [], script_study_name(claimed, 0): [1.0], script_study_name(claimed, 1): [4.0]}
    )
    sampler = SamplerInfo("TPESampler", None)
    honest = (trial(0, 1.0),)
    studies = (
        StudyRecord("a", ("minimize",), sampler, honest),
        StudyRecord("b", ("minimize",), sampler, (trial(0, 5.0),)),
    )
    replicate = dataclasses.replace(run(0, list(honest)), studies=studies)
    loaded = Loaded([replicate], [], [], {0: {}})
    (checked,) = _cross_checked(_store(storage), loaded)
    assert checked.status == "crashed" and f"{claimed}/study-1" in (checked.error or "")
    assert [s.trials[0].values for s in checked.studies] == [(1.0,), (4.0,)]


@pytest.mark.e2e
def test_report_storage_does_not_pass_a_check_whose_result_was_copied(tmp_path: Path) -> None:
    """End to end on SQLite: replicate 0's stored result copied into replicate 1 (optuna's
    storage API) made the two agree, and ``report --storage`` exited 0."""
    import optuna

    url, name = f"sqlite:///{tmp_path / 'check.db'}", "tampered"
    ran = cli(
        "run", fixture("private_rng"), "--trials", "3", "--runs", "2",
        "--storage", url, "--name", name,
    )  # fmt: skip
    assert ran.code == 1, ran.out + ran.err  # an OS-seeded RNG: never reproducible
    storage = optuna.storages.RDBStorage(url)
    source = storage.get_study_id_from_name(study_name(name, 0))
    target = storage.get_study_id_from_name(study_name(name, 1))
    result = storage.get_study_user_attrs(source)["repro_check_result"]
    storage.set_study_user_attr(target, "repro_check_result", result)
    reported = cli("report", "--storage", url, "--name", name, json_path=tmp_path / "r.json")
    assert reported.code != 0, reported.out + reported.err
    runs = reported.report["runs"]
    assert runs[1]["status"] == "crashed"
    assert "does not match the trials stored in its own study" in runs[1]["error"]
    assert reported.report["verdict"] != "reproducible"
