"""The replicate process: ``python -m repro_check.execution.worker`` reads a job (JSON) on stdin.

It applies the controls, imports the target, runs the study (or several, one after another) and
streams one JSON line per event on its original stdout. The user's own prints are moved to stderr
first, so nothing the objective writes can corrupt the stream unnoticed: every line carries the
job's nonce (sent by the parent in the job, kept only in the stream's closure) and the worker's
pid, and the parent treats any other line as a crash of the run.

The job is a ``protocol.JobSpec`` and every event one of ``protocol.Event``'s types (``started``,
``trial``, ``study_done``, ``done``, ``error``, ``audit``, ``trace``): their fields and meaning are
documented there, once, for both ends. Script mode runs in ``script_job``.

The job arrives as one line on stdin, which then stays open as the parent pipe: the worker moves
it off fd 0 (the objective gets /dev/null) and kills its whole process group (it is a session
leader) when the pipe reaches EOF, so workers and their children die with the parent, even
after ``kill -9``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from repro_check.errors import TargetError
from repro_check.execution import controls as ctl
from repro_check.execution import environment, gpus
from repro_check.execution.protocol import (
    PROTOCOL_VERSION,
    SCRIPT_ARG,
    Audit,
    AuditSite,
    Done,
    Error,
    JobSpec,
    Started,
    StudyDone,
    Trial,
    read_job,
)
from repro_check.execution.target import one_line
from repro_check.execution.worker_stream import (
    Stream,
    audit_report,
    determinism_op,
    emit_trace,
    named_op,
    readable,
    refused_op_message,
    traced,
)
from repro_check.json_values import bounded, to_json_safe
from repro_check.plan.settings import STUDY_NAME, Controls, StudySettings
from repro_check.results.records import trials_digest
from repro_check.results.trial_record import TrialRecord
from repro_check.vocab import PRUNERS, Pruner, sampler_spec


def make_sampler(study: StudySettings, seed: int | None) -> Any:
    import optuna

    kwargs = dict(study.sampler_kwargs)
    if ":" in study.sampler:
        from repro_check.execution.target import load_attr

        return load_attr(study.sampler)(seed=seed, **kwargs)
    spec = sampler_spec(study.sampler)
    if spec is None:
        raise ValueError(f"unknown sampler {study.sampler!r}")
    return getattr(optuna.samplers, spec.optuna_class)(seed=seed, **kwargs)


def make_pruner(study: StudySettings) -> Any:
    import optuna

    class FixedNameHyperband(optuna.pruners.HyperbandPruner):
        """Hyperband picks a trial's bracket from a hash of the study name: replicates stored
        as <name>/run-<k> must still get the same brackets."""

        def _get_bracket_id(self, study: Any, trial: Any) -> int:
            fixed: Any = SimpleNamespace(study_name=STUDY_NAME)
            return int(super()._get_bracket_id(fixed, trial))

    pruner = Pruner(study.pruner)
    cls = (
        FixedNameHyperband
        if pruner is Pruner.HYPERBAND
        else getattr(optuna.pruners, PRUNERS[pruner])
    )
    return cls(**dict(study.pruner_kwargs))


class StudyRunner:
    """Runs one study with the objective wrapped to reseed per trial and record failures."""

    def __init__(
        self,
        job: JobSpec,
        objective: Callable[..., Any],
        out: Stream,
        optimize: Callable[..., Any] | None = None,
        stops: _StopWatch | None = None,
        audit: Any = None,
    ) -> None:
        self.study_settings = StudySettings.from_dict(job.study)
        self.controls = Controls.from_dict(job.controls)
        self.seed = job.seed
        self.fixed_params = job.fixed_params
        self.storage = job.storage
        self.study_name = job.study_name
        self.first_trial = job.first_trial
        """A resumed study: the storage already holds trials 0..first_trial-1."""
        self.objective = objective
        self.out = out
        self.errors: dict[int, str] = {}
        self.returned: dict[int, Any] = {}
        self.abort: str | None = None
        self.setup_failure: str | None = None
        """The sampler or pruner raised (not the objective): a set-up error, not a FAIL trial."""
        self.optimize = optimize
        """``Study.optimize`` as it was before the target was imported (a monkeypatch at import
        time must not change what runs; the parent's count check catches deeper patches)."""
        self.stops = stops
        self.emitted = 0
        """Trial events streamed for the current study."""
        self.view: tuple[int, str] = (0, "")
        """The finished study's own account of its trials (``study_view``)."""
        self.stopped = False
        """The study was stopped (``Study.stop``) before it ran all its trials."""
        if audit is not None:
            self.objective = _audited(objective, audit)
        self.tracer: Any = None
        """The line tracer (``diagnose``'s line-trace probe only): the first trial, traced."""
        if job.trace:
            from repro_check.execution.linetrace import LineTrace

            self.tracer = LineTrace()
            self.objective = traced(self.objective, self.tracer)

    def _wrapped(self, trial: Any) -> Any:
        import optuna

        if self.controls.trial_reseed:
            ctl.seed_global_rngs(ctl.trial_seed(self.seed, trial.number))
        try:
            result = self.objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            self.errors[trial.number] = one_line(exc)
            if self.setup_failure is not None:  # the sampler or pruner broke: stop at once
                trial.study.stop()
                raise
            op = determinism_op(exc)
            if op is not None and self.abort is None:
                self.abort = refused_op_message(op)
                trial.study.stop()
            raise
        self.returned[trial.number] = result
        return result

    def _guard(self, component: Any, what: str, methods: tuple[str, ...]) -> None:
        """Wrap the component's methods so that an exception raised inside them (a missing
        package, a bad setting) is known as a set-up error rather than the objective's."""
        import optuna

        for name in methods:
            method = getattr(component, name, None)
            if method is None:
                continue

            def guarded(*args: Any, _method_: Any = method, **kwargs: Any) -> Any:
                try:
                    return _method_(*args, **kwargs)
                except optuna.TrialPruned:
                    raise
                except Exception as exc:
                    if self.setup_failure is None:
                        self.setup_failure = setup_message(what, exc)
                    raise

            with contextlib.suppress(AttributeError, TypeError):
                setattr(component, name, guarded)

    def _exact_values(self, frozen: Any) -> tuple[float, ...] | None:
        """The values as the objective returned them. Storages may round what they keep
        (SQLite gives -0.0 back as 0.0); a bit-for-bit check must see the real floats."""
        if frozen.values is None:
            return None
        stored = tuple(frozen.values)
        reported = _REPORTED.get(frozen.number)
        if frozen.state.name == "PRUNED" and reported:  # Optuna keeps the last reported value
            last = (reported[max(reported)],)
            return last if _same_numbers(last, stored) else stored
        returned = self.returned.get(frozen.number)
        items: list[Any] = list(returned) if isinstance(returned, list | tuple) else [returned]
        try:
            exact = tuple(float(v) for v in items)
        except (TypeError, ValueError):
            return stored
        return exact if _same_numbers(exact, stored) else stored

    def _exact_intermediates(self, frozen: Any) -> dict[int, float]:
        stored = dict(frozen.intermediate_values)
        for step, value in _REPORTED.pop(frozen.number, {}).items():
            if step in stored and _same_numbers((value,), (stored[step],)):
                stored[step] = value
        return stored

    def _record(self, study_index: int) -> Callable[[Any, Any], None]:
        def callback(_study: Any, frozen: Any) -> None:
            state = frozen.state.name
            error = self.errors.get(frozen.number)
            if state == "FAIL" and error is None:
                returned = self.returned.get(frozen.number)
                error = f"objective returned {returned!r}"
                if returned is None:  # the usual cause: the last line computes, not returns
                    error += " (is a `return` missing?)"
            record = TrialRecord.from_frozen(
                frozen,
                values=self._exact_values(frozen),
                intermediate_values=self._exact_intermediates(frozen),
                error=None if error is None else readable(error),
            )
            # compared, and saved: bounded so the report reads back (``results.validate``), a
            # string past the bound keeping a hash of the whole (still compared whole)
            attrs = bounded(to_json_safe(dict(record.user_attrs)))
            record = dataclasses.replace(record, user_attrs=attrs)
            self.emitted += 1
            self.out.emit(Trial(study=study_index, trial=record.to_dict()))

        return callback

    def run(self, study_index: int) -> None:
        import optuna

        settings = self.study_settings
        if self.controls.global_rng:
            ctl.seed_global_rngs(self.seed)
        sampler_seed = self.seed if self.controls.sampler_seed else None
        try:
            sampler = make_sampler(settings, sampler_seed)
            pruner = make_pruner(settings)
            self._guard(sampler, f"{settings.sampler} sampler", _SAMPLER_METHODS)
            self._guard(pruner, f"{settings.pruner} pruner", ("prune",))
            if self.storage is not None:  # the parent created (claimed) it already
                from repro_check.storage.store import open_storage

                study = optuna.load_study(
                    study_name=self.study_name,
                    storage=open_storage(self.storage),
                    sampler=sampler,
                    pruner=pruner,
                )
            else:
                study = optuna.create_study(
                    study_name=STUDY_NAME,
                    directions=list(settings.directions),  # type: ignore[arg-type]
                    sampler=sampler,
                    pruner=pruner,
                )
            if self.fixed_params is not None:
                for _ in range(settings.trials):
                    study.enqueue_trial(self.fixed_params, skip_if_exists=False)
        except Exception as exc:
            raise _ConfigProblem(f"cannot build the study: {one_line(exc)}") from exc
        self.emitted = 0
        if self.stops is not None:
            self.stops.watch(study)
        optimize = self.optimize or optuna.study.Study.optimize
        try:
            optimize(
                study,
                self._wrapped,
                n_trials=settings.trials,
                n_jobs=settings.n_jobs,
                catch=(Exception,),
                callbacks=[self._record(study_index)],
            )
        except Exception:
            if self.setup_failure is not None:
                raise _ConfigProblem(f"cannot run the study: {self.setup_failure}") from None
            raise
        if self.setup_failure is not None:
            raise _ConfigProblem(f"cannot run the study: {self.setup_failure}")
        self.view = study_view(study, self.first_trial)
        self.stopped = self.stops.stopped if self.stops is not None else False


def _audited(objective: Callable[..., Any], audit: Any) -> Callable[..., Any]:
    """``objective`` telling the audit which trial runs, and which global streams it used."""

    def audited(trial: Any) -> Any:
        audit.trial = trial.number
        before = audit.streams()
        try:
            return objective(trial)
        finally:
            audit.trial_ended(trial.number, before)
            audit.trial = None

    return audited


_SAMPLER_METHODS = (
    "infer_relative_search_space",
    "sample_relative",
    "sample_independent",
    "before_trial",
    "after_trial",
)

_PIP_NAMES = {"sklearn": "scikit-learn", "PIL": "Pillow", "yaml": "PyYAML", "cv2": "opencv-python"}
_MISSING = re.compile(r"No module named '([\w.]+)'|Tried to import '([\w.]+)'")


def missing_module(exc: BaseException) -> str | None:
    """The top-level package a (possibly chained) ImportError says is missing."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, ModuleNotFoundError) and seen.name:
            return seen.name.split(".")[0]
        if isinstance(seen, ImportError):
            found = _MISSING.search(str(seen))
            if found:
                return (found.group(1) or found.group(2)).split(".")[0]
        seen = seen.__cause__ or seen.__context__
    return None


def setup_message(what: str, exc: BaseException) -> str:
    """One line for a failure inside the sampler or pruner, naming a missing package."""
    package = missing_module(exc)
    if package is not None:
        install = _PIP_NAMES.get(package, package)
        return (
            f"the {what} needs the package {package!r}, which is not installed "
            f"(pip install {install}): {one_line(exc)}"
        )
    return f"the {what} raised {one_line(exc)}"


def study_view(study: Any, first: int = 0) -> tuple[int, str]:
    """The study's own account of its trials, to check against what was streamed: how many
    (waiting, i.e. enqueued and never run, ones aside) and a digest of their numbers and
    states; for a resumed study, only those numbered ``first`` on (the earlier ones ran in
    another process)."""
    pairs = sorted(
        (int(t.number), t.state.name)
        for t in study.get_trials(deepcopy=False)
        if t.state.name != "WAITING" and int(t.number) >= first
    )
    return len(pairs), trials_digest(pairs)


class _StopWatch:
    """Wraps ``Study.stop`` (once, before the target loads) to know when the study being run
    was stopped (by the objective, a callback or a sampler such as grid when it is exhausted):
    only then may it end with fewer trials than asked for."""

    def __init__(self, study_class: Any) -> None:
        self.current: Any = None
        self.stopped = False
        original = study_class.stop
        watch = self

        def stop(study: Any) -> None:
            if study is watch.current:
                watch.stopped = True
            original(study)

        study_class.stop = stop

    def watch(self, study: Any) -> None:
        self.current = study
        self.stopped = False


_REPORTED: dict[int, dict[int, float]] = {}
"""Intermediate values exactly as ``trial.report`` received them, per trial number."""


def _same_numbers(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Equal as numbers (NaN with NaN): only a lost zero sign may tell them apart."""
    return len(a) == len(b) and all(
        x == y or (x != x and y != y) for x, y in zip(a, b, strict=False)
    )


def _record_reports() -> None:
    """Wrap ``Trial.report`` (once per process) to keep the exact floats reported."""
    import optuna

    original = optuna.trial.Trial.report
    if getattr(original, "_repro_check", False):
        return

    def report(trial: Any, value: float, step: int) -> None:
        original(trial, value, step)
        with contextlib.suppress(TypeError, ValueError):
            _REPORTED.setdefault(trial.number, {})[int(step)] = float(value)

    report._repro_check = True  # type: ignore[attr-defined]
    optuna.trial.Trial.report = report  # type: ignore[assignment]


class _ConfigProblem(Exception):
    """The sampler or pruner could not be built from the given settings."""


def _collect_nondeterministic_ops(found: list[str]) -> None:
    """With warn_only, torch names each op lacking a deterministic kernel in a warning."""
    original = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        op = named_op(str(message))
        if op is not None:
            if op not in found:
                found.append(op)
            return
        original(message, category, *args, **kwargs)

    warnings.showwarning = show
    warnings.filterwarnings("always", message=".*does not have a deterministic implementation.*")


def run_job(job: JobSpec, out: Stream) -> None:
    """Run the job and stream its events; every way it can end sends ``done`` or ``error``."""
    environment.remember_start()  # what the shell gave, before the user's code can change it
    controls = Controls.from_dict(job.controls)
    seed, threads = job.seed, job.threads
    notes: list[str] = []
    ops: list[str] = []
    _collect_nondeterministic_ops(ops)
    if controls.global_rng:
        ctl.seed_global_rngs(seed)
    torch_status = ctl.arm_torch(controls, seed, threads, job.warn_only)
    audit = None
    if job.audit:
        from repro_check.execution import audit as entropy

        audit = entropy.install()
        audit.on_new = lambda site: out.emit(Audit(site=AuditSite(**readable(site.to_dict()))))
    if job.script:
        # nothing of optuna, numpy or torch is imported before the script: they read their
        # thread variables (and optuna its log level) as they load, as under `python train.py`
        from repro_check.execution.script_job import run_script_job

        run_script_job(job, out, ops, torch_status, audit)
        return
    if job.device == "cuda" and gpus.FAKE_ENV not in os.environ:  # tests fake CUDA
        import torch

        if not torch.cuda.is_available():
            out.emit(Error(kind="device", message="--device cuda: torch sees no CUDA device"))
            return

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _record_reports()
    optimize = optuna.study.Study.optimize  # before the target can patch it
    stops = _StopWatch(optuna.study.Study)
    try:
        from repro_check.execution.target import load

        before = audit.streams() if audit is not None else {}
        objective = load(job.target)
        if audit is not None:
            audit.imported(before)
    except TargetError as exc:
        out.emit(Error(kind="target", message=str(exc)))
        return
    runner = StudyRunner(job, objective, out, optimize=optimize, stops=stops, audit=audit)
    started = time.perf_counter()
    for study_index in range(job.studies):
        try:
            runner.run(study_index)
        except _ConfigProblem as exc:
            out.emit(Error(kind="config", message=str(exc)))
            return
        except Exception as exc:
            out.emit(Error(kind="objective", message=one_line(exc)))
            return
        if runner.abort is not None:
            out.emit(Error(kind="determinism", message=runner.abort, ops=ops))
            return
        count, digest = runner.view
        out.emit(
            StudyDone(
                study=study_index,
                emitted=runner.emitted,
                count=count,
                digest=digest,
                stopped=runner.stopped,
            )
        )
    note = ctl.torch_note(torch_status)
    if note:
        notes.append(note)
    if runner.tracer is not None:
        emit_trace(out, runner.tracer)
    out.emit(
        Done(
            wall_s=time.perf_counter() - started,
            environment=environment.collect(threads if controls.threads else None),
            notes=notes,
            nondeterministic_ops=ops,
            audit=audit_report(audit),
        )
    )


def _watch_parent(fd: int) -> None:
    """Kill this worker's whole process group (the objective's children too) when the parent
    pipe reaches EOF: the parent has ended, even by ``kill -9``, and nobody reads our results."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 4096):
                pass
        with contextlib.suppress(OSError):
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os._exit(1)

    threading.Thread(target=watch, name="repro-check-parent-watch", daemon=True).start()


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the objective's prints (even from C code) now go to stderr
    # warm up while the parent has not handed us a job yet; a script's worker imports none of
    # optuna (nor numpy) before the script does, as `python train.py` does not
    if SCRIPT_ARG in sys.argv[1:]:
        from repro_check.execution import script, script_job  # noqa: F401
    else:
        import optuna  # noqa: F401

    line = sys.stdin.buffer.readline()
    if not line.strip():  # the parent went away before handing us a job
        os._exit(0)
    parent = os.dup(0)  # the parent pipe, away from the objective (which gets /dev/null)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    _watch_parent(parent)
    nonce, job = read_job(line)
    del line  # the nonce must not linger where the objective could read it
    out = Stream(protocol, nonce)
    del nonce
    out.emit(Started(version=PROTOCOL_VERSION))
    run_job(job, out)
    # Leave now: a thread the objective started (a data loader, a logger) must not keep the
    # process alive after its results are in; everything worth keeping is already written.
    protocol.flush()
    for stream in (sys.stdout, sys.stderr):  # block-buffered, as under `python train.py > log`
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
