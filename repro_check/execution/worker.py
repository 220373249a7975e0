"""The replicate process: ``python -m repro_check.execution.worker`` reads a job (JSON) on stdin.

It applies the controls, imports the target, runs the study (or several, one after another) and
streams one JSON line per event on its original stdout. The user's own prints are moved to stderr
first, so nothing the objective writes can corrupt the stream unnoticed: every line carries the
job's nonce (sent by the parent in the job, kept only in the stream's closure) and the worker's
pid, and the parent treats any other line as a crash of the run.

Events: ``started`` (the job was read: the parent's timeout clock starts), ``trial`` (one per
finished trial), ``study_done`` (with the study's own view of its trials: how many, a digest of
their numbers and states, whether it was stopped), ``done`` (with the environment), ``error``
(kind: target, config, device, determinism, objective).

The job arrives as one line on stdin, which then stays open as the parent pipe: the worker moves
it off fd 0 (the objective gets /dev/null) and kills its whole process group (it is a session
leader) when the pipe reaches EOF, so workers and their children die with the parent, even
after ``kill -9``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import IO, Any

from repro_check.errors import TargetError
from repro_check.execution import controls as ctl
from repro_check.execution import environment, gpus
from repro_check.execution.target import one_line
from repro_check.plan.settings import STUDY_NAME, Controls, StudySettings
from repro_check.results.bounds import MAX_DEPTH, MAX_TEXT
from repro_check.results.records import TrialRecord, bounded, to_json_safe, trials_digest
from repro_check.vocab import PRUNERS, Pruner, sampler_spec

_NO_DETERMINISTIC_PHRASE = " does not have a deterministic implementation"
_NO_DETERMINISTIC = re.compile(r"(\S{1,256})" + _NO_DETERMINISTIC_PHRASE)
"""Bounded: an unbounded run of non-spaces before the phrase backtracks quadratically, and a
failing trial's 300,000-character message then took minutes to search."""


def _named_op(text: str) -> str | None:
    """The op torch's "X does not have a deterministic implementation" names, if any."""
    if _NO_DETERMINISTIC_PHRASE not in text:
        return None
    match = _NO_DETERMINISTIC.search(text)
    return match.group(1) if match else None


class Stream:
    """Thread-safe JSON-lines writer (``n_jobs > 1`` reports trials from several threads).

    Every line carries the job's nonce and the writing process's pid. The nonce lives only in
    ``emit``'s closure (no attribute, no module global), so the objective cannot trivially find
    it and forge events; a forked child that carries on with the study writes its own pid."""

    def __init__(self, handle: IO[str], nonce: str = "") -> None:
        lock = threading.Lock()

        def emit(event: str, **data: Any) -> None:
            line = json.dumps({"event": event, "nonce": nonce, "pid": os.getpid(), **data})
            with lock:
                handle.write(line + "\n")
                handle.flush()

        self.emit = emit


def determinism_op(exc: BaseException) -> str | None:
    """The op named by torch's "X does not have a deterministic implementation" error."""
    return _named_op(str(exc))


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
        job: Mapping[str, Any],
        objective: Callable[..., Any],
        out: Stream,
        optimize: Callable[..., Any] | None = None,
        stops: _StopWatch | None = None,
        audit: Any = None,
    ) -> None:
        self.study_settings = StudySettings.from_dict(job["study"])
        self.controls = Controls.from_dict(job["controls"])
        self.seed = int(job["seed"])
        self.fixed_params: dict[str, Any] | None = job.get("fixed_params")
        self.storage: str | None = job.get("storage")
        self.study_name: str | None = job.get("study_name")
        self.first_trial = int(job.get("first_trial") or 0)
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
        self.view: dict[str, Any] = {}
        """The finished study's own account of its trials (``study_view``)."""
        self.stopped = False
        """The study was stopped (``Study.stop``) before it ran all its trials."""
        if audit is not None:
            self.objective = _audited(objective, audit)
        self.tracer: Any = None
        """The line tracer (``diagnose``'s line-trace probe only): the first trial, traced."""
        if job.get("trace"):
            from repro_check.execution.linetrace import LineTrace

            self.tracer = LineTrace()
            self.objective = _traced(self.objective, self.tracer)

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
                self.abort = (
                    f"{op} has no deterministic implementation "
                    "(refused under torch.use_deterministic_algorithms(True))"
                )
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
                error=None if error is None else _readable(error, 0),
            )
            # compared, and saved: bounded so the report reads back (``results.validate``), a
            # string past the bound keeping a hash of the whole (still compared whole)
            attrs = bounded(to_json_safe(dict(record.user_attrs)))
            record = dataclasses.replace(record, user_attrs=attrs)
            self.emitted += 1
            self.out.emit("trial", study=study_index, trial=record.to_dict())

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


