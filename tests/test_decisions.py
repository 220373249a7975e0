"""The checks' decisions, in process: a ``FakeRunner`` (tests/fakes.py) stands in for the worker
processes and scripts what each experiment's runs stream, so each test proves one decision of
``diagnose``, ``run`` or ``compare`` (which experiments run, which cause, verdict or warning)
without starting a process."""

from __future__ import annotations

import dataclasses
from typing import Any

from conftest import FIXTURES, fixture
from fakes import FakeRunner, crashed, parted, run_of, trials_of, values

from repro_check.checks.compare import run_compare
from repro_check.checks.diagnose import run_diagnose
from repro_check.checks.run import run_check
from repro_check.execution.runner import Job, JobResult
from repro_check.plan.config import build_plan
from repro_check.plan.settings import CheckPlan, Controls
from repro_check.results.records import STATUS_ERROR
from repro_check.results.report import (
    VERDICT_INCOMPLETE,
    VERDICT_NOT_REPRODUCIBLE,
    VERDICT_REPRODUCIBLE,
)
from repro_check.vocab import GATE, Condition

OBJECTIVE = fixture("deterministic")
"""Never loaded: the fake runner says what it would stream."""


def _plan(target: str = OBJECTIVE, **flags: Any) -> CheckPlan:
    return build_plan(target, {"trials": 4, "device": "cpu", **flags}, pyproject=False)


def _experiments(diagnosis: Any) -> dict[str, Any]:
    return {e.id: e for e in diagnosis.experiments}


# -- diagnose


def test_diagnose_names_the_sampler_seed_and_full_control_is_witnessed() -> None:
    """Deterministic but without the sampler seed: that is the one cause, and the hash-seed
    pair, which agreed with full control's run 0, is full control's witness."""

    def script(job: Job) -> list[float]:
        if not job.controls.sampler_seed:
            return parted(job, at=1, shift=job.index * 1e-3)
        return values(job)

    runner = FakeRunner(script)
    diagnosis = run_diagnose(_plan(), runner=runner)
    experiments = _experiments(diagnosis)
    assert [c.id for c in diagnosis.causes] == ["sampler_seed"]
    assert diagnosis.causes[0].trial == 1
    assert diagnosis.reproducible_under_full_control and not diagnosis.incomplete
    full, pair = experiments["full_control"], experiments["no_hash_seed"]
    assert full.verdict == pair.verdict == VERDICT_REPRODUCIBLE
    assert full.witness == "no_hash_seed" and pair.reference == "full_control"
    assert experiments["no_sampler_seed"].verdict == VERDICT_NOT_REPRODUCIBLE
    assert experiments["process_state"].verdict == VERDICT_REPRODUCIBLE
    assert "no_hash_seed_threads" not in experiments and "no_threads" not in experiments
    # the pair ran with the shell's hash seed and thread counts, every other control on
    pair_jobs = [j for j in runner.groups()["full_control"] if not j.controls.hash_seed]
    assert pair_jobs and all(not j.controls.threads and j.controls.sampler_seed for j in pair_jobs)


def test_diagnose_threads_that_change_numbers_deterministically_are_a_warning() -> None:
    """Every run without pinned threads gives value + 1e-12, the same in all of them: the
    pair parts from full control, yet each control off alone reproduces. No cause; the
    warning says the results follow the thread count."""

    def script(job: Job) -> list[float]:
        return values(job, shift=0.0 if job.controls.threads else 1e-12)

    diagnosis = run_diagnose(_plan(), runner=FakeRunner(script))
    experiments = _experiments(diagnosis)
    assert diagnosis.causes == ()
    assert diagnosis.reproducible_under_full_control
    assert experiments["no_hash_seed_threads"].verdict == VERDICT_NOT_REPRODUCIBLE
    assert experiments["no_hash_seed"].verdict == VERDICT_REPRODUCIBLE
    assert experiments["no_threads"].verdict == VERDICT_REPRODUCIBLE
    assert experiments["full_control"].witness is None  # its own replicates, after the split
    assert experiments["full_control"].verdict == VERDICT_REPRODUCIBLE
    assert any("follow the thread count" in w for w in diagnosis.warnings), diagnosis.warnings


def test_diagnose_says_when_a_split_control_could_not_be_tested() -> None:
    """The pair parts, and the ``no_threads`` runs then crash: never a silent pass over
    threads (the second review's finding)."""

    def script(job: Job) -> list[float] | JobResult:
        if job.group == "no_threads":
            return crashed(job)
        return values(job, shift=0.0 if job.controls.threads else 1e-12)

    diagnosis = run_diagnose(_plan(), runner=FakeRunner(script))
    assert _experiments(diagnosis)["no_threads"].verdict == VERDICT_INCOMPLETE
    assert any("no_threads run could not finish" in w for w in diagnosis.warnings)


