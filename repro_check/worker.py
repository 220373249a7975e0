"""The replicate process: ``python -m repro_check.worker`` reads a job (JSON) on stdin.

It applies the controls, imports the target, runs the study (or several, one after another) and
streams one JSON line per event on its original stdout. The user's own prints are moved to stderr
first, so nothing the objective writes can corrupt the stream.

Events: ``trial`` (one per finished trial), ``study_done``, ``done`` (with the environment),
``error`` (kind: target, config, device, determinism, objective).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import IO, Any

from repro_check import controls as ctl
from repro_check import environment
from repro_check.errors import TargetError
from repro_check.records import TrialRecord
from repro_check.settings import STUDY_NAME, Controls, StudySettings
from repro_check.target import one_line

_NO_DETERMINISTIC = re.compile(r"(\S+) does not have a deterministic implementation")


class Stream:
    """Thread-safe JSON-lines writer (``n_jobs > 1`` reports trials from several threads)."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle
        self._lock = threading.Lock()

    def emit(self, event: str, **data: Any) -> None:
        line = json.dumps({"event": event, **data})
        with self._lock:
            self._handle.write(line + "\n")
            self._handle.flush()


def determinism_op(exc: BaseException) -> str | None:
    """The op named by torch's "X does not have a deterministic implementation" error."""
    match = _NO_DETERMINISTIC.search(str(exc))
    return match.group(1) if match else None


def make_sampler(study: StudySettings, seed: int | None) -> Any:
    import optuna

    kwargs = dict(study.sampler_kwargs)
    if ":" in study.sampler:
        from repro_check.target import load_attr

        return load_attr(study.sampler)(seed=seed, **kwargs)
    classes = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "gp": optuna.samplers.GPSampler,
        "qmc": optuna.samplers.QMCSampler,
        "nsga2": optuna.samplers.NSGAIISampler,
        "nsga3": optuna.samplers.NSGAIIISampler,
        "grid": optuna.samplers.GridSampler,
        "bruteforce": optuna.samplers.BruteForceSampler,
    }
    return classes[study.sampler](seed=seed, **kwargs)


def make_pruner(study: StudySettings) -> Any:
    import optuna

    class FixedNameHyperband(optuna.pruners.HyperbandPruner):
        """Hyperband picks a trial's bracket from a hash of the study name: replicates stored
        as <name>/run-<k> must still get the same brackets."""

        def _get_bracket_id(self, study: Any, trial: Any) -> int:
            fixed: Any = SimpleNamespace(study_name=STUDY_NAME)
            return int(super()._get_bracket_id(fixed, trial))

    classes = {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "hyperband": FixedNameHyperband,
        "successive-halving": optuna.pruners.SuccessiveHalvingPruner,
        "threshold": optuna.pruners.ThresholdPruner,
    }
    return classes[study.pruner](**dict(study.pruner_kwargs))


class StudyRunner:
    """Runs one study with the objective wrapped to reseed per trial and record failures."""

    def __init__(self, job: Mapping[str, Any], objective: Callable[..., Any], out: Stream) -> None:
        self.study_settings = StudySettings.from_dict(job["study"])
        self.controls = Controls.from_dict(job["controls"])
        self.seed = int(job["seed"])
        self.fixed_params: dict[str, Any] | None = job.get("fixed_params")
        self.storage: str | None = job.get("storage")
        self.study_name: str | None = job.get("study_name")
        self.objective = objective
        self.out = out
        self.errors: dict[int, str] = {}
        self.returned: dict[int, Any] = {}
        self.abort: str | None = None

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
                error=error,
            )
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
            if self.storage is not None:  # the parent created (claimed) it already
                from repro_check.storage import open_storage

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
        except Exception as exc:
            raise _ConfigProblem(one_line(exc)) from exc
        if self.fixed_params is not None:
            for _ in range(settings.trials):
                study.enqueue_trial(self.fixed_params, skip_if_exists=False)
        study.optimize(
            self._wrapped,
            n_trials=settings.trials,
            n_jobs=settings.n_jobs,
            catch=(Exception,),
            callbacks=[self._record(study_index)],
        )


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
        op = _NO_DETERMINISTIC.search(str(message))
        if op is not None:
            if op.group(1) not in found:
                found.append(op.group(1))
            return
        original(message, category, *args, **kwargs)

    warnings.showwarning = show
    warnings.filterwarnings("always", message=".*does not have a deterministic implementation.*")


def run_job(job: Mapping[str, Any], out: Stream) -> None:
    controls = Controls.from_dict(job["controls"])
    seed = int(job["seed"])
    threads = int(job["threads"])
    notes: list[str] = []
    ops: list[str] = []
    _collect_nondeterministic_ops(ops)
    if controls.global_rng:
        ctl.seed_global_rngs(seed)
    torch_status = ctl.arm_torch(controls, seed, threads, bool(job.get("warn_only")))
    if job.get("device") == "cuda":
        import torch

        if not torch.cuda.is_available():
            out.emit("error", kind="device", message="--device cuda: torch sees no CUDA device")
            return

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _record_reports()
    try:
        from repro_check.target import load

        objective = load(job["target"])
    except TargetError as exc:
        out.emit("error", kind="target", message=str(exc))
        return
    runner = StudyRunner(job, objective, out)
    started = time.perf_counter()
    for study_index in range(int(job.get("studies", 1))):
        try:
            runner.run(study_index)
        except _ConfigProblem as exc:
            out.emit("error", kind="config", message=f"cannot build the study: {exc}")
            return
        except Exception as exc:
            out.emit("error", kind="objective", message=one_line(exc))
            return
        if runner.abort is not None:
            out.emit("error", kind="determinism", message=runner.abort, ops=ops)
            return
        out.emit("study_done", study=study_index)
    note = ctl.torch_note(torch_status)
    if note:
        notes.append(note)
    out.emit(
        "done",
        wall_s=time.perf_counter() - started,
        environment=environment.collect(threads),
        notes=notes,
        nondeterministic_ops=ops,
    )


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the objective's prints (even from C code) now go to stderr
    out = Stream(protocol)
    import optuna  # noqa: F401 - warm up while the parent has not handed us a job yet

    job = json.load(sys.stdin)
    run_job(job, out)
    # Leave now: a thread the objective started (a data loader, a logger) must not keep the
    # process alive after its results are in; everything worth keeping is already written.
    protocol.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
