"""One vocabulary per concept (issue 10 item 5): every other list is derived from or checked
against ``repro_check.vocab``, so adding a member in one place cannot leave another behind."""

from __future__ import annotations

import json
from importlib import resources

import optuna
import pytest

from repro_check import vocab
from repro_check.checks import causes, compare
from repro_check.checks.diagnose import CONTROL_EXPERIMENTS
from repro_check.execution.worker import make_pruner, make_sampler
from repro_check.plan import settings
from repro_check.plan.settings import StudySettings
from repro_check.render import console, markdown, sections
from repro_check.results import records, report
from repro_check.vocab import GATE, CauseId, Condition, Pruner, RunStatus, Sampler, Verdict


def _schema() -> dict:
    text = resources.files("repro_check.results").joinpath("report.schema.json").read_text()
    return json.loads(text)["definitions"]


def test_schema_lists_exactly_the_vocabularies() -> None:
    schema = _schema()
    assert schema["run"]["properties"]["status"]["enum"] == list(RunStatus)
    assert schema["run_report"]["properties"]["verdict"]["enum"] == list(Verdict)
    conditions = schema["compare_report"]["properties"]["conditions"]["propertyNames"]["enum"]
    assert conditions == list(Condition)


def test_members_serialize_as_their_plain_strings() -> None:
    # JSON output stays byte-identical: a member is written as its value, never as "Verdict.X"
    assert json.dumps([Verdict.NOT_REPRODUCIBLE, RunStatus.OK]) == '["not reproducible", "ok"]'
    assert f"{Condition.FIXED_SEED}" == "fixed_seed"
    assert str(Sampler.TPE) == "tpe"


def test_old_constant_names_are_the_enum_members() -> None:
    assert records.STATUS_OK is RunStatus.OK
    assert records.STATUS_CANCELLED is RunStatus.CANCELLED
    assert report.VERDICT_REPRODUCIBLE is Verdict.REPRODUCIBLE
    assert report.VERDICT_INTERRUPTED is Verdict.INTERRUPTED


def test_one_gate() -> None:
    assert GATE is Condition.FIXED_SEED
    assert compare.GATE is GATE
    assert sections.GATE is GATE
    assert tuple(Condition) == compare.CONDITIONS


def test_every_member_has_its_presentation() -> None:
    assert set(console.STYLE) == set(Verdict)
    assert set(sections.TITLES) == set(Condition)
    # markdown's icons cover the passing/failing verdicts; the rest fall back to a warning
    assert markdown.icon(Verdict.INCOMPLETE) == markdown.icon(Verdict.INTERRUPTED) == "⚠️"


def test_cause_ids_come_from_the_enum() -> None:
    assert tuple(CauseId) == causes.CAUSE_IDS
    assert {cause for cause, _off, _what in CONTROL_EXPERIMENTS.values()} <= set(CauseId)


def test_sampler_registry_covers_every_sampler_and_names_real_classes() -> None:
    assert set(vocab.SAMPLERS) == set(Sampler)
    assert tuple(Sampler) == settings.SAMPLERS
    for spec in vocab.SAMPLERS.values():
        assert isinstance(getattr(optuna.samplers, spec.optuna_class), type)
    assert vocab.sampler_spec("tpe") is vocab.SAMPLERS[Sampler.TPE]
    assert vocab.sampler_spec("pkg.mod:factory") is None


def test_pruner_registry_covers_every_pruner_and_names_real_classes() -> None:
    assert set(vocab.PRUNERS) == set(Pruner)
    assert tuple(Pruner) == settings.PRUNERS
    for name in vocab.PRUNERS.values():
        assert isinstance(getattr(optuna.pruners, name), type)


@pytest.mark.parametrize("sampler", [s for s in Sampler if s is not Sampler.GRID])
def test_worker_builds_each_sampler_from_the_registry(sampler: Sampler) -> None:
    built = make_sampler(StudySettings(sampler=sampler), seed=0)
    assert type(built).__name__ == vocab.SAMPLERS[sampler].optuna_class


def test_worker_builds_pruners_from_the_registry() -> None:
    assert type(make_pruner(StudySettings(pruner="median"))).__name__ == "MedianPruner"
    hyperband = make_pruner(StudySettings(pruner="hyperband"))
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)


def test_sampler_seed_fix_names_the_registered_class() -> None:
    ctx = causes.FixContext(StudySettings(sampler="cmaes"), seed=7, target="x.py:objective")
    assert causes.fix_for(CauseId.SAMPLER_SEED, ctx) == (
        "sampler = optuna.samplers.CmaEsSampler(seed=7)"
    )