def test_diagnose_threads_that_differ_run_to_run_are_a_cause() -> None:
    """Without pinned threads every run computes its own numbers: ``threads`` is a cause and
    no thread-count warning is given."""

    def script(job: Job) -> list[float]:
        return values(job, shift=0.0 if job.controls.threads else job.index * 1e-9)

    diagnosis = run_diagnose(_plan(), runner=FakeRunner(script))
    experiments = _experiments(diagnosis)
    assert [c.id for c in diagnosis.causes] == ["threads"]
    assert experiments["no_threads"].verdict == VERDICT_NOT_REPRODUCIBLE
    assert experiments["no_hash_seed"].verdict == VERDICT_REPRODUCIBLE
    assert not any("follow the thread count" in w for w in diagnosis.warnings)


def test_diagnose_stops_each_experiment_at_its_first_divergence() -> None:
    """The stop rule reaches the runner: a run parting at trial 1 is cut there."""

    def script(job: Job) -> list[float]:
        if not job.controls.sampler_seed:
            return parted(job, at=1, shift=job.index * 1e-3)
        return values(job)

    diagnosis = run_diagnose(_plan(), runner=FakeRunner(script))
    no_seed = _experiments(diagnosis)["no_sampler_seed"]
    assert no_seed.stopped_early and len(no_seed.runs[1].trials) == 2


# -- run


def test_run_verdicts() -> None:
    agree = run_check(_plan(runs=3), runner=FakeRunner(values))
    assert agree.verdict == VERDICT_REPRODUCIBLE and agree.exit_code == 0

    def one_differs(job: Job) -> list[float]:
        return parted(job, at=2, shift=1e-9) if job.index == 2 else values(job)

    differs = run_check(_plan(runs=3), runner=FakeRunner(one_differs))
    assert differs.verdict == VERDICT_NOT_REPRODUCIBLE
    assert differs.comparison.divergence is not None
    assert differs.comparison.divergence.trial == 2

    def one_crashes(job: Job) -> Any:
        return crashed(job, values(job)[:2]) if job.index == 1 else values(job)

    broken = run_check(_plan(runs=3), runner=FakeRunner(one_crashes))
    assert broken.verdict == VERDICT_INCOMPLETE


def test_run_fail_fast_hands_the_runner_a_stop_rule() -> None:
    def one_differs(job: Job) -> list[float]:
        return parted(job, at=1, shift=1.0) if job.index == 1 else values(job)

    result = run_check(_plan(runs=3, fail_fast=True), runner=FakeRunner(one_differs))
    assert result.verdict == VERDICT_NOT_REPRODUCIBLE
    assert [r.status for r in result.runs] == ["ok", "cancelled", "cancelled"]


# -- compare


def test_compare_conditions_objective() -> None:
    """The gate runs under the plan's controls at one seed, the sweep over seeds S, S+1, ...,
    uncontrolled with no control; the exit code is the gate's."""
    plan = _plan(runs=2)

    def script(job: Job) -> list[float]:
        if job.group == Condition.UNCONTROLLED:
            return values(job, shift=job.index * 1e-3)
        return values(job, shift=job.seed * 1e-3 if job.group == Condition.SEED_SWEEP else 0.0)

    runner = FakeRunner(script)
    result = run_compare(plan, runner=runner)
    groups = runner.groups()
    assert [j.controls for j in groups[GATE]] == [plan.controls] * 2
    assert {j.seed for j in groups[GATE]} == {plan.seed}
    assert [j.seed for j in groups[Condition.SEED_SWEEP]] == [plan.seed, plan.seed + 1]
    assert [j.controls for j in groups[Condition.UNCONTROLLED]] == [Controls.none()] * 2
    assert result.conditions[GATE].verdict == VERDICT_REPRODUCIBLE
    assert result.conditions[Condition.UNCONTROLLED].verdict == VERDICT_NOT_REPRODUCIBLE
    assert result.exit_code == 0
    assert "fixed seeds remove all spread" in result.sentence
    # each condition's runs are numbered from 0, as in `run`
    assert [r.index for r in result.conditions[Condition.UNCONTROLLED].runs] == [0, 1]


