"""A check whose replicates live in an Optuna storage and may run on several machines.

Every ``repro-check run --storage URL --name NAME`` process claims replicates nobody has claimed
yet (creating the study is the claim), runs them, beats a heartbeat while they run, and then
reads the whole check back from the storage: the last process to finish prints the full report;
the others say how many replicates the check still awaits.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from repro_check.errors import ConfigError, ReproCheckError
from repro_check.execution.replicates import JobRunner, replicate_jobs, run_replicates
from repro_check.execution.runner import Interrupted, Job, JobResult, ProgressCallback
from repro_check.plan.liveness import heartbeat_interval
from repro_check.plan.settings import CheckPlan, settings_mismatches
from repro_check.redact import redact, redact_text
from repro_check.results import report
from repro_check.results.records import (
    STATUS_CANCELLED,
    STATUS_CRASHED,
    STATUS_ERROR,
    STATUS_OK,
    RunRecord,
)
from repro_check.results.trial_record import TrialRecord
from repro_check.storage.store import (
    INFO,
    CheckStore,
    Claim,
    Loaded,
    script_study_name,
    study_name,
)


def _differences(
    target: str, settings: Mapping[str, Any], plan: CheckPlan, *, liveness: bool = True
) -> list[str]:
    """Each setting of a stored replicate that differs from ``plan``'s, as a human line.
    ``liveness``: also ``stale_after`` (``report --stale-after`` may judge staleness anew)."""
    started = CheckPlan.from_dict(target, settings)
    problems = settings_mismatches(started, plan, before="in the check")
    joined = {
        "runs": (started.runs, plan.runs),
        "tolerance": (started.tolerance, plan.tolerance),
        "controls": (started.controls.enabled(), plan.controls.enabled()),
        "threads": (started.threads, plan.threads),
        "fail_fast": (started.fail_fast, plan.fail_fast),
    }
    if liveness:
        joined["stale_after"] = (started.stale_after, plan.stale_after)
    problems += [
        f"{key}: {before!r} in the check, {now!r} now"
        for key, (before, now) in joined.items()
        if before != now
    ]
    if target != plan.target:
        problems.append(f"target: {target!r} in the check, {plan.target!r} now")
    return problems


def _refuse_other_settings(store: CheckStore, plan: CheckPlan) -> None:
    """Every stored attempt, not only the first: processes started together on a new storage
    all found it empty, and may have claimed replicates with different settings."""
    for attempts in store.attempts().values():
        for attempt in attempts:
            info = attempt.attrs.get(INFO)
            if not isinstance(info, Mapping):
                continue  # claimed a moment ago: its settings are being written
            problems = _differences(str(info.get("target")), info.get("settings") or {}, plan)
            if problems:
                raise ConfigError(
                    f"check {plan.name!r} in {redact(store.url)} was started with other "
                    f"settings ({'; '.join(problems)}); use another --name"
                )


def _refuse_mixed_settings(store: CheckStore, plan: CheckPlan, loaded: Loaded) -> None:
    """A report must never mix replicates run with other settings (two processes started
    together with different flags both found the check new): that is bad input, not a
    verdict."""
    for replicate, info in sorted(loaded.info.items()):
        target, settings = str(info.get("target")), info.get("settings")
        if not isinstance(settings, Mapping):
            continue  # its process died while claiming: it ran nothing (shown as crashed)
        problems = _differences(target, settings, plan, liveness=False)
        if problems:
            raise ConfigError(
                f"check {plan.name!r} in {redact(store.url)} mixes settings: replicate "
                f"{replicate} ran with other ones ({'; '.join(problems)}); use another --name"
            )


def _refuse_finished_check(store: CheckStore, plan: CheckPlan) -> None:
    """Rerunning a finished check would run nothing and show the old verdict as new."""
    attempts = store.attempts()
    done = [k for k in range(plan.runs) if k in attempts and attempts[k][-1].status == STATUS_OK]
    if len(done) == plan.runs:
        raise ConfigError(
            f"check {plan.name!r} in {redact(store.url)} already finished all {plan.runs} "
            "replicates: use a new --name for a new check, or `repro-check report --storage "
            f"{shlex.quote(redact(store.url))} --name {shlex.quote(plan.name or '')}` to see it"
        )


class _Heartbeat(threading.Thread):
    """Keeps this process's running replicates visibly alive in the storage."""

    def __init__(self, store: CheckStore, claims: dict[int, Claim], interval: float) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.claims = claims
        self.interval = interval
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        # never let an exception escape: a thread traceback would garble the report, and a
        # failed beat is retried at the next one (the window holds several)
        try:
            while not self.halt.wait(self.interval):
                with self.lock:
                    live = list(self.claims.values())
                try:
                    self.store.heartbeat(live)
                except Exception:
                    continue
        except Exception:
            return


