"""One vocabulary per concept (issue 10 item 5): every other list is derived from or checked
against ``repro_check.vocab``, so adding a member in one place cannot leave another behind."""

from __future__ import annotations

import json
from importlib import resources

import optuna
import pytest

from repro_check import vocab
from repro_check.checks import causes, compare
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
    assert compare.GATE is GATE  # type: ignore[attr-defined]
    assert sections.GATE is GATE  # type: ignore[attr-defined]
    assert tuple(Condition) == compare.CONDITIONS


def test_every_member_has_its_presentation() -> None:
    assert set(console.STYLE) == set(Verdict)
    assert set(sections.TITLES) == set(Condition)
    # markdown's icons cover the passing/failing verdicts; the rest fall back to a warning
    assert markdown.icon(Verdict.INCOMPLETE) == markdown.icon(Verdict.INTERRUPTED) == "⚠️"


def test_cause_ids_come_from_the_enum() -> None:
    assert tuple(CauseId) == causes.CAUSE_IDS
    assert {cause.id for cause, _ablation in causes.ABLATIONS.values()} <= set(CauseId)


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
    fix = causes.fix_for(CauseId.SAMPLER_SEED, ctx)
    # complete code: the import, and the study repro-check builds, its sampler seeded
    assert fix.splitlines()[1:] == [
        "import optuna",
        "",
        "study = optuna.create_study(sampler=optuna.samplers.CmaEsSampler(seed=7))",
    ]
    compile(fix, "fix", "exec")


def test_one_plan_key_list_derived_from_the_dataclasses() -> None:
    import dataclasses
    import inspect

    from repro_check import api
    from repro_check.plan import config
    from repro_check.plan.settings import CheckPlan, StudySettings, Tolerance

    study = {f.name for f in dataclasses.fields(StudySettings)}
    assert set(settings.STUDY_KEYS) == study
    assert set(settings.TOLERANCE_KEYS) == {"atol", "rtol"}
    # ``cap`` is not a key of its own: it is what ``trials`` means for a script; a notebook's
    # ``parameters`` come from ``-p`` alone (not a config key)
    not_keys = {"target", "study", "tolerance", "cap", "parameters"}
    own = {f.name for f in dataclasses.fields(CheckPlan)} - not_keys
    assert set(settings.CHECK_KEYS) == own
    assert {f.name for f in dataclasses.fields(Tolerance)} <= set(settings.PLAN_KEYS)
    # the config's validators cover exactly the plan's keys, nothing more, nothing less
    assert set(config.KEYS) == {*settings.PLAN_KEYS, "target"}
    # the API's keyword arguments are plan keys (plus the direction alias)
    params = set(inspect.signature(api.check).parameters) - {"objective", "direction"}
    assert params <= set(settings.PLAN_KEYS)


def test_plan_keys_reach_the_plan(tmp_path) -> None:
    from repro_check.plan.config import build_plan

    flags = {"n_jobs": 2, "stale_after": 30.0, "threads": 2, "atol": 0.5, "runs": 4}
    plan = build_plan("x.py:objective", flags, pyproject=False)
    assert (plan.study.n_jobs, plan.stale_after, plan.threads) == (2, 30.0, 2)
    assert (plan.tolerance.atol, plan.runs) == (0.5, 4)


def _interrupt_after_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from repro_check.checks import run as run_module
    from repro_check.execution.runner import Interrupted, JobResult
    from repro_check.results.records import RunRecord
    from repro_check.results.trial_record import TrialRecord

    def stopped(plan, device, jobs, on_progress=None, **kwargs):  # type: ignore[no-untyped-def]
        trial = TrialRecord(number=0, state="COMPLETE", params={"x": 1.0}, values=(0.5,))
        done = RunRecord(index=0, seed=plan.seed, status=RunStatus.OK, trials=(trial,))
        raise Interrupted([JobResult(jobs[0], [done])])

    monkeypatch.setattr(run_module, "run_replicates", stopped)


def test_interrupted_check_carries_the_report_the_core_built(monkeypatch) -> None:
    # the CLI used to build the partial report itself from an attribute set on the exception
    from repro_check.checks.run import run_check
    from repro_check.plan.settings import CheckPlan
    from repro_check.results.report import CheckInterrupted

    _interrupt_after_one_run(monkeypatch)
    plan = CheckPlan(target="x.py:objective", study=StudySettings(trials=1), device="cpu")
    with pytest.raises(CheckInterrupted) as stop:
        run_check(plan)
    partial = stop.value.report
    assert partial is not None
    assert partial.interrupted and partial.verdict is Verdict.INTERRUPTED
    assert partial.device == "cpu"
    assert [run.index for run in partial.runs] == [0]
    assert not hasattr(stop.value, "device")


def test_saved_settings_keys_are_the_plans_report_keys() -> None:
    # validate's key lists must name exactly what CheckPlan.to_dict writes
    from repro_check.plan.settings import CheckPlan
    from repro_check.results import validate

    written = set(CheckPlan(target="x.py:objective").to_dict("cpu"))
    checked = {
        *validate.SETTING_KEYS,
        *validate.NULLABLE_SETTING_KEYS,
        *validate.SCRIPT_SETTING_KEYS,  # script mode's args and cap
        "controls",
        "tolerance",
    }
    assert checked == written


def test_cli_help_lists_the_registered_samplers_and_pruners() -> None:
    from typer.testing import CliRunner

    from repro_check.cli import app

    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "300"})
    text = "".join(result.output.split())  # rich wraps the help column
    assert ",".join(Sampler) + ",orpkg.mod:factory" in text
    assert ",".join(Pruner) + "[default:none;" in text


def test_saved_control_names_are_the_controls_fields() -> None:
    """A saved report's ``settings.controls`` keys are typed by a Literal in results/saved.py
    (a new control must be readable back): pinned to ``Controls``' fields."""
    import typing

    from repro_check.plan.settings import Controls
    from repro_check.results.saved import ControlName

    assert typing.get_args(ControlName) == Controls.names()