def test_compare_gate_of_a_script_is_the_script_as_written() -> None:
    """A script's gate runs with no control (what `run` does), and its seed sweep, having no
    control that takes the seed, with every control."""
    plan = _plan(str(FIXTURES / "scripts" / "seeded42.py"), runs=2)
    assert plan.controls == Controls.none()
    runner = FakeRunner(values)
    result = run_compare(plan, runner=runner)
    groups = runner.groups()
    assert all(j.controls == Controls.none() and j.script is not None for j in groups[GATE])
    assert all(j.controls == Controls() for j in groups[Condition.SEED_SWEEP])
    assert result.conditions[GATE].plan.controls == Controls.none()
    assert result.exit_code == 0


def test_diagnose_noise_under_full_control_probes_the_objective_at_fixed_params() -> None:
    """Every run differs, whatever the controls: full control is not reproducible, so no
    control is ablated; the objective is evaluated at the first parted trial's params in fresh
    processes, and the noise it shows there is the cause."""

    def script(job: Job) -> list[float]:
        return values(job, shift=job.index * 1e-6)

    runner = FakeRunner(script)
    diagnosis = run_diagnose(_plan(), runner=runner)
    experiments = _experiments(diagnosis)
    assert [c.id for c in diagnosis.causes] == ["objective_noise"]
    assert not diagnosis.reproducible_under_full_control
    assert experiments["full_control"].verdict == VERDICT_NOT_REPRODUCIBLE
    assert not any(e.startswith("no_") and e != "no_hash_seed_threads" for e in experiments)
    probes = runner.groups()["noise_probe"]
    assert probes and all(j.fixed_params == {"x": 0.0} for j in probes)
    assert diagnosis.objective_noise is not None and diagnosis.objective_noise.noisy
    assert any("full control is not reproducible" in w for w in diagnosis.warnings)


def test_diagnose_is_incomplete_when_full_control_cannot_finish() -> None:
    runner = FakeRunner(lambda job: crashed(job, why="boom"))
    diagnosis = run_diagnose(_plan(), runner=runner)
    assert diagnosis.incomplete and diagnosis.exit_code != 0
    assert diagnosis.causes == ()
    assert any("full control could not finish" in w and "boom" in w for w in diagnosis.warnings)


def _no_sampler_seed_parts(job: Job) -> list[float]:
    """Deterministic but without the sampler seed (``deterministic.py``'s shape)."""
    if not job.controls.sampler_seed:
        return parted(job, at=0, shift=job.index * 1e-3)
    return values(job)


def test_diagnose_names_the_hash_seed_and_full_control_gets_its_own_replicates() -> None:
    """Without a fixed PYTHONHASHSEED every run orders a set its own way: the pair parts,
    full control runs replicates of its own (no witness), and only ``hash_seed`` is a cause."""

    def script(job: Job) -> list[float]:
        return values(job, shift=0.0 if job.controls.hash_seed else job.index * 1e-3)

    diagnosis = run_diagnose(_plan(), runner=FakeRunner(script))
    experiments = _experiments(diagnosis)
    assert [c.id for c in diagnosis.causes] == ["hash_seed"]
    full = experiments["full_control"]
    assert full.verdict == VERDICT_REPRODUCIBLE
    assert full.witness is None and len(full.runs) == 3  # as many as `run` compares
    assert experiments["no_hash_seed_threads"].verdict == VERDICT_NOT_REPRODUCIBLE
    assert experiments["no_threads"].verdict == VERDICT_REPRODUCIBLE
    assert not any("follow the thread count" in w for w in diagnosis.warnings)


def test_diagnose_names_global_rng_not_hash_seed() -> None:
    def script(job: Job) -> list[float]:
        return values(job, shift=0.0 if job.controls.global_rng else job.index * 1e-3)

    diagnosis = run_diagnose(_plan(), runner=FakeRunner(script))
    assert [c.id for c in diagnosis.causes] == ["global_rng"]


def test_diagnose_second_study_in_one_process_that_differs_is_process_state() -> None:
    runner = FakeRunner(values, later_study=lambda job, _k: values(job, shift=1.0))
    diagnosis = run_diagnose(_plan(), runner=runner)
    assert [c.id for c in diagnosis.causes] == ["process_state"]
    state = _experiments(diagnosis)["process_state"]
    assert state.reference is None and state.verdict == VERDICT_NOT_REPRODUCIBLE
    # one fresh process runs the first quarter of the study twice (4 trials: 1)
    (probe,) = runner.groups()["process_state"]
    assert probe.studies == 2 and probe.study.trials == 1 and probe.controls == Controls()
    assert [len(r.trials) for r in state.runs] == [1, 1]