def _traced(objective: Callable[..., Any], tracer: Any) -> Callable[..., Any]:
    """``objective`` with its first call traced line by line and, with torch, op by op
    (``execution.linetrace``)."""
    from repro_check.execution.linetrace import TorchOps

    calls = [0]
    if getattr(tracer, "torch_ops", None) is None:
        tracer.torch_ops = TorchOps()

    def traced(trial: Any) -> Any:
        calls[0] += 1
        if calls[0] > 1:
            return objective(trial)
        tracer.torch_ops.start()
        tracer.start()
        try:
            return objective(trial)
        finally:
            tracer.stop()
            tracer.torch_ops.stop()

    return traced


def _emit_trace(out: Stream, tracer: Any) -> None:
    out.emit(
        "trace",
        events=tracer.events,
        ops=tracer.torch_ops.ops,
        truncated=tracer.truncated,
        backend=tracer.backend,
    )


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


def _readable(value: Any, depth: int) -> Any:
    """``value`` (JSON-safe) as a saved report may hold it: strings of at most ``MAX_TEXT``
    characters without lone surrogates, containers nested at most ``MAX_DEPTH`` levels (deeper
    ones become their shortened repr)."""
    if isinstance(value, str):
        if not value.isascii():
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 3] + "..."
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return _readable(repr(value)[:MAX_TEXT], depth)
    if isinstance(value, dict):
        return {_readable(k, depth): _readable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v, depth + 1) for v in value]
    return value


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


def study_view(study: Any, first: int = 0) -> dict[str, Any]:
    """The study's own account of its trials, to check against what was streamed: how many
    (waiting, i.e. enqueued and never run, ones aside) and a digest of their numbers and
    states; for a resumed study, only those numbered ``first`` on (the earlier ones ran in
    another process)."""
    pairs = sorted(
        (int(t.number), t.state.name)
        for t in study.get_trials(deepcopy=False)
        if t.state.name != "WAITING" and int(t.number) >= first
    )
    return {"count": len(pairs), "digest": trials_digest(pairs)}


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
        op = _named_op(str(message))
        if op is not None:
            if op not in found:
                found.append(op)
            return
        original(message, category, *args, **kwargs)

    warnings.showwarning = show
    warnings.filterwarnings("always", message=".*does not have a deterministic implementation.*")


def run_job(job: Mapping[str, Any], out: Stream) -> None:
    environment.remember_start()  # what the shell gave, before the user's code can change it
    controls = Controls.from_dict(job["controls"])
    seed = int(job["seed"])
    threads = int(job["threads"])
    notes: list[str] = []
    ops: list[str] = []
    _collect_nondeterministic_ops(ops)
    if controls.global_rng:
        ctl.seed_global_rngs(seed)
    torch_status = ctl.arm_torch(controls, seed, threads, bool(job.get("warn_only")))
    audit = None
    if job.get("audit"):
        from repro_check.execution import audit as entropy

        audit = entropy.install()
        audit.on_new = lambda site: out.emit("audit", site=_readable(site.to_dict(), 0))
    if job.get("script"):
        # nothing of optuna, numpy or torch is imported before the script: they read their
        # thread variables (and optuna its log level) as they load, as under `python train.py`
        run_script_job(job, out, ops, torch_status, audit)
        return
    if job.get("device") == "cuda" and gpus.FAKE_ENV not in os.environ:  # tests fake CUDA
        import torch

        if not torch.cuda.is_available():
            out.emit("error", kind="device", message="--device cuda: torch sees no CUDA device")
            return

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _record_reports()
    optimize = optuna.study.Study.optimize  # before the target can patch it
    stops = _StopWatch(optuna.study.Study)
    try:
        from repro_check.execution.target import load

        before = audit.streams() if audit is not None else {}
        objective = load(job["target"])
        if audit is not None:
            audit.imported(before)
    except TargetError as exc:
        out.emit("error", kind="target", message=str(exc))
        return
    runner = StudyRunner(job, objective, out, optimize=optimize, stops=stops, audit=audit)
    started = time.perf_counter()
    for study_index in range(int(job.get("studies", 1))):
        try:
            runner.run(study_index)
        except _ConfigProblem as exc:
            out.emit("error", kind="config", message=str(exc))
            return
        except Exception as exc:
            out.emit("error", kind="objective", message=one_line(exc))
            return
        if runner.abort is not None:
            out.emit("error", kind="determinism", message=runner.abort, ops=ops)
            return
        out.emit(
            "study_done",
            study=study_index,
            emitted=runner.emitted,
            stopped=runner.stopped,
            **runner.view,
        )
    note = ctl.torch_note(torch_status)
    if note:
        notes.append(note)
    if runner.tracer is not None:
        _emit_trace(out, runner.tracer)
    out.emit(
        "done",
        wall_s=time.perf_counter() - started,
        environment=environment.collect(threads if controls.threads else None),
        notes=notes,
        nondeterministic_ops=ops,
        audit=audit.to_dict() if audit is not None else None,
    )