def _same_float(a: float, b: float) -> bool:
    """Equal as a storage keeps them: NaN is NaN, and -0.0 may come back as 0.0 (SQLite)."""
    return a == b or (math.isnan(a) and math.isnan(b))


def _trial_mismatch(recorded: TrialRecord, stored: TrialRecord) -> str | None:
    """Which field of ``recorded`` (the replicate's stored result) differs from ``stored``
    (the trial in its own study), as a phrase; None when they agree."""
    if recorded.state != stored.state:
        return f"state ({stored.state} in the study, {recorded.state} in the result)"
    if dict(recorded.params) != dict(stored.params):
        study, result = dict(stored.params), dict(recorded.params)
        return f"params ({study!r} in the study, {result!r} in the result)"
    mine, theirs = recorded.values, stored.values
    if (mine is None) != (theirs is None) or (
        mine is not None
        and theirs is not None
        and (len(mine) != len(theirs) or not all(map(_same_float, mine, theirs)))
    ):
        return f"values ({theirs!r} in the study, {mine!r} in the result)"
    steps, stored_steps = recorded.intermediate_values, stored.intermediate_values
    if set(steps) != set(stored_steps) or not all(
        _same_float(steps[k], stored_steps[k]) for k in steps
    ):
        return "intermediate values"
    return None


def _mismatch(
    recorded: Iterable[TrialRecord], stored: Iterable[TrialRecord], complete: bool
) -> str | None:
    """How a replicate's recorded trials part from those its own study holds, or None.
    ``complete`` (the replicate finished): both hold the same trials; otherwise (it stopped
    early) the study may hold trials the result never got, but none the result tells
    otherwise."""
    held = {t.number: t for t in stored}
    numbers = []
    for trial in recorded:
        numbers.append(trial.number)
        found = held.get(trial.number)
        if found is None:
            if complete:
                return f"trial {trial.number} is in the result, not in the study"
            continue
        differs = _trial_mismatch(trial, found)
        if differs is not None:
            return f"trial {trial.number}'s {differs}"
    extra = sorted(set(held) - set(numbers))
    if complete and extra:
        return f"trial {extra[0]} is in the study, not in the result"
    return None


def _stored_trials(store: CheckStore, name: str) -> list[TrialRecord] | None:
    """The finished trials of study ``name`` in the check's storage (None: no such study)."""
    from repro_check.storage.store import _stored_trial

    try:
        study_id = store.storage.get_study_id_from_name(name)
    except KeyError:
        return None
    except Exception as exc:
        raise store._guard(f"reading {name}", exc) from None
    try:
        frozen = store.storage.get_all_trials(study_id, deepcopy=False)
    except Exception as exc:
        raise store._guard(f"reading {name}", exc) from None
    return [_stored_trial(t) for t in frozen if t.state.is_finished()]