def test_diagnose_parallel_trials_then_retries_everything_with_one_job() -> None:
    """n_jobs > 1: agreement is luck, so ``parallel_trials`` is named and full control is
    retried with n_jobs=1, as is every experiment after it (and the process-state probe)."""
    runner = FakeRunner(_no_sampler_seed_parts)
    diagnosis = run_diagnose(_plan(n_jobs=4), runner=runner)
    assert [c.id for c in diagnosis.causes] == ["parallel_trials", "sampler_seed"]
    ids = [e.id for e in diagnosis.experiments]
    assert "full_control_n_jobs_1" in ids and "process_state" in ids
    assert not diagnosis.reproducible_under_full_control
    later = [j for j in runner.jobs if j.group != "full_control"]
    assert later and all(j.study.n_jobs == 1 for j in later)


def test_diagnose_a_hash_seed_run_that_cannot_finish_is_said_untested() -> None:
    def script(job: Job) -> Any:
        return values(job) if job.controls.hash_seed else crashed(job, why="hash seed")

    diagnosis = run_diagnose(_plan(), runner=FakeRunner(script))
    experiments = _experiments(diagnosis)
    assert experiments["no_hash_seed"].verdict == VERDICT_INCOMPLETE
    assert experiments["full_control"].witness is None
    assert len(experiments["full_control"].runs) == 3
    assert diagnosis.causes == ()
    assert any("thread count were not tested" in w for w in diagnosis.warnings)


def test_compare_exit_code_is_that_of_the_gate() -> None:
    def script(job: Job) -> list[float]:
        return values(job, shift=job.index * 1e-6)  # every run differs, in every condition

    result = run_compare(_plan(runs=2), runner=FakeRunner(script))
    assert result.conditions[GATE].verdict == VERDICT_NOT_REPRODUCIBLE
    assert result.exit_code == result.conditions[GATE].exit_code != 0
    assert "even with fixed seeds the runs differ" in result.sentence


def test_diagnose_a_refused_determinism_names_the_op_and_retries_warn_only() -> None:
    """Under deterministic algorithms the study stops: the op probe names the op, full control
    is retried in warn-only mode, and every experiment id stays unique."""
    op = "scatter_add_cuda_kernel"

    def script(job: Job) -> Any:
        if job.warn_only:
            result = JobResult(job, [run_of(job, trials_of(job, values(job)))])
            return dataclasses.replace(result, nondeterministic_ops=[op])
        if job.controls.torch_determinism:
            why = f"{op} has no deterministic implementation (use_deterministic_algorithms)"
            return JobResult(job, [run_of(job, (), STATUS_ERROR, why)])
        return values(job)

    runner = FakeRunner(script)
    diagnosis = run_diagnose(_plan(), runner=runner)
    assert [c.id for c in diagnosis.causes] == ["torch_determinism"]
    assert op in diagnosis.causes[0].evidence
    assert diagnosis.nondeterministic_ops == (op,)
    ids = [e.id for e in diagnosis.experiments]
    assert len(ids) == len(set(ids)) and "full_control_warn_only" in ids
    assert "op_probe" in runner.groups()


# -- diagnose: no verdict rests on fewer runs than `run` compares (issue 22, item 4)

SET_ORDER_SCRIPT = str(FIXTURES / "scripts" / "string_set_order.py")
"""Never run here: the fake runner says what it would stream."""


def _agreeing_runs(diagnosis: Any) -> dict[str, int]:
    """Each experiment that says "reproducible", with the runs it rests on (full control
    witnessed by the screen: the screen's, whose run 0 is full control's)."""
    by_id = _experiments(diagnosis)
    return {
        e.id: len(by_id[e.witness].runs if e.witness else e.runs)
        for e in diagnosis.experiments
        if e.verdict == VERDICT_REPRODUCIBLE
    }


def test_diagnose_every_agreement_rests_on_as_many_runs_as_run_compares() -> None:
    """Full control (witnessed by the hash-seed/threads screen), the screen itself and each
    control found not needed: three runs each, as `run` compares by default."""
    diagnosis = run_diagnose(_plan(), runner=FakeRunner(_no_sampler_seed_parts))
    agreeing = _agreeing_runs(diagnosis)
    assert {"full_control", "no_hash_seed", "no_global_rng", "no_trial_reseed"} <= set(agreeing)
    process_state = agreeing.pop("process_state")  # two studies of one process, by design
    assert process_state == 2
    assert all(n >= 3 for n in agreeing.values()), agreeing
    assert [c.id for c in diagnosis.causes] == ["sampler_seed"]