def run_script_job(
    job: Mapping[str, Any], out: Stream, ops: list[str], torch_status: str, audit: Any = None
) -> None:
    """Script mode: run the script whole, then stream every study it made (``script``)."""
    from repro_check.execution import script

    controls = Controls.from_dict(job["controls"])
    seed = int(job["seed"])
    spec = job["script"]

    def reseed(number: int) -> None:
        ctl.seed_global_rngs(ctl.trial_seed(seed, number))

    # a shared check's storage opens once the script has ended (opening it loads optuna and
    # numpy, which the script must load itself); its URL is pinned to this folder now
    shared = (
        _SharedStorage(str(job["storage"]), str(job["study_name"])) if job.get("storage") else None
    )
    resume = spec.get("resume")  # run --resume-at: {"dir": the replicate's, "phase": 1 or 2}
    folder = str(resume["dir"]) if resume else script.private_dir()
    cap = job.get("cap")
    capture = script.Capture(
        seed,
        controls.sampler_seed,
        reseed if controls.trial_reseed else None,
        cap,
        folder,
        keep_copies=bool(resume),
        resumed=script.read_base(folder) if resume and resume.get("phase") == 2 else None,
    )
    capture.audit = audit
    if job.get("trace") and job.get("trace_at"):
        from repro_check.execution.linetrace import LineTrace, TorchOps

        study_at, trial_at = job["trace_at"]
        capture.tracer = LineTrace()
        capture.tracer.torch_ops = TorchOps()
        capture.trace_at = (int(study_at), int(trial_at))
        capture.traced = _traced
    capture.install()
    started = time.perf_counter()
    ending = _ScriptEnd(capture, job, out, ops, torch_status, folder, started, shared, audit)

    def swallowed(reached: BaseException) -> None:
        ending.end(reached)
        sys.stderr.flush()
        os._exit(0)

    capture.on_swallowed = swallowed
    finished, ended = _run_script(spec, out)
    if not finished:
        return
    script.finish()  # the script's threads and atexit handlers, as at `python`'s exit
    ending.end(ended)


@dataclasses.dataclass
class _ScriptEnd:
    """Script mode's end: the studies into a shared storage (if any), every study's trials,
    then ``done`` (or the error)."""

    capture: Any
    job: Mapping[str, Any]
    out: Stream
    ops: list[str]
    torch_status: str
    folder: str
    started: float
    shared: Any
    audit: Any

    def end(self, ended: BaseException | None) -> None:
        from repro_check.execution import script

        capture, job, out, ops = self.capture, self.job, self.out, self.ops
        capture.watching = False
        controls = Controls.from_dict(job["controls"])
        spec, cap = job["script"], job.get("cap")
        name = str(spec.get("name") or spec.get("path") or spec.get("module"))
        problem = script.outcome(ended, capture)
        if not capture.entries:
            if problem is not None:
                out.emit("error", kind="script", message=_readable(problem, 0))
            else:
                out.emit("error", kind="target", message=f"{name} ran but created no Optuna study")
            return
        opened = self.shared.open() if self.shared is not None else None
        if isinstance(opened, str):
            out.emit("error", kind="config", message=opened)
            return
        failure = _store_studies(capture, opened, str(job.get("storage")))
        if failure is not None:
            out.emit("error", kind="script", message=failure, ops=ops)
            return
        capture.emit(out, bounded)  # user attrs, errors, study info: bounded, compared whole
        capture.stop_trace()
        if capture.tracer is not None and capture.tracer.started:  # the traced trial ran
            _emit_trace(out, capture.tracer)
        if spec.get("resume") and spec["resume"].get("phase") == 1:
            capture.save_base()  # for the resuming process, in the folder the parent keeps
        if problem is not None:
            out.emit("error", kind="script", message=_readable(problem, 0), ops=ops)
            return
        refused = _refused_op(capture)
        if refused is not None and controls.torch_determinism:
            out.emit("error", kind="determinism", message=refused, ops=ops)
            return
        out.emit(
            "done",
            wall_s=time.perf_counter() - self.started,
            environment=environment.collect(int(job["threads"]) if controls.threads else None),
            notes=self._notes(ended, cap),
            nondeterministic_ops=ops,
            studies=len(capture.entries),
            audit=self.audit.to_dict() if self.audit is not None else None,
        )

    def _notes(self, ended: BaseException | None, cap: Any) -> list[str]:
        from repro_check.execution import script
        from repro_check.results.script_notes import WRITTEN_PREFIX

        capture = self.capture
        notes = [*capture.notes, *capture.restarted()]
        if capture.written:
            notes.append(WRITTEN_PREFIX + ", ".join(sorted(capture.written)[:5]))
        if isinstance(ended, script.CapReached):
            notes.append(
                f"--trials {cap}: study {ended.name!r} reached the cap in an ask/tell loop; the "
                "script stopped there"
            )
        note = ctl.torch_note(self.torch_status)
        if note:
            notes.append(note.replace("the objective", "the script"))
        if not self.job["script"].get("resume"):  # a resume check's parent removes its own
            shutil.rmtree(self.folder, ignore_errors=True)
        return notes


