"""The registry of causes (``checks/causes``): every ``CauseId`` has exactly one entry, every
entry declares its experiment, evidence, fix and location rule, and the diagnoses run exactly
the registry's ablations (so a new cause is its entry, not an edit of the flow). In process;
the fake runner (tests/fakes.py) stands in for the workers."""

from __future__ import annotations

from collections import Counter
from typing import Any

from conftest import FIXTURES, fixture
from fakes import FakeRunner, values

from repro_check.checks import causes
from repro_check.checks.causes import ABLATIONS, CAUSES, Finding, FixContext, StudyFacts
from repro_check.checks.diagnose import SCREENED, run_diagnose
from repro_check.execution.runner import Job
from repro_check.plan.config import build_plan
from repro_check.plan.settings import CheckPlan, Controls, StudySettings
from repro_check.results.comparison import Divergence
from repro_check.results.diagnosis import Experiment, NoiseProbe
from repro_check.results.resume import ResumeCheck
from repro_check.vocab import CauseId


def _plan(target: str = fixture("deterministic"), **flags: Any) -> CheckPlan:
    return build_plan(target, {"trials": 4, "device": "cpu", **flags}, pyproject=False)


def test_each_cause_id_has_exactly_one_registry_entry() -> None:
    counts = Counter(cause.id for cause in CAUSES)
    assert set(counts) == set(CauseId)
    assert all(n == 1 for n in counts.values()), counts
    assert all(causes.known(cause_id).id == cause_id for cause_id in CauseId)


def test_every_entry_declares_its_experiment_evidence_fix_and_location_rule() -> None:
    names = set(Controls.names())
    for cause in CAUSES:
        assert isinstance(cause.id, CauseId)
        assert cause.detected_by.strip(), cause.id
        assert callable(cause.evidence) and callable(cause.fix) and callable(cause.location)
        for ablation in cause.ablations:
            assert ablation.id.startswith("no_") and ablation.what.strip()
            assert ablation.off and set(ablation.off) <= names, ablation
            assert not any(getattr(ablation.controls, name) for name in ablation.off)
    ids = [a.id for cause in CAUSES for a in cause.ablations]
    assert len(ids) == len(set(ids)) == len(ABLATIONS)
    assert set(SCREENED) <= set(ABLATIONS)


def _finding(cause_id: CauseId, script: bool) -> Finding:
    """A finding with the facts that cause's rules read."""
    divergence = Divergence(2, "values", (0, 1), 1e-3, 2e-3, "value 0.5 vs 0.501 (run 0 vs 1)")
    experiment = Experiment("x", "x", Controls(), "not reproducible", divergence, ())
    target = "train.py" if script else "train.py:objective"
    context = FixContext(StudySettings(trials=7), 3, target, script=script)
    cause = causes.known(cause_id)
    facts: dict[str, Any] = {"ablation": cause.ablations[0] if cause.ablations else None}
    if cause_id == CauseId.TORCH_DETERMINISM:
        facts = {"ops": ("index_add_cuda_",), "refused": "no deterministic implementation"}
    if cause_id == CauseId.OBJECTIVE_NOISE and not script:
        facts["probe"] = NoiseProbe({"x": 1.0}, 2, (0.5, 0.501, 0.5), 3)
    if cause_id in (CauseId.RESUME_STATE, CauseId.RESUME_SAMPLER_STATE):
        resume = ResumeCheck(2, (), True, True, divergence, "resumed", "a cache", "reset it")
        facts["resume"] = resume
    return Finding(experiment, context, 2, **facts)


def test_every_cause_words_its_evidence_and_fix_for_objectives_and_scripts() -> None:
    for cause in CAUSES:
        for script in (False, True):
            found = cause.found(_finding(cause.id, script))
            assert found.id == cause.id and found.trial == 2
            assert found.evidence.strip() and found.fix.strip(), (cause.id, script)


def test_parallel_trials_has_one_fix_rule_for_objectives_and_scripts() -> None:
    """Once two texts (``lab.fix`` for objectives, an inline string for scripts): now one
    rule. An objective's fix names the study's trial count; a script's own ``optimize`` call
    sets its count, which the plan does not know: its fix is an edit of that line (issue 22,
    tests/test_diagnose_library_rng.py), or words where the line cannot be found, never a
    ``...`` placeholder."""
    objective = causes.known(CauseId.PARALLEL_TRIALS).found(
        _finding(CauseId.PARALLEL_TRIALS, False)
    )
    script = causes.known(CauseId.PARALLEL_TRIALS).found(_finding(CauseId.PARALLEL_TRIALS, True))
    assert "\nstudy.optimize(objective, n_trials=7, n_jobs=1)\n" in objective.fix
    assert script.edit is None  # no such script to read
    assert script.fix.startswith("# ") and "pass n_jobs=1" in script.fix
    assert "..." not in objective.fix + script.fix


def test_ablations_worth_running_follow_the_study() -> None:
    def ids(**facts: Any) -> list[str]:
        given = {"script": False, "torch_used": False, "device": "cpu"}
        given["global_streams_used"] = True
        return [a.id for a in causes.ablations(StudyFacts(**{**given, **facts}))]

    plain = ["no_sampler_seed", "no_global_rng", "no_trial_reseed", "no_hash_seed", "no_threads"]
    assert ids() == plain
    assert ids(torch_used=True) == [*plain, "no_torch_determinism"]
    assert ids(torch_used=True, device="cuda") == [*plain, "no_torch_determinism", "no_cudnn"]
    # an objective that never touched a global stream cannot depend on its seeding; a
    # script's own body is not audited, so a script always gets those ablations
    assert "no_global_rng" not in ids(global_streams_used=False)
    assert "no_global_rng" in ids(global_streams_used=False, script=True)


def _ablations_run(runner: FakeRunner) -> set[str]:
    return {group for group in runner.groups() if group in ABLATIONS}


def test_a_script_diagnosis_runs_exactly_the_registry_ablations() -> None:
    def script(job: Job) -> list[float]:  # reproducible only with the sampler seed
        return values(job, shift=0.0 if job.controls.sampler_seed else job.index * 1e-3)

    runner = FakeRunner(script, environment={"torch": "2.1"})
    plan = _plan(str(FIXTURES / "scripts" / "seeded42.py"))
    diagnosis = run_diagnose(plan, runner=runner)
    facts = StudyFacts(script=True, torch_used=True, device="cpu", global_streams_used=True)
    assert _ablations_run(runner) == {a.id for a in causes.ablations(facts)}
    assert [c.id for c in diagnosis.causes] == ["sampler_seed"]


def test_an_objective_diagnosis_runs_the_registry_ablations_screening_two() -> None:
    """The screen (hash seed and threads off together) parts: every registered ablation
    runs, the two screened ones apart; the registry's entry words each cause found."""

    def script(job: Job) -> list[float]:
        return values(job, shift=0.0 if job.controls.threads else job.index * 1e-9)

    runner = FakeRunner(script)
    diagnosis = run_diagnose(_plan(), runner=runner)
    facts = StudyFacts(script=False, torch_used=False, device="cpu", global_streams_used=True)
    assert _ablations_run(runner) == {a.id for a in causes.ablations(facts)}
    (threads,) = diagnosis.causes
    experiment = next(e for e in diagnosis.experiments if e.id == "no_threads")
    plan = _plan()
    context = FixContext(plan.study, plan.seed, plan.target)
    finding = Finding(experiment, context, threads.trial, ablation=ABLATIONS["no_threads"][1])
    assert threads == causes.known(CauseId.THREADS).found(finding)