def _set_order(job: Job, lucky: int) -> list[float]:
    """A script whose values follow a set's iteration order when no PYTHONHASHSEED is fixed:
    the first ``lucky`` processes without it happen to order the set alike (two random hash
    seeds order three strings alike one time in six), the others do not."""
    if job.controls.hash_seed or job.index < lucky:
        return values(job)
    return values(job, shift=1e-3 * job.index)


def test_diagnose_a_script_two_lucky_hash_seeds_do_not_make_reproducible_as_written() -> None:
    """Two runs as written agreed by luck: the third, as `run` would compare, parts. diagnose
    never says "reproducible as written, no control needed" on fewer runs than `run`'s."""
    runner = FakeRunner(lambda job: _set_order(job, lucky=2))
    diagnosis = run_diagnose(_plan(SET_ORDER_SCRIPT), runner=runner)
    as_written = _experiments(diagnosis)["as_written"]
    assert len(runner.groups()["as_written"]) == 3 and len(as_written.runs) == 3
    assert as_written.verdict == VERDICT_NOT_REPRODUCIBLE
    assert not any("reproducible as written" in w for w in diagnosis.warnings)
    assert "hash_seed" in [c.id for c in diagnosis.causes]
    assert all(n >= 3 for n in _agreeing_runs(diagnosis).values()), _agreeing_runs(diagnosis)


def test_diagnose_a_script_as_written_runs_as_many_as_the_plan_runs() -> None:
    """A config's `runs = 5` makes `run` compare five: so does the as-written experiment."""
    runner = FakeRunner(lambda job: _set_order(job, lucky=4))
    diagnosis = run_diagnose(_plan(SET_ORDER_SCRIPT, runs=5), runner=runner)
    assert len(runner.groups()["as_written"]) == 5
    assert _experiments(diagnosis)["as_written"].verdict == VERDICT_NOT_REPRODUCIBLE


def test_diagnose_a_scripts_smallest_set_names_the_controls_of_the_causes_shown() -> None:
    """Global RNG seeding's ablation switches both seedings off and parts, but per-trial
    reseeding off alone reproduces: the smallest set is the sampler seed and global_rng, the
    controls of the two causes shown, not trial_reseed too."""

    def script(job: Job) -> list[float]:
        if not job.controls.sampler_seed or not job.controls.global_rng:
            return values(job, shift=1e-3 * job.index)
        return values(job)

    diagnosis = run_diagnose(_plan(SET_ORDER_SCRIPT), runner=FakeRunner(script))
    experiments = _experiments(diagnosis)
    assert experiments["no_trial_reseed"].verdict == VERDICT_REPRODUCIBLE
    assert sorted(c.id for c in diagnosis.causes) == ["global_rng", "sampler_seed"]
    assert experiments["only_needed"].controls.enabled() == ["sampler_seed", "global_rng"]
    (smallest,) = [w for w in diagnosis.warnings if "smallest set" in w]
    assert "controls that makes the script reproducible: sampler_seed, global_rng (" in smallest
    assert "trial_reseed" not in smallest and "only_needed_broader" not in experiments


def test_diagnose_a_scripts_smallest_set_falls_back_and_says_why() -> None:
    """Per-trial reseeding off alone reproduces (every other control on), yet the sampler
    seed and global seeding alone are not enough: reseeding matters once PYTHONHASHSEED is
    off too. The broader set, every control the parted ablations switched off, is tried, and
    the warning says why trial_reseed is in it."""

    def script(job: Job) -> list[float]:
        if not job.controls.sampler_seed or not job.controls.global_rng:
            return values(job, shift=1e-3 * job.index)
        if not job.controls.trial_reseed and not job.controls.hash_seed:
            return values(job, shift=1e-3 * job.index)  # reseeding matters only with these
        return values(job)

    diagnosis = run_diagnose(_plan(SET_ORDER_SCRIPT), runner=FakeRunner(script))
    experiments = _experiments(diagnosis)
    assert experiments["only_needed"].verdict == VERDICT_NOT_REPRODUCIBLE
    broader = experiments["only_needed_broader"]
    assert broader.verdict == VERDICT_REPRODUCIBLE and len(broader.runs) == 3
    (smallest,) = [w for w in diagnosis.warnings if "smallest set" in w]
    assert "sampler_seed, global_rng, trial_reseed (checked" in smallest
    assert "trial_reseed too, though its own ablation reproduced" in smallest