def _tampered(
    store: CheckStore, run: RunRecord, info: Mapping[str, Any]
) -> tuple[str, RunRecord] | None:
    """Why the result ``run`` was read from (its study's ``repro_check_result``) cannot be
    the replicate's own, and the run with the trials its own study holds instead (a script's:
    its ``study-<i>`` copies); None when the two agree."""
    attempt = info.get("attempt", 0)
    if not isinstance(attempt, int) or isinstance(attempt, bool):
        return f"its claim names no attempt ({attempt!r})", run
    claimed = study_name(store.name, run.index, attempt)
    complete = run.status == STATUS_OK
    if run.studies:
        pairs = [(script_study_name(claimed, i), s.trials) for i, s in enumerate(run.studies)]
    else:
        pairs = [(claimed, run.trials)]
    held = [_stored_trials(store, name) for name, _recorded in pairs]
    why = None
    for (name, recorded), stored in zip(pairs, held, strict=True):
        if stored is None:
            why = f"study {name} is missing from the storage" if complete else None
        else:
            found = _mismatch(recorded, stored, complete)
            why = f"in {name}, {found}" if found is not None else None
        if why is not None:
            break
    if why is None:
        return None
    own = [tuple(stored or ()) for stored in held]
    if run.studies:
        studies = tuple(
            dataclasses.replace(study, trials=trials)
            for study, trials in zip(run.studies, own, strict=True)
        )
        return why, dataclasses.replace(run, trials=own[0], studies=studies)
    return why, dataclasses.replace(run, trials=own[0])


def _cross_checked(store: CheckStore, loaded: Loaded) -> list[RunRecord]:
    """``loaded.runs``, each replicate's stored result checked against the trials stored in
    that replicate's own study: the result is one attribute, which anyone with the storage
    can overwrite (a copy of another replicate's makes two replicates agree), while the
    trials were written by the replicate's own process as it ran them. A replicate whose two
    disagree is crashed, with the reason, and shows the trials of its own study; it never
    counts towards a pass."""
    runs = []
    for run in loaded.runs:
        found = _tampered(store, run, loaded.info.get(run.index) or {})
        if found is not None:
            why, own = found
            run = dataclasses.replace(
                own,
                status=STATUS_CRASHED,
                error=(
                    "its stored result does not match the trials stored in its own study "
                    f"({why}): the storage was changed after it ran (another replicate's "
                    "result copied into it?); rerun the check under a new --name"
                ),
            )
        runs.append(run)
    return runs


def load_report(plan: CheckPlan, device: str, store: CheckStore, mine: int = 0) -> report.RunReport:
    """The check as the storage has it now (all machines), as a RunReport. Each replicate's
    stored result is cross-checked with the trials in its own study (``_cross_checked``)."""
    loaded = store.load_runs(plan.stale_after)
    _refuse_mixed_settings(store, plan, loaded)
    running = loaded.running
    checked = _cross_checked(store, loaded)
    runs = [dataclasses.replace(r, error=redact_text(r.error, store.url)) for r in checked]
    seen = {r.index for r in runs} | set(running)
    awaiting = len(running) + sum(1 for k in range(plan.runs) if k not in seen)
    result = report.build("run", plan, device, runs)
    # "--fail-fast stopped the runs" only where the stored trials show the divergence that
    # stopped them: runs cut short by Ctrl-C/SIGTERM (or by a stop nobody can re-check) must
    # never read as a divergence; they leave the check interrupted until --resume retakes them
    diverged = result.runs_part  # a script's: in any study (--fail-fast watches every one)
    stopped = plan.fail_fast and diverged and any(r.status == STATUS_CANCELLED for r in runs)
    interrupted = bool(loaded.interrupted) and not stopped
    return dataclasses.replace(
        result, stopped_early=stopped, awaiting=awaiting, ran_here=mine, interrupted=interrupted
    )


def _give_up(store: CheckStore, claims: dict[int, Claim], plan: CheckPlan, why: str) -> None:
    """The check stopped with an error: its claimed replicates must not stay ``running`` (to
    look dead later); they are ``error``, and ``--resume`` retakes them once it is fixed."""
    for index, claim in claims.items():
        error = f"{why} (stopped the check; rerun with --resume to retake it)"
        run = RunRecord(index, plan.seed, STATUS_ERROR, (), plan.study.directions, error=error)
        try:
            store.finish(claim, run)
        except ReproCheckError:
            return  # the storage itself failed: the original error is the one to show