def _refused_op(capture: Any) -> str | None:
    """The error of a trial that torch refused for lacking a deterministic kernel, if any."""
    op = next((o for e in capture.entries for m in e.errors.values() if (o := _named_op(m))), None)
    if op is None:
        return None
    return (
        f"{op} has no deterministic implementation "
        "(refused under torch.use_deterministic_algorithms(True))"
    )


def _run_script(spec: Mapping[str, Any], out: Stream) -> tuple[bool, BaseException | None]:
    """Run the script; (False, None) when it could not start (its error is already sent:
    no such file or module, a syntax error in it), else (True, how it ended)."""
    from repro_check.execution import script

    try:
        script.run(spec)
    except TargetError as exc:
        out.emit("error", kind="target", message=str(exc))
        return False, None
    except SyntaxError as exc:
        if exc.filename and os.path.abspath(exc.filename) == os.path.abspath(spec.get("path", "")):
            out.emit(
                "error",
                kind="target",
                message=f"syntax error in {exc.filename}, line {exc.lineno}: {exc.msg}",
            )
            return False, None
        return True, exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return True, exc
    return True, None


class _SharedStorage:
    """A shared check's storage, opened when the script has ended (the hooks then leave it
    alone: ``Capture.watching`` is off). A relative file path is pinned to the folder the check
    started in, when this is made: the script may change its working folder."""

    def __init__(self, url: str, claimed: str) -> None:
        self.url = url
        self.claimed = claimed
        self.folder = os.getcwd()  # nothing imported now (SQLAlchemy reads the URL later)

    def open(self) -> tuple[Any, str] | str:
        """(storage, claimed study name), or why the storage cannot be opened."""
        from repro_check.storage.store import absolute_url, open_storage

        try:
            return open_storage(absolute_url(self.url, self.folder)), self.claimed
        except Exception as exc:
            return f"cannot open the storage: {one_line(exc)}"


def _store_studies(capture: Any, shared: tuple[Any, str] | None, url: str) -> str | None:
    """A shared check: copy every study the script made, in order, into the check's storage
    under the claimed replicate (``<claimed>/study-<i>``), before the parent hears of them.
    None when done (or nothing to do: a local check), else why not (one line, the storage's
    password masked)."""
    if shared is None:
        return None
    from repro_check.storage.redact import redact_text
    from repro_check.storage.store import store_script_study

    storage, claimed = shared

    def readable(value: Any) -> Any:
        return _readable(value, 0)

    for index, entry in enumerate(capture.entries):
        info = entry.record().to_dict(with_trials=False)
        info.pop("trials")
        finished = [t for t in capture.readable_trials(entry) if t.state.is_finished()]
        trials = [(t, _maybe(readable, capture._error(entry, t))) for t in finished]
        try:
            store_script_study(storage, claimed, index, readable(info), trials, readable)
        except Exception as exc:
            message = redact_text(one_line(exc), url) or ""
            return f"cannot store study {index} in the check's storage: {message}"
    return None


def _maybe(convert: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else convert(value)


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
    from repro_check.execution.runner import SCRIPT_ARG

    if SCRIPT_ARG in sys.argv[1:]:
        from repro_check.execution import script  # noqa: F401
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
    job = json.loads(line)
    del line  # the nonce must not linger where the objective could read it
    out = Stream(protocol, str(job.pop("nonce", "")))
    out.emit("started")
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