def run_shared(
    plan: CheckPlan,
    device: str,
    on_progress: ProgressCallback | None,
    runner: JobRunner | None = None,
) -> report.RunReport:
    assert plan.storage is not None and plan.name is not None
    store = CheckStore(plan.storage, plan.name)
    _refuse_other_settings(store, plan)
    _refuse_finished_check(store, plan)
    info = {
        "check": plan.name,
        "target": plan.target,
        "seed": plan.seed,
        "settings": plan.to_dict(device),
    }
    claims: dict[int, Claim] = {}
    """The replicates this process claimed and has not stored the outcome of (beating)."""
    mine: list[int] = []
    beat = _Heartbeat(store, claims, interval=heartbeat_interval(plan.stale_after))

    def claim(job: Job) -> Job | None:
        taken = store.claim(job.index, plan.study.directions, info, plan.resume, plan.stale_after)
        if taken is None:
            return None
        with beat.lock:
            claims[job.index] = taken
            mine.append(job.index)
        return dataclasses.replace(job, storage=plan.storage, study_name=taken.study_name)

    def ended(result: JobResult) -> None:
        """A replicate's outcome is stored as soon as it ends: a node lost later (preempted,
        killed) leaves only its running replicate to retake, not the ones it finished."""
        for run in result.runs:
            with beat.lock:
                done = claims.pop(run.index, None)
            if done is not None:
                store.finish(done, run)

    beat.start()
    try:
        runs: list[RunRecord] = run_replicates(
            plan,
            device,
            replicate_jobs(plan),
            on_progress,
            claim=claim,
            on_end=ended,
            runner=runner,
        )
    except Interrupted as stop:  # keep what finished: it must not be re-run or shown crashed
        for result in stop.results:
            for run in result.runs:
                if run.index in claims:
                    store.finish(claims[run.index], run, interrupted=True)
        finished = [run for result in stop.results for run in result.runs]
        raise report.interrupted(plan, device, finished) from stop
    except ReproCheckError as exc:  # the target cannot load, a bad study setting, ...
        _give_up(store, claims, plan, str(exc))
        raise
    finally:
        beat.halt.set()
        beat.join()
    for run in runs:
        if run.index in claims:
            store.finish(claims.pop(run.index), run)
    return load_report(plan, device, store, mine=len(mine))


def report_from_storage(
    url: str | None, name: str | None, stale_after: float | None
) -> report.RunReport:
    """``repro-check report --storage URL --name NAME``: the check from the storage alone.
    ``stale_after`` defaults to the check's own; a shorter window than its heartbeats need
    would call live replicates dead, and is refused."""
    from repro_check.plan.defaults import DEFAULT_STORAGE
    from repro_check.plan.liveness import HEARTBEATS_PER_WINDOW, check_stale_after

    if not name:
        raise ConfigError("--storage needs --name: which check to report")
    if stale_after is not None:
        try:
            check_stale_after(stale_after)
        except ValueError as exc:
            raise ConfigError(f"--stale-after {exc}") from None
    store = CheckStore(url or DEFAULT_STORAGE, name)
    started = store.settings()
    if started is None:
        raise ConfigError(f"no check named {name!r} in {redact(store.url)}")
    target, settings = started
    plan = dataclasses.replace(CheckPlan.from_dict(target, settings), storage=store.url)
    if stale_after is not None:
        window = HEARTBEATS_PER_WINDOW * heartbeat_interval(plan.stale_after)
        if stale_after < window:
            raise ConfigError(
                f"--stale-after {stale_after:g}: check {name!r} beats every "
                f"{heartbeat_interval(plan.stale_after):g} s, so less than {window:g} s would "
                "call its live replicates dead"
            )
        plan = dataclasses.replace(plan, stale_after=stale_after)
    return load_report(plan, str(settings.get("device", "?")), store)
